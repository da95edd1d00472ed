//go:build !unix

package cuda

import (
	"errors"
	"runtime"
)

var errNoDL = errors.New("cuda: dynamic loading of the CUDA driver is implemented for unix systems only, not " + runtime.GOOS)

func dlopen(string) (uintptr, error) { return 0, errNoDL }

func dlsym(uintptr, string) (uintptr, error) { return 0, errNoDL }
