package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The CUDA driver API, loaded at run time from libcuda.so.1 with purego (no
// cgo). Handles are opaque pointers held as uintptr; device pointers are
// uint64 (CUdeviceptr). Every function returns a CUresult (0 = success).
type driverAPI struct {
	cuInit                      func(flags uint32) int32
	cuDriverGetVersion          func(v *int32) int32
	cuDeviceGetCount            func(n *int32) int32
	cuDeviceGet                 func(dev *int32, ordinal int32) int32
	cuDeviceGetName             func(name *byte, n int32, dev int32) int32
	cuDeviceGetAttribute        func(v *int32, attr int32, dev int32) int32
	cuDeviceTotalMem            func(bytes *uint64, dev int32) int32
	cuDevicePrimaryCtxRetain    func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease   func(dev int32) int32
	cuCtxSetCurrent             func(ctx uintptr) int32
	cuCtxSynchronize            func() int32
	cuMemAlloc                  func(p *uint64, bytes uint64) int32
	cuMemFree                   func(p uint64) int32
	cuMemGetInfo                func(free, total *uint64) int32
	cuMemcpyHtoD                func(dst uint64, src unsafe.Pointer, bytes uint64) int32
	cuMemcpyDtoH                func(dst unsafe.Pointer, src uint64, bytes uint64) int32
	cuMemcpyDtoD                func(dst, src uint64, bytes uint64) int32
	cuMemcpyHtoDAsync           func(dst uint64, src unsafe.Pointer, bytes uint64, stream uintptr) int32
	cuMemcpyDtoDAsync           func(dst, src uint64, bytes uint64, stream uintptr) int32
	cuMemsetD32Async            func(dst uint64, v uint32, n uint64, stream uintptr) int32
	cuMemHostAlloc              func(p *unsafe.Pointer, bytes uint64, flags uint32) int32
	cuMemFreeHost               func(p unsafe.Pointer) int32
	cuModuleLoadData            func(mod *uintptr, image unsafe.Pointer) int32
	cuModuleUnload              func(mod uintptr) int32
	cuModuleGetFunction         func(f *uintptr, mod uintptr, name *byte) int32
	cuModuleGetGlobal           func(p *uint64, bytes *uint64, mod uintptr, name *byte) int32
	cuFuncSetAttribute          func(f uintptr, attr int32, v int32) int32
	cuOccupancyMaxActiveBlocks  func(n *int32, f uintptr, blockSize int32, smem uint64) int32
	cuLaunchKernelEx            func(cfg unsafe.Pointer, f uintptr, params unsafe.Pointer, extra unsafe.Pointer) int32 // optional (CUDA 12+)
	cuLaunchKernel              func(f uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params unsafe.Pointer, extra unsafe.Pointer) int32
	cuStreamCreate              func(s *uintptr, flags uint32) int32
	cuStreamDestroy             func(s uintptr) int32
	cuStreamSynchronize         func(s uintptr) int32
	cuStreamWaitEvent           func(s uintptr, e uintptr, flags uint32) int32
	cuStreamBeginCapture        func(s uintptr, mode int32) int32
	cuStreamEndCapture          func(s uintptr, g *uintptr) int32
	cuGraphInstantiateWithFlags func(exec *uintptr, g uintptr, flags uint64) int32
	cuGraphLaunch               func(exec uintptr, s uintptr) int32
	cuGraphExecDestroy          func(exec uintptr) int32
	cuGraphDestroy              func(g uintptr) int32
	cuEventCreate               func(e *uintptr, flags uint32) int32
	cuEventDestroy              func(e uintptr) int32
	cuEventRecord               func(e uintptr, s uintptr) int32
	cuEventSynchronize          func(e uintptr) int32
	cuEventElapsedTime          func(ms *float32, start, end uintptr) int32
	cuGetErrorName              func(r int32, s **byte) int32
	cuGetErrorString            func(r int32, s **byte) int32
}

// symbols maps each function to its exported name (the _v2 names where the
// ABI changed after CUDA 3.2).
func (a *driverAPI) symbols() []struct {
	fn   any
	name string
} {
	return []struct {
		fn   any
		name string
	}{
		{&a.cuInit, "cuInit"}, {&a.cuDriverGetVersion, "cuDriverGetVersion"},
		{&a.cuDeviceGetCount, "cuDeviceGetCount"}, {&a.cuDeviceGet, "cuDeviceGet"},
		{&a.cuDeviceGetName, "cuDeviceGetName"}, {&a.cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{&a.cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{&a.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{&a.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{&a.cuCtxSetCurrent, "cuCtxSetCurrent"}, {&a.cuCtxSynchronize, "cuCtxSynchronize"},
		{&a.cuMemAlloc, "cuMemAlloc_v2"}, {&a.cuMemFree, "cuMemFree_v2"}, {&a.cuMemGetInfo, "cuMemGetInfo_v2"},
		{&a.cuMemcpyHtoD, "cuMemcpyHtoD_v2"}, {&a.cuMemcpyDtoH, "cuMemcpyDtoH_v2"},
		{&a.cuMemcpyDtoD, "cuMemcpyDtoD_v2"}, {&a.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
		{&a.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"}, {&a.cuMemsetD32Async, "cuMemsetD32Async"},
		{&a.cuMemHostAlloc, "cuMemHostAlloc"}, {&a.cuMemFreeHost, "cuMemFreeHost"},
		{&a.cuModuleLoadData, "cuModuleLoadData"}, {&a.cuModuleUnload, "cuModuleUnload"},
		{&a.cuModuleGetFunction, "cuModuleGetFunction"}, {&a.cuModuleGetGlobal, "cuModuleGetGlobal_v2"}, {&a.cuFuncSetAttribute, "cuFuncSetAttribute"},
		{&a.cuOccupancyMaxActiveBlocks, "cuOccupancyMaxActiveBlocksPerMultiprocessor"},
		{&a.cuLaunchKernel, "cuLaunchKernel"},
		{&a.cuStreamCreate, "cuStreamCreate"}, {&a.cuStreamDestroy, "cuStreamDestroy_v2"},
		{&a.cuStreamSynchronize, "cuStreamSynchronize"}, {&a.cuStreamWaitEvent, "cuStreamWaitEvent"},
		{&a.cuStreamBeginCapture, "cuStreamBeginCapture_v2"}, {&a.cuStreamEndCapture, "cuStreamEndCapture"},
		{&a.cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags"}, {&a.cuGraphLaunch, "cuGraphLaunch"},
		{&a.cuGraphExecDestroy, "cuGraphExecDestroy"}, {&a.cuGraphDestroy, "cuGraphDestroy"},
		{&a.cuEventCreate, "cuEventCreate"}, {&a.cuEventDestroy, "cuEventDestroy_v2"},
		{&a.cuEventRecord, "cuEventRecord"}, {&a.cuEventSynchronize, "cuEventSynchronize"},
		{&a.cuEventElapsedTime, "cuEventElapsedTime_v2|cuEventElapsedTime"},
		{&a.cuGetErrorName, "cuGetErrorName"}, {&a.cuGetErrorString, "cuGetErrorString"},
	}
}

var (
	loadOnce sync.Once
	drv      *driverAPI
	blas     *blasAPI
	loadErr  error
)

// load opens libcuda and libcublas once per process and initialises the driver.
func load() error {
	loadOnce.Do(func() {
		if runtime.GOOS != "linux" {
			loadErr = fmt.Errorf("cuda: the CUDA backend is supported on linux only (this is %s/%s)", runtime.GOOS, runtime.GOARCH)
			return
		}
		lib, err := dlopenFirst("DEJAVU_LIBCUDA", []string{"libcuda.so.1", "libcuda.so"}, nil)
		if err != nil {
			loadErr = fmt.Errorf("cuda: loading the NVIDIA driver library: %w", err)
			return
		}
		a := &driverAPI{}
		if err := register(lib, a.symbols()); err != nil {
			loadErr = fmt.Errorf("cuda: libcuda: %w", err)
			return
		}
		if p, err := dlsym(lib, "cuLaunchKernelEx"); err == nil && p != 0 {
			purego.RegisterFunc(&a.cuLaunchKernelEx, p)
		}
		if r := a.cuInit(0); r != 0 {
			loadErr = fmt.Errorf("cuda: cuInit: %s", errName(a, r))
			return
		}
		var n int32
		if r := a.cuDeviceGetCount(&n); r != 0 || n == 0 {
			loadErr = fmt.Errorf("cuda: no CUDA device found (cuDeviceGetCount: %d devices, %s)", n, errName(a, r))
			return
		}
		b, err := loadBlas()
		if err != nil {
			loadErr = err
			return
		}
		drv, blas = a, b
	})
	return loadErr
}

// Available reports whether the CUDA backend can run here: nil when the
// driver and cuBLAS load and at least one GPU exists, else why not.
func Available() error { return load() }

// dlopenFirst opens the library named by the environment variable env (a
// path), else the first of names that the dynamic loader finds, else one
// of names in the directories of extra (globs allowed).
func dlopenFirst(env string, names []string, extra []string) (uintptr, error) {
	if p := os.Getenv(env); p != "" {
		h, err := dlopen(p)
		if err != nil {
			return 0, fmt.Errorf("%s=%s: %w", env, p, err)
		}
		return h, nil
	}
	var errs []string
	for _, n := range names {
		h, err := dlopen(n)
		if err == nil {
			return h, nil
		}
		errs = append(errs, err.Error())
	}
	for _, pat := range extra {
		dirs, _ := filepath.Glob(pat)
		for _, d := range dirs {
			for _, n := range names {
				p := filepath.Join(d, n)
				if _, err := os.Stat(p); err != nil {
					continue
				}
				h, err := dlopen(p)
				if err == nil {
					return h, nil
				}
				errs = append(errs, err.Error())
			}
		}
	}
	return 0, fmt.Errorf("none of %v could be opened (set %s to its path): %s", names, env, strings.Join(errs, "; "))
}

func register(lib uintptr, syms []struct {
	fn   any
	name string
}) error {
	for _, s := range syms {
		var p uintptr
		var err error
		for _, name := range strings.Split(s.name, "|") { // alternatives, newest first
			if p, err = dlsym(lib, name); err == nil && p != 0 {
				break
			}
		}
		if err != nil || p == 0 {
			return fmt.Errorf("symbol %s is missing: %v", s.name, err)
		}
		purego.RegisterFunc(s.fn, p)
	}
	return nil
}

func cstring(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

func errName(a *driverAPI, r int32) string {
	if r == 0 {
		return "CUDA_SUCCESS"
	}
	var name, desc *byte
	a.cuGetErrorName(r, &name)
	a.cuGetErrorString(r, &desc)
	if name == nil {
		return fmt.Sprintf("CUresult %d", r)
	}
	return fmt.Sprintf("%s (%d): %s", cstring(name), r, cstring(desc))
}

// Error is a failed CUDA driver or cuBLAS call.
type Error struct {
	Call string // the function and what it was doing
	Code int32
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("cuda: %s: %s", e.Call, e.Msg) }

// check turns a CUresult into an error naming the call.
func check(call string, r int32) error {
	if r == 0 {
		return nil
	}
	return &Error{Call: call, Code: r, Msg: errName(drv, r)}
}

var errClosed = errors.New("cuda: device is closed")
