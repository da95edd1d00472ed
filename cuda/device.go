// Package cuda is dejavu's GPU backend for NVIDIA GPUs, built without cgo:
// the CUDA driver API (libcuda.so.1) and cuBLAS are loaded at run time with
// purego, and the kernels (cuda/kernels/*.cu) are embedded as PTX that the
// driver compiles for the GPU at hand.
//
// Threading: CUDA contexts are bound to OS threads. A Device owns one
// goroutine locked to its OS thread (runtime.LockOSThread) on which the
// device's primary context is current; every CUDA and cuBLAS call of the
// package runs there, as a closure sent to that goroutine (Device.do). The
// exported methods may be called from any goroutine; calls on one device
// are serialised.
//
// Precision: weights are stored on the GPU as bf16 when the checkpoint's
// are bf16, else as f16; activations, norms, the KV cache and all
// accumulation are f32. Prompt products run through cuBLAS (16-bit inputs
// of the weights' type, f32 accumulation and output), decode steps through
// the package's own GEMV kernels (16-bit weights, f32 vectors), captured in
// a CUDA graph.
package cuda

import (
	"bytes"
	"embed"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"unsafe"
)

// The PTX of kernels/dejavu.cu for compute capability 8.0 (Ampere on) and
// 9.0 (Hopper on: adds programmatic dependent launch), made by gen_ptx.sh.
//
//go:embed ptx/*.ptx
var ptxFS embed.FS

// kernelNames are the entry points of the PTX module.
var kernelNames = []string{"gemv_f16", "gemv_bf16", "accum_rows_f16", "accum_rows_bf16", "norm_rows", "embed_rows", "add_pos", "add_bias",
	"to_f16", "act_rows", "rope_store", "attention", "fill_random", "qkv_rope_f16", "qkv_rope_bf16", "select_rows",
	"attn_split", "attn_combine", "select_small", "select_multi", "select_fast", "kv_clamp",
	"qkv_defer_f16", "qkv_defer_bf16", "gemv_q8", "fill_random_q8", "pred_mlp_f16", "pred_mlp_bf16", "attn_prompt", "attn_prompt_tc"}

