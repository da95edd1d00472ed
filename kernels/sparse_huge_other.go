//go:build !linux

package kernels

// HugeBytes returns n zeroed bytes (huge pages are requested on Linux only).
func HugeBytes(n int) []byte { return make([]byte, n) }
