//go:build !amd64

package kernels

func archAttnCols(int, int) int { return 0 }

func archAttnScores(int, *float32, *float32, int, *float32, int, int, float32) {
	panic("kernels: no assembly kernels on this architecture")
}

func archAttnAccum(int, *float32, int, *float32, *float32, int, int) {
	panic("kernels: no assembly kernels on this architecture")
}

func archAttnExp(int, *float32, int) (float32, bool) { return 0, false }