// Device is one GPU with its context, stream, cuBLAS handle and kernels.
type Device struct {
	Ordinal  int
	Name     string
	TotalMem uint64 // bytes
	SMs      int
	Major    int // compute capability

	dev    int32
	ctx    uintptr
	stream uintptr
	blas   uintptr
	mod    uintptr
	fn     map[string]uintptr

	occ        map[[2]int]int // resident blocks per SM by (kernel index, shared memory)
	minWPR     int            // least warps per row in the GEMV kernels (tuning)
	fuseNorm   bool           // GEMV blocks normalize their input themselves (tuning; off: one norm kernel)
	pdl        bool           // launch with programmatic stream serialization (sm_90)
	attnMode   int            // decode attention: attnSplit (default), attnSplitCombine, attnLegacy (DEJAVU_CUDA_ATTN)
	attnPrompt int            // prompt attention: apTC (default), apTiles (DEJAVU_CUDA_ATTN_PROMPT=f32) or apBlock (=0)
	splits     int            // decode attention splits per head (0: from the SMs; DEJAVU_CUDA_ATTN_SPLITS)
	selOld     bool           // predictors: the one-block select_rows and a separate norm (DEJAVU_CUDA_SELECT=legacy)
	selFast    bool           // predictors: select_fast (one grid barrier; slower) instead of select_multi (DEJAVU_CUDA_SELECT=fast)
	predNorm   bool           // predictors: standardize with norm_rows, not in the first GEMV's blocks (DEJAVU_CUDA_PRED_NORM=1)
	ahead      bool           // predictors: the head predictor on the side stream (off: DEJAVU_CUDA_LOOKAHEAD=0)
	thrKernel  bool           // predictors: thresholds applied by the selection kernel, not the second GEMV (DEJAVU_CUDA_THR=kernel)
	predStd    bool           // predictors: inputs standardized by the model's norm kernel when it runs (off: DEJAVU_CUDA_PRED_STD=0)
	selG       int            // select_multi's blocks (0: from n; tuning)
	accumMul   int            // accum_rows aims at accumMul·SMs blocks (0: 4; tuning)
	upWPR      int            // decode up GEMV's warps per row (0: from the rows expected; tuning)
	accBatch   bool           // accum_rows: eight rows a step, the tail predicated (off: DEJAVU_CUDA_ACCUM_BATCH=0)
	accFloor   bool           // accum_rows: at most accumMul·SMs blocks (off: DEJAVU_CUDA_ACCUM_FLOOR=0, the next multiple of the strips above)
	accEarly   bool           // accum_rows: rows known before the step loaded before the PDL wait (off: DEJAVU_CUDA_ACCUM_EARLY=0)
	full       uintptr        // the next launch on this stream gets a full dependency, not a programmatic one (then reset)
	chainStd   bool           // decode: chained norms also with norm-standardized predictor inputs (DEJAVU_CUDA_CHAIN_STD=1)
	chain      bool           // decode: each norm applied by the last block of the accum_rows before it (DEJAVU_CUDA_CHAIN=1; off since v17: norm kernels are faster)
	predMLP    bool           // predictors: the MLP's norm, Q8_0 threshold predictor and up GEMV in one kernel (pred_mlp; off: DEJAVU_CUDA_PRED_MLP=0)
	pmPow2     bool           // pred_mlp: 256/tpb neurons a block, not spread over the resident blocks (DEJAVU_CUDA_PRED_MLP_GRID=pow2)
	joinAt     int            // decode: the lookahead's join before this step of a layer (0: the end; DEJAVU_CUDA_JOIN, tuning)
	eagerKV    bool           // sparse decode computes K and V of every head each step (DEJAVU_CUDA_KV=eager; default: deferred, session.go)
	kvWPR      int            // deferred K/V: qkv_defer's warps per row pair (0: from the units; tuning)
	kvLoop     bool           // deferred K/V: at most the resident blocks, looping (tests; slower in the graph)
	kvLate     bool           // deferred K/V: position and counters read after the PDL wait, not before (tests)
	kvHeads    bool           // deferred K/V: decode's head list and plan made before the PDL wait (off: DEJAVU_CUDA_KV_HEADS=0)
	kvTicket   bool           // deferred K/V: one row of counters moved by the last block (v13's way), not two rows by parity (tests)
	kvSkip     bool           // deferred K/V: qkv_defer returns at once (tests: its cost in the step; wrong results)
	q8TPR      [2]int         // gemv_q8's threads per row in a predictor's first / second GEMV (0: from the shape; tuning)
	q8Warp     bool           // gemv_q8 quantizes x a warp a block of 32, not a thread a block (tests; slower)
	side       uintptr        // second stream: the lookahead head predictor
	ev         [4]uintptr     // fork, x read, join events of the lookahead; the MLP selection made on the side stream
	prof       *profiler      // when set, launch times each kernel (not during graph capture)
	work       chan func()
	mu         sync.Mutex
	closed     bool
	maxSmem    int // largest dynamic shared memory per block (opt-in)
}

// Open starts device ordinal: the driver and cuBLAS are loaded, the
// device's primary context is made current on a dedicated locked OS
// thread, and the kernels are loaded (from DEJAVU_PTX, a PTX file, when
// set — for kernel development — else the embedded PTX).
func Open(ordinal int) (*Device, error) {
	if err := load(); err != nil {
		return nil, err
	}
	var n int32
	if err := check("cuDeviceGetCount", drv.cuDeviceGetCount(&n)); err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= int(n) {
		return nil, fmt.Errorf("cuda: device %d does not exist (%d devices)", ordinal, n)
	}
	d := &Device{Ordinal: ordinal, work: make(chan func()), fn: map[string]uintptr{}}
	started := make(chan error, 1)
	go d.worker(started)
	if err := <-started; err != nil {
		return nil, err
	}
	err := d.do(func() error { return d.init() })
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// worker runs every CUDA call of the device on one locked OS thread.
func (d *Device) worker(started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := check("cuDeviceGet", drv.cuDeviceGet(&d.dev, int32(d.Ordinal))); err != nil {
		started <- err
		return
	}
	if err := check("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		started <- err
		return
	}
	if err := check("cuCtxSetCurrent", drv.cuCtxSetCurrent(d.ctx)); err != nil {
		drv.cuDevicePrimaryCtxRelease(d.dev)
		started <- err
		return
	}
	started <- nil
	for f := range d.work {
		f()
	}
	drv.cuDevicePrimaryCtxRelease(d.dev)
}

// Decode attention variants (Device.attnMode).
const (
	attnSplit        = iota // attn_split over the positions, the last block of each head merges
	attnSplitCombine        // attn_split, then attn_combine merges
	attnLegacy              // attention: one block per head walks every position
)

// maxSplits bounds the decode attention splits per head.
const maxSplits = 64

// do runs f on the device's thread and returns its error.
func (d *Device) do(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	done := make(chan error, 1)
	d.work <- func() { done <- f() }
	return <-done
}

// readPTX returns the PTX for compute capability major: from the directory
// DEJAVU_PTX when set (kernel development), else the embedded files.
func readPTX(major int) ([]byte, error) {
	file := "dejavu_sm80.ptx"
	if major >= 9 {
		file = "dejavu_sm90.ptx"
	}
	var b []byte
	var err error
	if dir := os.Getenv("DEJAVU_PTX"); dir != "" {
		b, err = os.ReadFile(filepath.Join(dir, file))
	} else {
		b, err = ptxFS.ReadFile("ptx/" + file)
	}
	if err != nil {
		return nil, fmt.Errorf("cuda: reading the kernels' PTX: %w", err)
	}
	if !bytes.Contains(b, []byte(".entry")) {
		return nil, fmt.Errorf("cuda: %s holds no kernels: run cuda/gen_ptx.sh on a machine with nvcc and rebuild", file)
	}
	return b, nil
}

func (d *Device) init() error {
	name := make([]byte, 256)
	if err := check("cuDeviceGetName", drv.cuDeviceGetName(&name[0], int32(len(name)), d.dev)); err != nil {
		return err
	}
	d.Name = cstring(&name[0])
	if err := check("cuDeviceTotalMem", drv.cuDeviceTotalMem(&d.TotalMem, d.dev)); err != nil {
		return err
	}
	var v int32
	if err := check("cuDeviceGetAttribute(MULTIPROCESSOR_COUNT)", drv.cuDeviceGetAttribute(&v, 16, d.dev)); err != nil {
		return err
	}
	d.SMs = int(v)
	// CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97
	if err := check("cuDeviceGetAttribute(MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)", drv.cuDeviceGetAttribute(&v, 97, d.dev)); err != nil {
		return err
	}
	d.maxSmem = int(v) - 2048 // room for the kernels' static shared memory
	if err := check("cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR)", drv.cuDeviceGetAttribute(&v, 75, d.dev)); err != nil {
		return err
	}
	d.Major = int(v)
	d.pdl = d.Major >= 9 && drv.cuLaunchKernelEx != nil && os.Getenv("DEJAVU_CUDA_PDL") != "0"
	switch os.Getenv("DEJAVU_CUDA_ATTN") {
	case "legacy":
		d.attnMode = attnLegacy
	case "combine":
		d.attnMode = attnSplitCombine
	}
	if v, err := strconv.Atoi(os.Getenv("DEJAVU_CUDA_ATTN_SPLITS")); err == nil && v > 0 {
		d.splits = min(v, maxSplits)
	}
	switch os.Getenv("DEJAVU_CUDA_ATTN_PROMPT") {
	case "0":
		d.attnPrompt = apBlock
	case "f32":
		d.attnPrompt = apTiles
	default:
		d.attnPrompt = apTC
	}
	d.selOld = os.Getenv("DEJAVU_CUDA_SELECT") == "legacy"
	d.selFast = os.Getenv("DEJAVU_CUDA_SELECT") == "fast"
	d.predNorm = os.Getenv("DEJAVU_CUDA_PRED_NORM") == "1"
	d.ahead = os.Getenv("DEJAVU_CUDA_LOOKAHEAD") != "0"
	d.thrKernel = os.Getenv("DEJAVU_CUDA_THR") == "kernel"
	d.predStd = os.Getenv("DEJAVU_CUDA_PRED_STD") != "0"
	d.chain = os.Getenv("DEJAVU_CUDA_CHAIN") == "1"
	d.chainStd = os.Getenv("DEJAVU_CUDA_CHAIN_STD") == "1"
	d.predMLP = os.Getenv("DEJAVU_CUDA_PRED_MLP") != "0"
	d.pmPow2 = os.Getenv("DEJAVU_CUDA_PRED_MLP_GRID") == "pow2"
	d.joinAt, _ = strconv.Atoi(os.Getenv("DEJAVU_CUDA_JOIN"))
	d.accBatch = os.Getenv("DEJAVU_CUDA_ACCUM_BATCH") != "0"
	d.accFloor = os.Getenv("DEJAVU_CUDA_ACCUM_FLOOR") != "0"
	d.accEarly = os.Getenv("DEJAVU_CUDA_ACCUM_EARLY") != "0"
	d.kvHeads = os.Getenv("DEJAVU_CUDA_KV_HEADS") != "0"
	d.eagerKV = os.Getenv("DEJAVU_CUDA_KV") == "eager"
	ptx, err := readPTX(d.Major)
	if err != nil {
		return err
	}
	if err := check("cuStreamCreate", drv.cuStreamCreate(&d.stream, 1 /* CU_STREAM_NON_BLOCKING */)); err != nil {
		return err
	}
	if err := check("cuStreamCreate (side)", drv.cuStreamCreate(&d.side, 1)); err != nil {
		return err
	}
	for i := range d.ev {
		if err := check("cuEventCreate", drv.cuEventCreate(&d.ev[i], 2 /* CU_EVENT_DISABLE_TIMING */)); err != nil {
			return err
		}
	}
	if err := checkBlas("cublasCreate", blas.cublasCreate(&d.blas)); err != nil {
		return err
	}
	if err := checkBlas("cublasSetStream", blas.cublasSetStream(d.blas, d.stream)); err != nil {
		return err
	}
	img := append(append([]byte(nil), ptx...), 0)
	if err := check("cuModuleLoadData (JIT of the PTX)", drv.cuModuleLoadData(&d.mod, unsafe.Pointer(&img[0]))); err != nil {
		return err
	}
	runtime.KeepAlive(img)
	for _, k := range kernelNames {
		var f uintptr
		cname := append([]byte(k), 0)
		if err := check("cuModuleGetFunction "+k, drv.cuModuleGetFunction(&f, d.mod, &cname[0])); err != nil {
			return err
		}
		d.fn[k] = f
	}
	// The attention kernel keeps a row of scores in shared memory, the
	// GEMV kernels their input vector: allow up to the device's maximum.
	for _, k := range []string{"attention", "gemv_f16", "gemv_bf16", "gemv_q8", "qkv_rope_f16", "qkv_rope_bf16", "qkv_defer_f16", "qkv_defer_bf16",
		"select_rows", "attn_split", "attn_prompt", "attn_prompt_tc", "select_small", "select_multi", "select_fast"} {
		limit := d.maxSmem
		if k == "select_multi" || k == "select_fast" {
			limit = d.maxSmem - selectStaticSmem // its histogram is static shared memory
		}
		if err := check("cuFuncSetAttribute("+k+", MAX_DYNAMIC_SHARED_SIZE_BYTES)",
			drv.cuFuncSetAttribute(d.fn[k], 8, int32(limit))); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the device's stream, cuBLAS handle, module and context.
// Models and sessions of the device must be closed first.
func (d *Device) Close() error {
	err := d.do(func() error {
		if d.blas != 0 {
			blas.cublasDestroy(d.blas)
		}
		if d.mod != 0 {
			drv.cuModuleUnload(d.mod)
		}
		if d.stream != 0 {
			drv.cuStreamDestroy(d.stream)
		}
		if d.side != 0 {
			drv.cuStreamDestroy(d.side)
		}
		for _, e := range d.ev {
			if e != 0 {
				drv.cuEventDestroy(e)
			}
		}
		return nil
	})
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.work)
	}
	d.mu.Unlock()
	if err == errClosed {
		return nil
	}
	return err
}

// String describes the device.
func (d *Device) String() string {
	return fmt.Sprintf("%s (device %d, %d SMs, %.1f GiB)", d.Name, d.Ordinal, d.SMs, float64(d.TotalMem)/(1<<30))
}

// Memory helpers; they run on the device thread (inside do).

func (d *Device) alloc(bytes int64, what string) (uint64, error) {
	if bytes <= 0 {
		bytes = 4
	}
	var p uint64
	if err := check(fmt.Sprintf("cuMemAlloc %d bytes for %s", bytes, what), drv.cuMemAlloc(&p, uint64(bytes))); err != nil {
		return 0, err
	}
	return p, nil
}

func free(p uint64) {
	if p != 0 {
		drv.cuMemFree(p)
	}
}

// htod copies src to dst in stream order and waits for the copy (the
// stream is non-blocking: a plain cuMemcpyHtoD would not be ordered with
// its kernels).
func htod[T any](d *Device, dst uint64, src []T, what string) error {
	if len(src) == 0 {
		return nil
	}
	n := uint64(len(src)) * uint64(unsafe.Sizeof(src[0]))
	err := check("cuMemcpyHtoDAsync "+what, drv.cuMemcpyHtoDAsync(dst, unsafe.Pointer(&src[0]), n, d.stream))
	if err == nil {
		err = d.sync("copy of " + what)
	}
	runtime.KeepAlive(src)
	return err
}

// dtoh waits for the stream, then copies src to dst.
func dtoh[T any](d *Device, dst []T, src uint64, what string) error {
	if len(dst) == 0 {
		return nil
	}
	if err := d.sync("work before reading " + what); err != nil {
		return err
	}
	n := uint64(len(dst)) * uint64(unsafe.Sizeof(dst[0]))
	err := check("cuMemcpyDtoH "+what, drv.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), src, n))
	runtime.KeepAlive(dst)
	return err
}

// launch runs kernel name on the device stream. Arguments: uint64 (device
// pointers, size_t), int (passed as int32), int32, float32. On sm_90 it
// launches with programmatic stream serialization (the kernel may start
// before its predecessor ends and waits at griddepcontrol.wait), except
// the first launch on stream d.full after it was set: that kernel starts
// only when everything before it has finished.
func (d *Device) launch(name string, grid, block [3]int, shared int, args ...any) error {
	f := d.fn[name]
	vals := make([]uint64, len(args))
	ptrs := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case uint64:
			vals[i] = v
		case int:
			vals[i] = uint64(uint32(int32(v)))
		case int32:
			vals[i] = uint64(uint32(v))
		case float32:
			vals[i] = uint64(math.Float32bits(v))
		default:
			return fmt.Errorf("cuda: launch %s: argument %d has unsupported type %T", name, i, a)
		}
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	for _, g := range grid {
		if g <= 0 {
			return nil // nothing to do
		}
	}
	var params unsafe.Pointer
	if len(ptrs) > 0 {
		params = unsafe.Pointer(&ptrs[0])
	}
	if d.prof != nil {
		d.prof.begin(fmt.Sprintf("%s%v", name, grid[:2]), d.stream)
		defer d.prof.end(d.stream)
	}
	var r int32
	full := d.full != 0 && d.full == d.stream
	if full {
		d.full = 0
	}
	if d.pdl && !full {
		attr := launchAttr{id: 6} // CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
		attr.val[0] = 1
		cfg := launchConfig{gx: uint32(grid[0]), gy: uint32(grid[1]), gz: uint32(grid[2]), bx: uint32(block[0]),
			by: uint32(block[1]), bz: uint32(block[2]), shared: uint32(shared), stream: d.stream,
			attrs: unsafe.Pointer(&attr), numAttrs: 1}
		r = drv.cuLaunchKernelEx(unsafe.Pointer(&cfg), f, params, nil)
		runtime.KeepAlive(&attr)
	} else {
		r = drv.cuLaunchKernel(f, uint32(grid[0]), uint32(grid[1]), uint32(grid[2]), uint32(block[0]), uint32(block[1]), uint32(block[2]),
			uint32(shared), d.stream, params, nil)
	}
	runtime.KeepAlive(vals)
	runtime.KeepAlive(ptrs)
	return check(fmt.Sprintf("cuLaunchKernel %s grid %v block %v", name, grid, block), r)
}

// record records event e (d.ev[i]) on stream from and makes stream to
// wait for it (also inside a graph capture: a fork or join edge).
func (d *Device) edge(i int, from, to uintptr) error {
	if err := check("cuEventRecord", drv.cuEventRecord(d.ev[i], from)); err != nil {
		return err
	}
	return check("cuStreamWaitEvent", drv.cuStreamWaitEvent(to, d.ev[i], 0))
}

func (d *Device) sync(what string) error {
	return check("cuStreamSynchronize after "+what, drv.cuStreamSynchronize(d.stream))
}

// ptrOf is the address of a slice's first element (which must exist).
func ptrOf[T any](v []T) unsafe.Pointer { return unsafe.Pointer(&v[0]) }

// resident is how many 256-thread blocks of kernel name with smem bytes of
// dynamic shared memory the whole GPU holds at once (at least SMs).
func (d *Device) resident(name string, smem int) int {
	k := [2]int{0, smem}
	for i, n := range kernelNames {
		if n == name {
			k[0] = i
		}
	}
	if d.occ == nil {
		d.occ = map[[2]int]int{}
	}
	if v, ok := d.occ[k]; ok {
		return v
	}
	var n int32
	if drv.cuOccupancyMaxActiveBlocks(&n, d.fn[name], 256, uint64(smem)) != 0 || n < 1 {
		n = 1
	}
	d.occ[k] = int(n) * d.SMs
	return d.occ[k]
}

// launchConfig is CUlaunchConfig; launchAttr is CUlaunchAttribute.
type launchConfig struct {
	gx, gy, gz, bx, by, bz, shared uint32
	_                              uint32
	stream                         uintptr
	attrs                          unsafe.Pointer
	numAttrs                       uint32
	_                              uint32
}

type launchAttr struct {
	id  uint32
	_   uint32
	val [64]byte
}
