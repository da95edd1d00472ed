// Kernels of dejavu's CUDA backend. Compiled to PTX by cuda/gen_ptx.sh and
// embedded in the Go binary (cuda/ptx.go); the driver JIT-compiles the PTX
// for the GPU at hand.
//
// Conventions: weights are f16 (or bf16: the kernels reading weights come
// in two entry points, name_f16 / name_bf16, instantiated from one template
// on the weight type), row-major (out × in, as nn.Linear stores
// them); the MLP down projection and the attention output projection are
// stored transposed (neuron-major: one neuron / one head dimension is one
// contiguous row of Hidden values). Activations, norms, biases and the KV
// cache are f32; accumulation is f32. Every position-dependent value (the
// current position, the token ids) is read from device memory, so a decode
// step captured in a CUDA graph can be replayed at any position.
//
// io[0] is the position of the first token of the step; io[1...] its ids.
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

#define FULL 0xffffffffu

// Programmatic dependent launch (sm_90): every kernel lets the next one in
// the stream start early (PDL_LAUNCH) and waits for the previous one to
// finish before touching data it produced or reads (PDL_WAIT); work that
// depends on nothing could go between the two. Without the
// launch attribute (or before sm_90) both are no-ops. (Prefetching the
// first weight rows into L2 between the two was tried: no gain.)
//
// Compiled with -DDEJAVU_TL (a timeline for tests, never the embedded
// PTX), the first and the last block of every kernel record the time
// (%globaltimer, ns) and the kernel's shape when they start (PDL_LAUNCH)
// and when their wait ends (PDL_WAIT) into dejavu_tl: (time, tag) pairs,
// tag = grid x | grid y << 20 | block x << 36 | event << 48 (0 start, 1
// wait over, 2… TL_MARK(event) inside a kernel) | last block << 52;
// dejavu_tl_n counts them (TestTimeline).
#if defined(DEJAVU_TL) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define TL_N 65536
__device__ unsigned long long dejavu_tl[2 * TL_N];
__device__ unsigned dejavu_tl_n;
__device__ __forceinline__ void tl_mark(unsigned long long ev, bool any = false) {
    if (threadIdx.x != 0 || threadIdx.y != 0) return;
    bool first = blockIdx.x == 0 && blockIdx.y == 0, last = blockIdx.x == gridDim.x - 1 && blockIdx.y == gridDim.y - 1;
    if (!first && !last && !any) return;
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    unsigned i = atomicAdd(&dejavu_tl_n, 1u);
    if (i >= TL_N) return;
    dejavu_tl[2 * i] = t;
    dejavu_tl[2 * i + 1] = (unsigned long long)gridDim.x | (unsigned long long)gridDim.y << 20 |
                           (unsigned long long)blockDim.x << 36 | ev << 48 | (unsigned long long)(last && !first) << 52;
}
#define TL_MARK(ev) tl_mark(ev)
#define TL_MARK_ANY(ev) tl_mark(ev, true) // from whichever block gets there (e.g. the last to finish)
#define PDL_LAUNCH()                                                       \
    do {                                                                   \
        tl_mark(0);                                                        \
        asm volatile("griddepcontrol.launch_dependents;" ::: "memory");    \
    } while (0)
#define PDL_WAIT()                                                         \
    do {                                                                   \
        asm volatile("griddepcontrol.wait;" ::: "memory");                 \
        tl_mark(1);                                                        \
    } while (0)
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define TL_MARK(ev)
#define TL_MARK_ANY(ev)
#define PDL_LAUNCH() asm volatile("griddepcontrol.launch_dependents;" ::: "memory")
#define PDL_WAIT() asm volatile("griddepcontrol.wait;" ::: "memory")
#else
#define TL_MARK(ev)
#define TL_MARK_ANY(ev)
#define PDL_LAUNCH()
#define PDL_WAIT()
#endif

__device__ __forceinline__ float act_apply(float v, int act) {
    switch (act) {
    case 0: return v > 0.f ? v : 0.f;                      // relu
    case 1: return v / (1.f + expf(-v));                   // silu
    case 2: return 0.5f * v * (1.f + erff(v * 0.70710678118654752f)); // gelu (erf)
    case 3: {                                              // gelu, tanh approximation
        const float c = 0.7978845608028654f;
        return 0.5f * v * (1.f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
    }
    return v; // identity
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL, v, o));
    return v;
}

// block_sum reduces over the block (blockDim a multiple of 32, ≤ 1024);
// every thread gets the result. sh holds 33 floats.
__device__ float block_sum(float v, float* sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    float t = lane < nw ? sh[lane] : 0.f;
    t = warp_sum(t);
    return t;
}

// block_sum2 is block_sum of two values at once (blockDim ≤ 512); sh
// holds 32 floats.
__device__ float2 block_sum2(float a, float b, float* sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    a = warp_sum(a);
    b = warp_sum(b);
    __syncthreads();
    if (lane == 0) {
        sh[w] = a;
        sh[16 + w] = b;
    }
    __syncthreads();
    int nw = blockDim.x >> 5;
    a = lane < nw ? sh[lane] : 0.f;
    b = lane < nw ? sh[16 + lane] : 0.f;
    return make_float2(warp_sum(a), warp_sum(b));
}

__device__ float block_max(float v, float* sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    float t = lane < nw ? sh[lane] : __int_as_float(0xff800000);
    t = warp_max(t);
    return t;
}

// block_softmax replaces the scores sc[0 … n) (shared memory, complete on
// entry) by exp(sc − max) and returns (max, Σ exp); every thread of the
// block calls it, and it ends with a barrier. Up to 32 scores go through
// one warp's shuffles (one barrier instead of five; the block's reductions
// would add the same values in the same order). red holds 33 floats.
__device__ float2 block_softmax(float* sc, int n, float* red) {
    int lane = threadIdx.x & 31;
    float m = __int_as_float(0xff800000), sum = 0.f;
    if (n <= 32) {
        if (threadIdx.x < 32) {
            float v = lane < n ? sc[lane] : m;
            float mm = warp_max(v);
            float ex = lane < n ? __expf(v - mm) : 0.f;
            if (lane < n) sc[lane] = ex;
            float ss = warp_sum(ex);
            if (lane == 0) {
                red[0] = mm;
                red[1] = ss;
            }
        }
        __syncthreads();
        return make_float2(red[0], red[1]);
    }
    for (int t = threadIdx.x; t < n; t += blockDim.x) m = fmaxf(m, sc[t]);
    m = block_max(m, red);
    for (int t = threadIdx.x; t < n; t += blockDim.x) {
        float e = __expf(sc[t] - m);
        sc[t] = e;
        sum += e;
    }
    sum = block_sum(sum, red);
    __syncthreads();
    return make_float2(m, sum);
}

// Weight storage types: WF16 and WBF16 turn a 32-bit pair of 16-bit
// weights into two floats, and one 16-bit weight into a float.
struct WF16 {
    static __device__ __forceinline__ float2 pair(unsigned u) {
        __half2 h = *reinterpret_cast<__half2*>(&u);
        return __half22float2(h);
    }
    static __device__ __forceinline__ float one(unsigned short u) { return __half2float(__ushort_as_half(u)); }
    static __device__ __forceinline__ unsigned short from(float v) { return __half_as_ushort(__float2half_rn(v)); }
};
struct WBF16 {
    static __device__ __forceinline__ float2 pair(unsigned u) {
        return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u));
    }
    static __device__ __forceinline__ float one(unsigned short u) { return __uint_as_float((unsigned)u << 16); }
    static __device__ __forceinline__ unsigned short from(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
};

// to16 rounds v to f16, or bf16 when bf is set (the 16-bit activations
// that cuBLAS multiplies with the weights), as bits.
__device__ __forceinline__ unsigned short to16(float v, int bf) { return bf ? WBF16::from(v) : WF16::from(v); }

typedef unsigned short w16; // one 16-bit weight, f16 or bf16

template <class TW> __device__ __forceinline__ float dot8(uint4 w, const float* __restrict__ x) {
    float4 a = *reinterpret_cast<const float4*>(x);
    float4 b = *reinterpret_cast<const float4*>(x + 4);
    float2 f0 = TW::pair(w.x), f1 = TW::pair(w.y);
    float2 f2 = TW::pair(w.z), f3 = TW::pair(w.w);
    return f0.x * a.x + f0.y * a.y + f1.x * a.z + f1.y * a.w +
           f2.x * b.x + f2.y * b.y + f3.x * b.z + f3.y * b.w;
}

// ldw loads eight 16-bit weights (16 bytes) that are read once a step:
// read-only and not kept in L1 (L1::no_allocate), so the streamed weights
// do not evict the vectors they multiply, which every row reads again
// (v18: 1-3% a decode step; -DDEJAVU_LDW_LDG builds the __ldg load it
// replaced).
__device__ __forceinline__ uint4 ldw(const w16* p) {
#ifndef DEJAVU_LDW_LDG
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p));
    return r;
#else
    return __ldg(reinterpret_cast<const uint4*>(p));
#endif
}

// copy_stats copies x (cols floats) into shared memory xs and returns its
// mean (0 when rms) and variance about it — the statistics of a LayerNorm
// or (rms) an RMSNorm — from one pass of sums shifted by x[0] and one
// reduction of the two. red holds 33 floats; every thread of the block
// calls it, and xs is complete when it returns. Rows of a multiple of 4
// go 16 bytes a load (x and xs 16-byte aligned).
__device__ float2 copy_stats(float* xs, const float* __restrict__ x, int cols, int rms, float* red) {
    float K = rms ? 0.f : __ldg(x), s1 = 0.f, s2 = 0.f;
    if ((cols & 3) == 0) {
#pragma unroll 4
        for (int i = threadIdx.x * 4; i < cols; i += blockDim.x * 4) {
            float4 v = *reinterpret_cast<const float4*>(x + i);
            *reinterpret_cast<float4*>(xs + i) = v;
            float a0 = v.x - K, a1 = v.y - K, a2 = v.z - K, a3 = v.w - K;
            s1 += (a0 + a1) + (a2 + a3);
            s2 += (a0 * a0 + a1 * a1) + (a2 * a2 + a3 * a3);
        }
    } else {
        for (int i = threadIdx.x; i < cols; i += blockDim.x) {
            float v = x[i];
            xs[i] = v;
            s1 += v - K;
            s2 += (v - K) * (v - K);
        }
    }
    float2 st = block_sum2(s1, s2, red); // its barriers also publish xs
    float mean = rms ? 0.f : K + st.x / cols;
    float var = rms ? st.y / cols : fmaxf(0.f, (st.y - st.x * st.x / cols) / cols);
    return make_float2(mean, var);
}

// load_x copies the input vector x (cols floats) into shared memory xs,
// normalized when normW is set (LayerNorm with normB, or RMSNorm when rms):
// the statistics are computed by the block itself (copy_stats), so the
// norm needs no kernel of its own. red holds 33 floats. Ends with a
// barrier.
__device__ void load_x(float* xs, const float* __restrict__ x, int cols, const float* __restrict__ normW,
                       const float* __restrict__ normB, float eps, int rms, float* red) {
    if (normW) {
        float2 st = copy_stats(xs, x, cols, rms, red);
        float inv = rsqrtf(st.y + eps);
        for (int i = threadIdx.x; i < cols; i += blockDim.x) {
            float o = (xs[i] - st.x) * inv * normW[i];
            if (normB) o += normB[i];
            xs[i] = o;
        }
    } else {
        for (int i = threadIdx.x; i < cols; i += blockDim.x) xs[i] = x[i];
    }
    __syncthreads();
}

// dot_s is the partial dot product of an f16 row with the vector xs (in
// shared or global memory) over the columns of thread t of T threads (8 columns per
// 16-byte load; eight loads in flight, then four, then one at a time); the
// caller reduces.
template <class TW> __device__ __forceinline__ float dot_s(const w16* __restrict__ w, const float* xs, int cols, int t, int T) {
    float s = 0.f;
    if ((cols & 7) == 0) {
        int step = T * 8, j = t * 8;
        for (; j + 7 * step < cols; j += 8 * step) {
            uint4 v[8];
#pragma unroll
            for (int u = 0; u < 8; u++) v[u] = ldw(w + j + u * step);
#pragma unroll
            for (int u = 0; u < 8; u++) s += dot8<TW>(v[u], xs + j + u * step);
        }
        if (j + 3 * step < cols) {
            uint4 v[4];
#pragma unroll
            for (int u = 0; u < 4; u++) v[u] = ldw(w + j + u * step);
#pragma unroll
            for (int u = 0; u < 4; u++) s += dot8<TW>(v[u], xs + j + u * step);
            j += 4 * step;
        }
        for (; j < cols; j += step) s += dot8<TW>(ldw(w + j), xs + j);
    } else {
        for (int j = t; j < cols; j += T) s += TW::one(w[j]) * xs[j];
    }
    return s;
}

// dot_s16 is dot_s for one warp (lane of 32) with sixteen loads in
// flight, then up to eight: a row of 4096 columns in one round trip, of
// 5120 in two (dot_s: two and three).
template <class TW> __device__ __forceinline__ float dot_s16(const w16* __restrict__ w, const float* xs, int cols, int lane) {
    if ((cols & 7) != 0) return dot_s<TW>(w, xs, cols, lane, 32);
    float s = 0.f;
    const int step = 256;
    int j = lane * 8;
    for (; j + 15 * step < cols; j += 16 * step) {
        uint4 v[16];
#pragma unroll
        for (int u = 0; u < 16; u++) v[u] = ldw(w + j + u * step);
#pragma unroll
        for (int u = 0; u < 16; u++) s += dot8<TW>(v[u], xs + j + u * step);
    }
    if (j < cols) {
        uint4 v[8];
#pragma unroll
        for (int u = 0; u < 8; u++) v[u] = j + u * step < cols ? ldw(w + j + u * step) : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int u = 0; u < 8; u++)
            if (j + u * step < cols) s += dot8<TW>(v[u], xs + j + u * step);
        j += 8 * step;
    }
    for (; j < cols; j += step) s += dot8<TW>(ldw(w + j), xs + j);
    return s;
}

// dot2_s is dot_s for two rows at once: rounds of four loads of each row
// in flight, then the two or three left out together (opt-13b's 5120
// columns over 64 threads: 4 + 4 + 2 loads a row, three round trips
// instead of four; v14, docs/gpu.md).
template <class TW> __device__ __forceinline__ float2 dot2_s(const w16* __restrict__ w0, const w16* __restrict__ w1, const float* xs,
                                                             int cols, int t, int T) {
    float s0 = 0.f, s1 = 0.f;
    if ((cols & 7) == 0) {
        int step = T * 8, j = t * 8;
        for (; j + 3 * step < cols; j += 4 * step) {
            uint4 a[4], b[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                a[u] = ldw(w0 + j + u * step);
                b[u] = ldw(w1 + j + u * step);
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                s0 += dot8<TW>(a[u], xs + j + u * step);
                s1 += dot8<TW>(b[u], xs + j + u * step);
            }
        }
        if (j + step < cols) {
            uint4 a0 = ldw(w0 + j), b0 = ldw(w1 + j), a1 = ldw(w0 + j + step), b1 = ldw(w1 + j + step);
            uint4 a2 = make_uint4(0, 0, 0, 0), b2 = a2;
            bool three = j + 2 * step < cols;
            if (three) {
                a2 = ldw(w0 + j + 2 * step);
                b2 = ldw(w1 + j + 2 * step);
            }
            s0 += dot8<TW>(a0, xs + j);
            s1 += dot8<TW>(b0, xs + j);
            s0 += dot8<TW>(a1, xs + j + step);
            s1 += dot8<TW>(b1, xs + j + step);
            if (three) {
                s0 += dot8<TW>(a2, xs + j + 2 * step);
                s1 += dot8<TW>(b2, xs + j + 2 * step);
            }
        } else if (j < cols) {
            s0 += dot8<TW>(ldw(w0 + j), xs + j);
            s1 += dot8<TW>(ldw(w1 + j), xs + j);
        }
    } else {
        for (int j = t; j < cols; j += T) {
            s0 += TW::one(w0[j]) * xs[j];
            s1 += TW::one(w1[j]) * xs[j];
        }
    }
    return make_float2(s0, s1);
}

// group_sum2 reduces (a, b) over the wpr warps of a row group (8/wpr
// groups per 256-thread block); the result is valid in the group's first
// warp. Every thread of the block must call it (it has barriers).
__device__ __forceinline__ float2 group_sum2(float a, float b, int wpr, float* part) {
    a = warp_sum(a);
    b = warp_sum(b);
    if (wpr == 1) return make_float2(a, b);
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0) {
        part[w] = a;
        part[8 + w] = b;
    }
    __syncthreads();
    if (w % wpr == 0) {
        for (int k = 1; k < wpr; k++) {
            a += part[w + k];
            b += part[8 + w + k];
        }
    }
    return make_float2(a, b);
}

// gemv: y = act(W x + b) over n outputs (n = *count · blk when count is
// set, else rows), x normalized on the way in when normW is set (see
// load_x; else x is read directly). Output o uses weight row r = idx[o / blk]·blk + o % blk (r = o
// without idx) plus rowOff; with gateOff > 0 it is act(W[r]·x + b[r]) ·
// (W[r+gateOff]·x + b[r+gateOff]) (gated MLPs). It is written to y[o], or
// y[r - rowOff] when scatter is set, added to what is there when accumulate
// is set. Blocks of 256 threads; wpr warps share a row (1, 2, 4 or 8: more
// loads in flight when few rows are selected; wpr < 0: chosen from n, the
// fewest giving at least −wpr warps in all); grid-stride over rows.
// With selOut set, the output is also compared with thr (compare and
// compact: the threshold selection of a predictor's logits): o goes to
// selOut[atomicAdd(selCount, 1)] when y[o] > thr. With zero set, block 0
// sets *zero to 0 (the next selection's counter). Dynamic shared memory:
// (64 + cols) floats with normW, else 64.
#define GEMV_PARAMS const w16* __restrict__ W, const float* __restrict__ x,                                        \
        const float* __restrict__ normW, const float* __restrict__ normB, float eps, int rms,                        \
        const float* __restrict__ bias, float* __restrict__ y, const int* __restrict__ idx,                          \
        const int* __restrict__ count, int blk, int rows, int rowOff, int cols, int gateOff, int act, int accumulate, \
        int scatter, int wpr, float thr, int* __restrict__ selOut, int* selCount, int* zero
#define GEMV_ARGS W, x, normW, normB, eps, rms, bias, y, idx, count, blk, rows, rowOff, cols, gateOff, act, accumulate, \
        scatter, wpr, thr, selOut, selCount, zero
template <class TW> __device__ __forceinline__ void gemv_t(GEMV_PARAMS) {
    extern __shared__ float smem_g[];
    float* part = smem_g;     // 16 floats: group_sum2
    float* red = smem_g + 16; // 33 floats: load_x
    float* xs = smem_g + 64;  // cols floats, 16-byte aligned: load_x
    PDL_LAUNCH();
    PDL_WAIT();
    if (zero && blockIdx.x == 0 && threadIdx.x == 0) *zero = 0;
    const float* xv = x; // read through L1, or normalized once per block into shared memory
    if (normW) {
        load_x(xs, x, cols, normW, normB, eps, rms, red);
        xv = xs;
    }
    int n = count ? (*count) * blk : rows;
    if (wpr < 0) {
        int target = -wpr;
        wpr = 1;
        while (wpr < 8 && n * wpr < target) wpr *= 2;
    }
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int per = 8 / wpr, slot = w / wpr, sub = w % wpr;
    int t = sub * 32 + lane, T = 32 * wpr;
    for (int base = blockIdx.x * per; base < n; base += gridDim.x * per) {
        int o = base + slot;
        int r = 0;
        float a = 0.f, u = 0.f;
        if (o < n) {
            r = (idx ? idx[o / blk] * blk + o % blk : o) + rowOff;
            if (gateOff > 0) {
                float2 p = dot2_s<TW>(W + (size_t)r * cols, W + (size_t)(r + gateOff) * cols, xv, cols, t, T);
                a = p.x;
                u = p.y;
            } else {
                a = dot_s<TW>(W + (size_t)r * cols, xv, cols, t, T);
            }
        }
        float2 su = group_sum2(a, u, wpr, part);
        if (o < n && sub == 0 && lane == 0) {
            a = su.x;
            if (bias) a += bias[r];
            a = act_apply(a, act);
            if (gateOff > 0) a *= su.y + (bias ? bias[r + gateOff] : 0.f);
            int dst = scatter ? r - rowOff : o;
            y[dst] = accumulate ? y[dst] + a : a;
            if (selOut && a > thr) selOut[atomicAdd(selCount, 1)] = dst;
        }
    }
}

extern "C" __global__ void gemv_f16(GEMV_PARAMS) { gemv_t<WF16>(GEMV_ARGS); }
extern "C" __global__ void gemv_bf16(GEMV_PARAMS) { gemv_t<WBF16>(GEMV_ARGS); }

// Q8_0 weights (the MLP predictors stored in 8 bits: llama.cpp's blocks,
// split on the GPU for 16-byte loads): Q holds the int8 quants row-major
// (rows × cols bytes, cols a multiple of 32), S the f16 scales (rows ×
// cols/32, one per block of 32 weights of a row). gemv_q8 is gemv for
// such weights with the products llama.cpp and the CPU (kernels/q8x.go)
// use: x is quantized in each block's prologue to int8 blocks of 32 with
// an f32 scale of their own (dx = max|x|/127, q = x/dx rounded to nearest
// even) and every block of a row contributes dw·dx·Σ q_w·q_x, the integer
// sum exact (dp4a): the same logits as the CPU's q8_0 predictors up to
// the order of the f32 sums over blocks. Only what predictors need: y =
// W x + bias (rows outputs), x standardized first when normW is set
// (load_x), compare and compact (selOut, selCount, thr) and zero as in
// gemv. tpr threads share a row (a power of two ≤ 256: 256/tpr rows a
// block, grid-stride), thread sub of a row taking its blocks sub, sub +
// tpr, …; the first two of the block's first rows are loaded before the
// PDL wait (weights depend on no earlier kernel), so they arrive while
// the previous kernel finishes. x is quantized a thread a block of 32
// (qWarp: a warp a block, coalesced but slower: a chain of shuffles and
// divisions per block). x must be 16-byte aligned. Dynamic shared
// memory: 256 + 4·roundup(cols/32, 4) + cols bytes, + 4·cols with normW.
#define Q8_PARAMS const signed char* __restrict__ Q, const unsigned short* __restrict__ S, const float* __restrict__ x, \
        const float* __restrict__ normW, const float* __restrict__ normB, float eps, int rms,                           \
        const float* __restrict__ bias, float* __restrict__ y, int rows, int cols, int tpr, float thr,                 \
        int* __restrict__ selOut, int* selCount, int* zero, int qWarp

// dot32q is Σ q_w·q_x over one block of 32 (weights in a0, a1; x's quants
// at xq[0], xq[1] in shared memory), exact in int32.
__device__ __forceinline__ int dot32q(uint4 a0, uint4 a1, const int4* xq) {
    int4 b0 = xq[0], b1 = xq[1];
    int s = __dp4a((int)a0.x, b0.x, 0);
    s = __dp4a((int)a0.y, b0.y, s);
    s = __dp4a((int)a0.z, b0.z, s);
    s = __dp4a((int)a0.w, b0.w, s);
    s = __dp4a((int)a1.x, b1.x, s);
    s = __dp4a((int)a1.y, b1.y, s);
    s = __dp4a((int)a1.z, b1.z, s);
    return __dp4a((int)a1.w, b1.w, s);
}

// q8_load2 loads the first two blocks of 32 weights that thread sub of
// tpr takes in row r of a Q8_0 matrix (quants Q, f16 scales S; nb blocks
// a row): blocks sub and sub + tpr, into w and dw (left as they are past
// the row's end or past rows).
__device__ __forceinline__ void q8_load2(const signed char* __restrict__ Q, const unsigned short* __restrict__ S, int r, int rows,
                                         int nb, int sub, int tpr, uint4 (&w)[2][2], float (&dw)[2]) {
#pragma unroll
    for (int k = 0; k < 2; k++) {
        int b = sub + k * tpr;
        if (r < rows && b < nb) {
            const uint4* p = reinterpret_cast<const uint4*>(Q + (size_t)r * nb * 32 + b * 32);
            w[k][0] = __ldg(p);
            w[k][1] = __ldg(p + 1);
            dw[k] = __half2float(__ushort_as_half(__ldg(S + (size_t)r * nb + b)));
        }
    }
}

// q8_dot is thread sub's part of row r · x (Q8_0 weights, x quantized to
// xq / xd): Σ dw·dx·Σ q_w·q_x over its blocks sub, sub + tpr, …, the first
// two from q8_load2, the rest loaded here.
__device__ __forceinline__ float q8_dot(const signed char* __restrict__ Q, const unsigned short* __restrict__ S, int r, int nb,
                                        int sub, int tpr, const uint4 (&w)[2][2], const float (&dw)[2], const int4* xq,
                                        const float* xd) {
    float a = 0.f;
#pragma unroll
    for (int k = 0; k < 2; k++) {
        int b = sub + k * tpr;
        if (b < nb) a += (float)dot32q(w[k][0], w[k][1], xq + 2 * b) * (dw[k] * xd[b]);
    }
#pragma unroll 4
    for (int b = sub + 2 * tpr; b < nb; b += tpr) { // four blocks' loads in flight
        const uint4* p = reinterpret_cast<const uint4*>(Q + (size_t)r * nb * 32 + b * 32);
        uint4 a0 = __ldg(p), a1 = __ldg(p + 1);
        float sc = __half2float(__ushort_as_half(__ldg(S + (size_t)r * nb + b)));
        a += (float)dot32q(a0, a1, xq + 2 * b) * (sc * xd[b]);
    }
    return a;
}

// q8_rows computes the rows of a Q8_0 product (Q, S: rows × nb blocks)
// that a block takes — start + slot, start + stride + slot, … below rows,
// slot = threadIdx.x / tpr with tpr threads a row — against x quantized
// to xq / xd; the first row's first two blocks are already in w / dw
// (q8_load2). out(r, a) receives row r's product from its first thread.
// Every thread makes the same trips (group_sum2 has barriers, tpr > 32).
template <class F>
__device__ __forceinline__ void q8_rows(const signed char* __restrict__ Q, const unsigned short* __restrict__ S, int rows, int nb,
                                        int tpr, int start, int stride, uint4 (&w)[2][2], float (&dw)[2], const int4* xq,
                                        const float* xd, float* part, F out) {
    int slot = threadIdx.x / tpr, sub = threadIdx.x % tpr;
    bool first = true;
    for (int base = start; base < rows; base += stride) {
        int r = base + slot;
        if (!first) q8_load2(Q, S, r, rows, nb, sub, tpr, w, dw);
        first = false;
        float a = r < rows ? q8_dot(Q, S, r, nb, sub, tpr, w, dw, xq, xd) : 0.f;
        if (tpr <= 32) {
            for (int o = tpr >> 1; o > 0; o >>= 1) a += __shfl_xor_sync(FULL, a, o);
        } else {
            a = group_sum2(a, 0.f, tpr >> 5, part).x;
        }
        if (r < rows && sub == 0) out(r, a);
    }
}

__device__ __forceinline__ unsigned pack_q4(float a, float b, float c, float d, float id) {
    unsigned q0 = (unsigned)__float2int_rn(a * id) & 0xffu, q1 = (unsigned)__float2int_rn(b * id) & 0xffu;
    unsigned q2 = (unsigned)__float2int_rn(c * id) & 0xffu, q3 = (unsigned)__float2int_rn(d * id) & 0xffu;
    return q0 | q1 << 8 | q2 << 16 | q3 << 24;
}

// quant_x8 quantizes x (nb blocks of 32 floats, 16-byte aligned) to int8
// blocks with an f32 scale each, llama.cpp's Q8_0 rule (dx = max|x|/127,
// q = x/dx rounded to nearest even): the quants to xq (two int4 a block),
// the scales to xd. A thread a block; the caller synchronizes.
// With CG the loads go through L2 only (data written by other blocks of
// the same kernel). The eight loads of a block are issued together.
template <bool CG = false> __device__ __forceinline__ void quant_x8(const float* xv, int nb, int4* xq, float* xd) {
    for (int b = threadIdx.x; b < nb; b += blockDim.x) {
        float4 v[8];
        const float4* p = reinterpret_cast<const float4*>(xv + b * 32);
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = CG ? __ldcg(p + k) : p[k];
        float amax = 0.f;
#pragma unroll
        for (int k = 0; k < 8; k++)
            amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v[k].x), fabsf(v[k].y)), fmaxf(fabsf(v[k].z), fabsf(v[k].w))));
        float d = amax / 127.f;
        float id = d != 0.f ? 1.f / d : 0.f;
        unsigned u[8];
#pragma unroll
        for (int k = 0; k < 8; k++) u[k] = pack_q4(v[k].x, v[k].y, v[k].z, v[k].w, id);
        xq[2 * b] = make_int4((int)u[0], (int)u[1], (int)u[2], (int)u[3]);
        xq[2 * b + 1] = make_int4((int)u[4], (int)u[5], (int)u[6], (int)u[7]);
        xd[b] = d;
    }
}

// quant4_x8 is quant_x8 of (xs − m)·sc for xs in shared memory, four
// threads a block of 32 (eight values each, the block's max by two
// shuffles): a thread a block would read shared memory one bank at a
// time. Every thread of the block calls it; the caller synchronizes.
__device__ __forceinline__ void quant4_x8(const float* xs, int nb, int4* xq, float* xd, float m, float sc) {
    int* xw = reinterpret_cast<int*>(xq);
    for (int base = 0; base < 4 * nb; base += blockDim.x) { // the same trips in every thread (shuffles)
        int i = base + threadIdx.x, b = i >> 2, q = i & 3;
        float v[8];
        float amax = 0.f;
        if (b < nb) {
            float4 v0 = *reinterpret_cast<const float4*>(xs + b * 32 + q * 8);
            float4 v1 = *reinterpret_cast<const float4*>(xs + b * 32 + q * 8 + 4);
            v[0] = (v0.x - m) * sc, v[1] = (v0.y - m) * sc, v[2] = (v0.z - m) * sc, v[3] = (v0.w - m) * sc;
            v[4] = (v1.x - m) * sc, v[5] = (v1.y - m) * sc, v[6] = (v1.z - m) * sc, v[7] = (v1.w - m) * sc;
#pragma unroll
            for (int k = 0; k < 8; k++) amax = fmaxf(amax, fabsf(v[k]));
        }
        amax = fmaxf(amax, __shfl_xor_sync(FULL, amax, 1));
        amax = fmaxf(amax, __shfl_xor_sync(FULL, amax, 2));
        if (b < nb) {
            float d = amax / 127.f;
            float id = d != 0.f ? 1.f / d : 0.f;
            xw[b * 8 + q * 2] = (int)pack_q4(v[0], v[1], v[2], v[3], id);
            xw[b * 8 + q * 2 + 1] = (int)pack_q4(v[4], v[5], v[6], v[7], id);
            if (q == 0) xd[b] = d;
        }
    }
}

extern "C" __global__ void __launch_bounds__(256) gemv_q8(Q8_PARAMS) {
    extern __shared__ float4 smem_q[];
    float* part = reinterpret_cast<float*>(smem_q); // 16 floats: group_sum2
    float* red = part + 16;                         // 33 floats: load_x
    int nb = cols >> 5;
    float* xd = part + 64;                                 // nb scales of x
    int4* xq = reinterpret_cast<int4*>(xd + ((nb + 3) & ~3)); // cols int8 quants of x (two int4 a block)
    float* xs = reinterpret_cast<float*>(xq + 2 * nb);        // cols floats: load_x (normW)
    PDL_LAUNCH();
    int rpb = 256 / tpr, slot = threadIdx.x / tpr, sub = threadIdx.x % tpr;
    uint4 w[2][2];
    float dw[2] = {0.f, 0.f};
    int r = blockIdx.x * rpb + slot;
    q8_load2(Q, S, r, rows, nb, sub, tpr, w, dw);
    PDL_WAIT();
    if (zero && blockIdx.x == 0 && threadIdx.x == 0) *zero = 0;
    const float* xv = x;
    if (normW) {
        load_x(xs, x, cols, normW, normB, eps, rms, red);
        xv = xs;
    }
    if (qWarp) {
        // A warp a block of 32: coalesced loads (16 blocks a warp in flight),
        // max by shuffles, one quant a lane.
        int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
        signed char* xq8 = reinterpret_cast<signed char*>(xq);
        for (int b0 = wid; b0 < nb; b0 += 16 * nw) {
            float v[16];
#pragma unroll
            for (int i = 0; i < 16; i++) {
                int b = b0 + i * nw;
                v[i] = b < nb ? xv[b * 32 + lane] : 0.f;
            }
#pragma unroll
            for (int i = 0; i < 16; i++) {
                int b = b0 + i * nw;
                if (b < nb) { // uniform in the warp
                    float amax = warp_max(fabsf(v[i]));
                    float d = amax / 127.f;
                    float id = d != 0.f ? 1.f / d : 0.f;
                    xq8[b * 32 + lane] = (signed char)__float2int_rn(v[i] * id);
                    if (lane == 0) xd[b] = d;
                }
            }
        }
    }
    if (!qWarp) quant_x8(xv, nb, xq, xd);
    __syncthreads();
    q8_rows(Q, S, rows, nb, tpr, blockIdx.x * rpb, gridDim.x * rpb, w, dw, xq, xd, part, [&](int row, float a) {
        if (bias) a += bias[row];
        y[row] = a;
        if (selOut && a > thr) selOut[atomicAdd(selCount, 1)] = row;
    });
}

// pred_mlp runs a decode step's MLP predictor and up GEMV in one kernel
// (docs/gpu.md, v16): what norm_rows (standardized copy), gemv_q8 twice
// (threshold compare and compact) and gemv over the selection did in four.
// x is the hidden state entering the MLP (cols floats). Every block:
//   1. loads x into shared memory and takes its statistics (copy_stats);
//   2. if it is a producer, b < P (P = ⌈R / (256/tpa)⌉ ≤ gridDim.x, tpa
//      threads a row): quantizes x standardized, (x − mean)·rsqrt(var +
//      1e-5), to Q8_0 blocks as gemv_q8 does, computes its rows of the
//      predictor's first GEMV, h = A·x̂ (QA, SA: R × cols, Q8_0), into h
//      (block 0 also zeroes *selCount) and arrives at bar[0];
//   3. normalizes x in place for the up GEMV with the model's norm (normW,
//      normB, eps; none when normW is NULL) and waits until all P
//      producers have arrived (they have the lowest block indices and wait
//      for nothing, so they always finish);
//   4. quantizes h and scores its neurons [b·n/G, (b+1)·n/G) (G blocks, at
//      most 256/tpb neurons each: the grid can be the resident blocks
//      whatever n; v17),
//      against the second GEMV (QB, SB: n × R, bias pbias);
//   5. compacts those above thr in neuron order, computes y = act(W[r]·x +
//      b[r]) (gated: times W[r+gateOff]·x + b[r+gateOff]) for them, 8/k
//      warps a row for k rows (one from 5 on, with every load of a row in
//      flight at once: dot_s16), while one atomicAdd on
//      *selCount gets their places, and writes the neurons to
//      selOut[place…] and the outputs to y[place…].
// The last block through the barrier (bar[1]) resets both counters. The
// grid must fit on the GPU at once (the caller checks). Dynamic shared
// memory: see predMLPSmem (cuda/predictors.go).
#define PM_PARAMS const float* __restrict__ x, const float* __restrict__ normW, const float* __restrict__ normB,      \
        float eps, int rms, const signed char* __restrict__ QA, const unsigned short* __restrict__ SA, int R, int tpa,  \
        float* h, int* bar, const signed char* __restrict__ QB, const unsigned short* __restrict__ SB,                  \
        const float* __restrict__ pbias, int n, int tpb, float thr, int* __restrict__ selOut, int* selCount,             \
        const w16* __restrict__ W, const float* __restrict__ bias, float* __restrict__ y, int cols, int gateOff, int act
#define PM_ARGS x, normW, normB, eps, rms, QA, SA, R, tpa, h, bar, QB, SB, pbias, n, tpb, thr, selOut, selCount, W, bias, y, \
        cols, gateOff, act
template <class TW> __device__ __forceinline__ void pred_mlp_t(PM_PARAMS) {
    extern __shared__ float4 smem_pm[];
    float* part = reinterpret_cast<float*>(smem_pm); // 16 floats: group_sum2
    float* red = part + 16;                          // 33 floats (48): block_sum
    int* cnt = reinterpret_cast<int*>(red + 48);     // [0, 8): per warp; 8: the block's place
    int* sel = cnt + 16;                             // ≤ 256 selected neurons of the block
    float* res = reinterpret_cast<float*>(sel + 256); // their up GEMV outputs
    float* xs = res + 256;                           // cols floats: x, then normalized
    int nbA = cols >> 5, nbB = R >> 5;
    float* xd = xs + cols;                                      // nbA scales of x̂
    float* hd = xd + ((nbA + 3) & ~3);                          // nbB scales of h
    int4* xq = reinterpret_cast<int4*>(hd + ((nbB + 3) & ~3)); // cols int8 quants of x̂
    int4* hq = xq + 2 * nbA;                                    // R int8 quants of h
    PDL_LAUNCH();
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    int P = (R + 256 / tpa - 1) / (256 / tpa);
    P = min(P, (int)gridDim.x);
    // Before the wait (weights depend on no earlier kernel): this block's
    // first A row's first two blocks, and its neurons' B rows.
    int sa = threadIdx.x / tpa, ua = threadIdx.x % tpa;
    int ra = blockIdx.x * (256 / tpa) + sa;
    uint4 wa[2][2];
    float da[2] = {0.f, 0.f};
    if ((int)blockIdx.x < P) q8_load2(QA, SA, ra, R, nbA, ua, tpa, wa, da);
    // This block's neurons: [b·n/G, (b+1)·n/G) of the G blocks (at most
    // 256/tpb, one slot of tpb threads each); r = n past them.
    int slot = threadIdx.x / tpb, sub = threadIdx.x % tpb;
    int lo = (int)((long long)blockIdx.x * n / gridDim.x), hi = (int)((long long)(blockIdx.x + 1) * n / gridDim.x);
    int r = lo + slot < hi ? lo + slot : n;
    uint4 wb[2][2];
    float db[2] = {0.f, 0.f}, pb = 0.f;
    q8_load2(QB, SB, r, n, nbB, sub, tpb, wb, db);
    if (pbias && r < n) pb = __ldg(pbias + r);
    PDL_WAIT();
    // 1. x and its statistics.
    float2 st = copy_stats(xs, x, cols, rms, red);
    float mean = st.x, inv = rsqrtf(st.y + eps), inv2 = rsqrtf(st.y + 1e-5f);
    TL_MARK(2);
    // 2. Producers: x̂ quantized, the first GEMV, arrival at the barrier.
    if ((int)blockIdx.x < P) {
        quant4_x8(xs, nbA, xq, xd, mean, inv2);
        __syncthreads();
        if (blockIdx.x == 0 && threadIdx.x == 0) *selCount = 0;
        q8_rows(QA, SA, R, nbA, tpa, blockIdx.x * (256 / tpa), P * (256 / tpa), wa, da, xq, xd, part,
                [&](int rr, float a) { h[rr] = a; });
        __syncthreads();
        if (threadIdx.x == 0) asm volatile("red.release.gpu.global.add.s32 [%0], 1;" ::"l"(bar) : "memory");
    }
    TL_MARK(3);
    // 3. x normalized in place for the up GEMV while the producers finish.
    if (normW) {
        for (int i = threadIdx.x * 4; i < cols; i += blockDim.x * 4) {
            float4 v = *reinterpret_cast<float4*>(xs + i), w = *reinterpret_cast<const float4*>(normW + i);
            float4 o = make_float4((v.x - mean) * inv * w.x, (v.y - mean) * inv * w.y, (v.z - mean) * inv * w.z, (v.w - mean) * inv * w.w);
            if (normB) {
                float4 c = *reinterpret_cast<const float4*>(normB + i);
                o = make_float4(o.x + c.x, o.y + c.y, o.z + c.z, o.w + c.w);
            }
            *reinterpret_cast<float4*>(xs + i) = o;
        }
    }
    if (threadIdx.x == 0) {
        int arrived;
        do {
            asm volatile("ld.acquire.gpu.global.s32 %0, [%1];" : "=r"(arrived) : "l"(bar) : "memory");
        } while (arrived < P);
        if (atomicAdd(&bar[1], 1) == (int)gridDim.x - 1) { // every block is through: reset for the next launch
            bar[0] = 0;
            bar[1] = 0;
        }
    }
    __syncthreads();
    TL_MARK(4);
    // 4. h quantized (from L2: other blocks wrote it), this block's neurons scored.
    quant_x8<true>(h, nbB, hq, hd);
    __syncthreads();
    TL_MARK(5);
    float a = r < n ? q8_dot(QB, SB, r, nbB, sub, tpb, wb, db, hq, hd) : 0.f;
    for (int o = tpb >> 1; o > 0; o >>= 1) a += __shfl_xor_sync(FULL, a, o);
    TL_MARK(6);
    // 5. Compaction in neuron order; the block's place in the selection is
    // asked for now and used after the up GEMV (its atomic's round trip
    // under the row loads).
    bool on = r < n && sub == 0 && a + pb > thr;
    unsigned m = __ballot_sync(FULL, on);
    if (lane == 0) cnt[wid] = __popc(m);
    __syncthreads();
    int off = 0, k = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        off += i < wid ? cnt[i] : 0;
        k += cnt[i];
    }
    if (on) sel[off + __popc(m & ((1u << lane) - 1))] = r;
    __syncthreads();
    TL_MARK(7);
    if (k == 0) return;
    int place = 0;
    if (threadIdx.x == 0) place = atomicAdd(selCount, k);
    int wpr = k >= 5 ? 1 : k >= 3 ? 2 : k == 2 ? 4 : 8;
    int per = 8 / wpr, rs = wid / wpr, rsub = wid % wpr;
    int t = rsub * 32 + lane, T = 32 * wpr;
    for (int b0 = 0; b0 < k; b0 += per) { // the same trips in every warp (group_sum2 has barriers)
        int o = b0 + rs, rr = 0;
        float u = 0.f, g = 0.f;
        if (o < k) {
            rr = sel[o];
            if (gateOff > 0) {
                float2 p = dot2_s<TW>(W + (size_t)rr * cols, W + (size_t)(rr + gateOff) * cols, xs, cols, t, T);
                u = p.x;
                g = p.y;
            } else if (wpr == 1) { // every load of the row in flight at once: one round trip (v16)
                u = dot_s16<TW>(W + (size_t)rr * cols, xs, cols, lane);
            } else {
                u = dot_s<TW>(W + (size_t)rr * cols, xs, cols, t, T);
            }
        }
        float2 su = group_sum2(u, g, wpr, part);
        if (o < k && rsub == 0 && lane == 0) {
            float v = su.x;
            if (bias) v += bias[rr];
            v = act_apply(v, act);
            if (gateOff > 0) v *= su.y + (bias ? bias[rr + gateOff] : 0.f);
            res[o] = v;
        }
    }
    if (threadIdx.x == 0) cnt[8] = place;
    __syncthreads();
    place = cnt[8];
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        selOut[place + i] = sel[i];
        y[place + i] = res[i];
    }
}

extern "C" __global__ void __launch_bounds__(256) pred_mlp_f16(PM_PARAMS) { pred_mlp_t<WF16>(PM_ARGS); }
extern "C" __global__ void __launch_bounds__(256) pred_mlp_bf16(PM_PARAMS) { pred_mlp_t<WBF16>(PM_ARGS); }

// fill_random_q8: synthetic Q8_0 weights (layout of gemv_q8) of n int8
// quants, uniform in [-127, 127] (a hash of seed and the word), and ns
// scales a/127 (so the weights are about uniform in [-a, a]).
extern "C" __global__ void fill_random_q8(unsigned* q, size_t nWords, unsigned short* s, size_t ns, unsigned long long seed, float a) {
    PDL_LAUNCH();
    PDL_WAIT();
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < nWords; t += stride) {
        unsigned long long z = seed + t * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        unsigned u = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            unsigned v = (unsigned)((z >> (16 * k)) & 0xffffu) % 255u; // 0 … 254
            u |= ((v - 127u) & 0xffu) << (8 * k);
        }
        q[t] = u;
    }
    unsigned short h = WF16::from(a / 127.f);
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < ns; t += stride) s[t] = h;
}

// dot2_m is dot2_s for KV_P input vectors xq[0 … KV_P) at once: each
// weight load is applied to all of them (deferred K/V catching a head up
// over several positions reads its rows once per KV_P positions).
#define KV_P 4
template <class TW> __device__ __forceinline__ void dot2_m(const w16* __restrict__ w0, const w16* __restrict__ w1,
                                                            const float* const (&xq)[KV_P], int cols, int t, int T,
                                                            float (&s0)[KV_P], float (&s1)[KV_P]) {
#pragma unroll
    for (int k = 0; k < KV_P; k++) s0[k] = s1[k] = 0.f;
    if ((cols & 7) == 0) {
        int step = T * 8, j = t * 8;
        for (; j + step < cols; j += 2 * step) {
            uint4 a[2], b[2];
#pragma unroll
            for (int u = 0; u < 2; u++) {
                a[u] = ldw(w0 + j + u * step);
                b[u] = ldw(w1 + j + u * step);
            }
#pragma unroll
            for (int u = 0; u < 2; u++)
#pragma unroll
                for (int k = 0; k < KV_P; k++) {
                    s0[k] += dot8<TW>(a[u], xq[k] + j + u * step);
                    s1[k] += dot8<TW>(b[u], xq[k] + j + u * step);
                }
        }
        for (; j < cols; j += step) {
            uint4 a = ldw(w0 + j), b = ldw(w1 + j);
#pragma unroll
            for (int k = 0; k < KV_P; k++) {
                s0[k] += dot8<TW>(a, xq[k] + j);
                s1[k] += dot8<TW>(b, xq[k] + j);
            }
        }
    } else {
        for (int j = t; j < cols; j += T) {
            float a = TW::one(w0[j]), b = TW::one(w1[j]);
#pragma unroll
            for (int k = 0; k < KV_P; k++) {
                s0[k] += a * xq[k][j];
                s1[k] += b * xq[k][j];
            }
        }
    }
}

// qkv_rope is a decode step's attention input: q, k and v of one token in
// one launch, x normalized on the way in (normW), rotary embeddings applied
// (cosT set), and k and v stored in the head-major caches at position
// io[0]. Work unit = one pair of rows (the two halves of a rotation pair;
// V rows are paired the same way), so a unit can rotate its own results.
// Units: the query heads (heads[0 … *headCount) when heads is set, else
// all H), then all KVH key heads, then all KVH value heads. q, k, v are
// written to qkv (layout as rope_store's). Dynamic shared memory: as
// gemv_f16's.
#define QKV_PARAMS const w16* __restrict__ W, const float* __restrict__ x, const float* __restrict__ normW,         \
        const float* __restrict__ normB, float eps, int rms, const float* __restrict__ bias, float* qkv, int cols,    \
        int H, int KVH, int hd, const float* __restrict__ cosT, const float* __restrict__ sinT, int interleave,       \
        float* kc, float* vc, int maxCtx, const int* __restrict__ io, const int* __restrict__ heads,                 \
        const int* __restrict__ headCount, int wpr
#define QKV_ARGS W, x, normW, normB, eps, rms, bias, qkv, cols, H, KVH, hd, cosT, sinT, interleave, kc, vc, maxCtx, io, \
        heads, headCount, wpr
template <class TW> __device__ __forceinline__ void qkv_rope_t(QKV_PARAMS) {
    extern __shared__ float smem_g[];
    float* part = smem_g;     // 16 floats: group_sum2
    float* red = smem_g + 16; // 33 floats: load_x
    float* xs = smem_g + 64;  // cols floats, 16-byte aligned: load_x
    PDL_LAUNCH();
    PDL_WAIT();
    const float* xv = x;
    if (normW) {
        load_x(xs, x, cols, normW, normB, eps, rms, red);
        xv = xs;
    }
    int half = hd / 2;
    int nq = (heads ? *headCount : H) * half, nk = KVH * half;
    int n = nq + 2 * nk;
    int p = io[0];
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int per = 8 / wpr, slot = w / wpr, sub = w % wpr;
    int t = sub * 32 + lane, T = 32 * wpr;
    for (int b0 = blockIdx.x * per; b0 < n; b0 += gridDim.x * per) {
        int u = b0 + slot;
        int kind = 0, hh = 0, j = 0, base = 0, r0 = 0, r1 = 0;
        float a0 = 0.f, a1 = 0.f;
        if (u < n) {
            if (u < nq) {
                hh = heads ? heads[u / half] : u / half;
                j = u % half;
                base = hh * hd;
            } else if (u < nq + nk) {
                kind = 1;
                hh = (u - nq) / half;
                j = (u - nq) % half;
                base = H * hd + hh * hd;
            } else {
                kind = 2;
                hh = (u - nq - nk) / half;
                j = (u - nq - nk) % half;
                base = (H + KVH) * hd + hh * hd;
            }
            int e0 = interleave ? 2 * j : j, e1 = interleave ? 2 * j + 1 : j + half;
            r0 = base + e0;
            r1 = base + e1;
            float2 d = dot2_s<TW>(W + (size_t)r0 * cols, W + (size_t)r1 * cols, xv, cols, t, T);
            a0 = d.x;
            a1 = d.y;
        }
        float2 s = group_sum2(a0, a1, wpr, part);
        if (u < n && sub == 0 && lane == 0) {
            a0 = s.x + (bias ? bias[r0] : 0.f);
            a1 = s.y + (bias ? bias[r1] : 0.f);
            if (kind < 2 && cosT) {
                float c = cosT[(size_t)p * half + j], sn = sinT[(size_t)p * half + j];
                float b0v = a0 * c - a1 * sn, b1v = a1 * c + a0 * sn;
                a0 = b0v;
                a1 = b1v;
            }
            qkv[r0] = a0;
            qkv[r1] = a1;
            if (kind > 0) {
                float* cache = kind == 1 ? kc : vc;
                size_t cb = ((size_t)hh * maxCtx + p) * hd;
                cache[cb + (r0 - base)] = a0;
                cache[cb + (r1 - base)] = a1;
            }
        }
    }
}

extern "C" __global__ void qkv_rope_f16(QKV_PARAMS) { qkv_rope_t<WF16>(QKV_ARGS); }
extern "C" __global__ void qkv_rope_bf16(QKV_PARAMS) { qkv_rope_t<WBF16>(QKV_ARGS); }

// qkv_defer is qkv_rope with deferred keys and values (docs/gpu.md,
// "Deferred K/V"): the same units and outputs for the query heads at the
// current position, but only the key/value heads needed, each caught up.
// done[g] is how many leading positions of key/value head g the cache
// holds, kin the layer's kept attention inputs (maxCtx × cols f32). The
// key/value heads computed are those the selected query heads read (heads
// set: the distinct heads[i] / group), or all KVH; each from position
// done[g] up to p + cur (exclusive), from kin for positions before p and
// from x at p (cur = 1: a decode step, which also keeps x in kin[p]; cur =
// 0: catch-up before a prompt, no query units). A head's
// positions come in chunks of KV_P, one unit per chunk and row pair, so a
// long catch-up spreads over the grid. Afterwards done[g] = p + cur for
// those heads and *kvStat is their number (how the counters move: KVM_ROWS
// below; without it, as in the first version, v13, the last block to
// finish, by the ticket *kvCnt, moves them).

// load_done reads the position (p = io[0]) and every key/value head's
// counter into dAll, and zeroes flag: with two rows of counters (par: row
// p & 1 is read), both rows are loaded beside the position, so that no
// load waits for another.
__device__ __forceinline__ void load_done(const int* __restrict__ io, const int* done, int KVH, int par, int* flag, int* dAll,
                                          int& p) {
    p = io[0];
    if (!done) return;
    for (int i = threadIdx.x; i < KVH; i += blockDim.x) {
        int a = done[i], b = par ? done[KVH + i] : 0;
        flag[i] = 0;
        dAll[i] = par && (p & 1) ? b : a;
    }
}

// qkv_defer (v14) computes the above with fewer waits before the first
// weight load and none after the last than v13 had (docs/gpu.md, v14):
//   - the position, the head count, the whole head list and every counter
//     are loaded in one round of independent loads (the list into shared
//     memory); v13 chained position → count → list → flags → done, then
//     the list again in each unit;
//   - with KVM_EARLY the position and the counters are read before the PDL
//     wait (neither is written by the kernels before this one in the
//     stream: the position is copied from the host before the step, and a
//     layer's counters are written only by its own qkv_defer launches, a
//     memset after a prompt or kv_clamp, each separated from the next
//     qkv_defer of that layer by a host-to-device copy or a memset);
//   - with KVM_ROWS the counters have two rows: the launch at position p
//     reads row p & 1 and its block 0 writes row (p + 1) & 1, which no
//     block of the launch reads — no ticket, no fence, no last block at
//     the end (v13: each block fenced and took a ticket, the last one
//     moved done[] on);
//   - a unit's bias is loaded before its weights; dot2_s batches the last
//     loads of a row;
//   - the np sums of a unit are reduced together (one barrier a round, the
//     partials double-buffered by round parity) instead of KV_P group_sum2
//     calls of two barriers each;
//   - block 0 keeps x in kin[p] after its units, not before.
// mode: KVM_CUR (cur above: a decode step's current position),
// KVM_EARLY, KVM_ROWS, KVM_SKIP (return at once: timing only, results
// wrong), KVM_HEADS (with KVM_EARLY: the head list and the plan made from
// it — which key/value heads, from which positions — before the PDL wait;
// the caller guarantees the list was written before this kernel's
// programmatic predecessors started). Dynamic shared memory: as
// qkv_rope's plus 4·KVH + 2 ints plus 4·(H + KVH) bytes.
#define KVM_CUR 1
#define KVM_EARLY 2
#define KVM_SKIP 4
#define KVM_ROWS 8
#define KVM_HEADS 16
#define QKVD2_PARAMS const w16* __restrict__ W, const float* __restrict__ x, const float* __restrict__ normW,        \
        const float* __restrict__ normB, float eps, int rms, const float* __restrict__ bias, float* qkv, int cols,    \
        int H, int KVH, int hd, const float* __restrict__ cosT, const float* __restrict__ sinT, int interleave,       \
        float* kc, float* vc, int maxCtx, const int* __restrict__ io, const int* __restrict__ heads,                 \
        const int* __restrict__ headCount, int wpr, int* done, float* kin, int* kvCnt, int* kvStat, int group, int mode
#define QKVD2_ARGS W, x, normW, normB, eps, rms, bias, qkv, cols, H, KVH, hd, cosT, sinT, interleave, kc, vc, maxCtx, io, \
        heads, headCount, wpr, done, kin, kvCnt, kvStat, group, mode
template <class TW> __device__ __forceinline__ void qkv_defer2_t(QKVD2_PARAMS) {
    extern __shared__ float smem_g[];
    __shared__ float rp[2][8][2 * KV_P]; // per warp, by round parity: the np pairs of partial sums
    float* red = smem_g + 16;            // 33 floats: load_x
    float* xs = smem_g + 64;             // cols floats, 16-byte aligned: load_x
    int* lastBlk = reinterpret_cast<int*>(smem_g) + 56;
    int* need = reinterpret_cast<int*>(smem_g + 64 + (normW ? cols : 0));
    int *flag = need + KVH, *dn = need + 2 * KVH, *cOff = need + 3 * KVH, *nNeedS = need + 4 * KVH + 1;
    int *hl = need + 4 * KVH + 2, *dAll = hl + H; // the head list, every done[g]
    int cur = mode & KVM_CUR, rows = mode & KVM_ROWS;
    int half = hd / 2;
    int p = 0, nh = H;
    int nNeed = KVH, nChunks = KVH;
    // The plan: which key/value heads this launch computes (flag, need),
    // from which positions (dn), in how many chunks (cOff); block 0 moves
    // the counters on (KVM_ROWS). Needs the head list, the counters and a
    // barrier after they were stored.
    auto plan = [&]() {
        if (done) {
            if (heads) {
                for (int i = threadIdx.x; i < nh; i += blockDim.x) flag[hl[i] / group] = 1;
                __syncthreads();
            }
            if (threadIdx.x < 32) {
                int lane = threadIdx.x, n = KVH;
                if (heads) {
                    n = 0;
                    for (int g0 = 0; g0 < KVH; g0 += 32) {
                        int g = g0 + lane;
                        int f = g < KVH ? flag[g] : 0;
                        unsigned m = __ballot_sync(FULL, f);
                        if (f) need[n + __popc(m & ((1u << lane) - 1))] = g;
                        n += __popc(m);
                    }
                    __syncwarp();
                }
                int run = 0;
                for (int i0 = 0; i0 < n; i0 += 32) {
                    int i = i0 + lane, c = 0;
                    if (i < n) {
                        int d0 = dAll[heads ? need[i] : i];
                        dn[i] = d0;
                        int L = p + cur - d0;
                        c = L > 0 ? (L + KV_P - 1) / KV_P : 0;
                    }
                    int sc = c;
#pragma unroll
                    for (int o = 1; o < 32; o <<= 1) {
                        int y = __shfl_up_sync(FULL, sc, o);
                        if (lane >= o) sc += y;
                    }
                    if (i < n) cOff[i] = run + sc - c;
                    run += __shfl_sync(FULL, sc, 31);
                }
                if (lane == 0) {
                    cOff[n] = run;
                    *nNeedS = n;
                }
            }
            __syncthreads();
            nNeed = *nNeedS;
            nChunks = cOff[nNeed];
            if (rows && blockIdx.x == 0) {
                // Two rows (KVM_ROWS): this launch reads row p & 1 and block 0
                // writes row (p + 1) & 1 (the next step's), which no block of
                // this launch reads: the heads computed here at p + cur, the
                // others as they were. No ticket, no fence: the next launch
                // runs after this one (PDL wait, or a copy in between).
                int* wr = done + ((p + 1) & 1) * KVH;
                for (int g = threadIdx.x; g < KVH; g += blockDim.x) wr[g] = !heads || flag[g] ? p + cur : dAll[g];
                if (threadIdx.x == 0 && kvStat) *kvStat = nNeed;
            }
        }
    };
    auto loadHeads = [&]() {
        if (!heads) return;
        nh = *headCount;
        for (int i = threadIdx.x; i < H; i += blockDim.x) hl[i] = heads[i];
    };
    // KVM_HEADS (with KVM_EARLY): the plan before the PDL wait.
    bool early = (mode & KVM_EARLY) && (mode & KVM_HEADS);
    PDL_LAUNCH();
    if (mode & KVM_EARLY) load_done(io, done, KVH, rows, flag, dAll, p);
    if (early) {
        loadHeads();
        __syncthreads();
        plan();
    }
    PDL_WAIT();
    if (mode & KVM_SKIP) return;
    // One round of independent loads: nothing below waits on another global load.
    if (!(mode & KVM_EARLY)) load_done(io, done, KVH, rows, flag, dAll, p);
    if (!early) loadHeads();
    const float* xv = x;
    if (normW) {
        load_x(xs, x, cols, normW, normB, eps, rms, red); // ends with a barrier
        xv = xs;
    } else {
        __syncthreads();
    }
    if (!early) plan();
    int nq = cur ? nh * half : 0, nk = nChunks * half;
    int n = nq + 2 * nk;
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int per = 8 / wpr, slot = w / wpr, sub = w % wpr;
    int t = sub * 32 + lane, T = 32 * wpr;
    int par = 0;
    for (int b0 = blockIdx.x * per; b0 < n; b0 += gridDim.x * per, par ^= 1) {
        int u = b0 + slot;
        int kind = 0, hh = 0, j = 0, base = 0, r0 = 0, r1 = 0, q0 = p, np = 0;
        float s0[KV_P], s1[KV_P];
#pragma unroll
        for (int k = 0; k < KV_P; k++) s0[k] = s1[k] = 0.f;
        float b0v = 0.f, b1v = 0.f;
        if (u < n) {
            np = 1;
            if (u < nq) {
                hh = heads ? hl[u / half] : u / half;
                j = u % half;
                base = hh * hd;
            } else {
                kind = u < nq + nk ? 1 : 2;
                int v = u - nq - (kind == 2 ? nk : 0);
                int hc = v / half;
                j = v % half;
                hh = hc;
                if (done) { // the head whose chunks hold hc: the last i with cOff[i] ≤ hc
                    int lo = 0, hi = nNeed - 1;
                    while (lo < hi) {
                        int mid = (lo + hi + 1) >> 1;
                        if (cOff[mid] <= hc) lo = mid;
                        else hi = mid - 1;
                    }
                    hh = heads ? need[lo] : lo;
                    q0 = dn[lo] + (hc - cOff[lo]) * KV_P;
                    np = min(KV_P, p + cur - q0);
                }
                base = (kind == 1 ? H : H + KVH) * hd + hh * hd;
            }
            int e0 = interleave ? 2 * j : j, e1 = interleave ? 2 * j + 1 : j + half;
            r0 = base + e0;
            r1 = base + e1;
            if (bias) {
                b0v = bias[r0];
                b1v = bias[r1];
            }
            const w16 *w0 = W + (size_t)r0 * cols, *w1 = W + (size_t)r1 * cols;
            if (np == 1) {
                float2 d = dot2_s<TW>(w0, w1, q0 == p ? xv : kin + (size_t)q0 * cols, cols, t, T);
                s0[0] = d.x;
                s1[0] = d.y;
            } else {
                const float* xq[KV_P];
#pragma unroll
                for (int k = 0; k < KV_P; k++) {
                    int q = q0 + min(k, np - 1);
                    xq[k] = q == p ? xv : kin + (size_t)q * cols;
                }
                dot2_m<TW>(w0, w1, xq, cols, t, T, s0, s1);
            }
        }
        // np is the same in every warp of the unit: warp sums of its np
        // pairs, then (wpr > 1) the group's first warp adds the others'.
#pragma unroll
        for (int k = 0; k < KV_P; k++)
            if (k < np) {
                s0[k] = warp_sum(s0[k]);
                s1[k] = warp_sum(s1[k]);
            }
        if (wpr > 1) {
            if (lane == 0)
#pragma unroll
                for (int k = 0; k < KV_P; k++)
                    if (k < np) {
                        rp[par][w][2 * k] = s0[k];
                        rp[par][w][2 * k + 1] = s1[k];
                    }
            __syncthreads();
            if (sub == 0 && lane == 0)
                for (int m = 1; m < wpr; m++)
#pragma unroll
                    for (int k = 0; k < KV_P; k++)
                        if (k < np) {
                            s0[k] += rp[par][w + m][2 * k];
                            s1[k] += rp[par][w + m][2 * k + 1];
                        }
        }
        if (sub == 0 && lane == 0)
#pragma unroll
            for (int k = 0; k < KV_P; k++) {
                if (k >= np) break;
                int q = q0 + k;
                float a0 = s0[k] + b0v, a1 = s1[k] + b1v;
                if (kind < 2 && cosT) {
                    float c = cosT[(size_t)q * half + j], sn = sinT[(size_t)q * half + j];
                    float c0 = a0 * c - a1 * sn, c1 = a1 * c + a0 * sn;
                    a0 = c0;
                    a1 = c1;
                }
                if (q == p) {
                    qkv[r0] = a0;
                    qkv[r1] = a1;
                }
                if (kind > 0) {
                    float* cache = kind == 1 ? kc : vc;
                    size_t cb = ((size_t)hh * maxCtx + q) * hd;
                    cache[cb + (r0 - base)] = a0;
                    cache[cb + (r1 - base)] = a1;
                }
            }
    }
    if (done && cur && kin && blockIdx.x == 0) // later steps' catch-ups read it; no unit of this launch does
        for (int i = threadIdx.x; i < cols; i += blockDim.x) kin[(size_t)p * cols + i] = xv[i];
    if (done && !rows) {
        // Every block has read done[] (into dAll): the last one moves it on.
        __syncthreads();
        if (threadIdx.x == 0) {
            __threadfence();
            *lastBlk = atomicAdd(kvCnt, 1) == (int)gridDim.x - 1;
        }
        __syncthreads();
        if (*lastBlk) {
            for (int i = threadIdx.x; i < nNeed; i += blockDim.x) done[heads ? need[i] : i] = p + cur;
            if (threadIdx.x == 0) {
                *kvCnt = 0;
                if (kvStat) *kvStat = nNeed;
            }
        }
    }
}

// Three blocks an SM: at most 80 registers (bf16 took 92 without the
// bound, two blocks an SM, and lost what deferring gains; docs/gpu.md).
extern "C" __global__ void __launch_bounds__(256, 3) qkv_defer_f16(QKVD2_PARAMS) { qkv_defer2_t<WF16>(QKVD2_ARGS); }
extern "C" __global__ void __launch_bounds__(256, 3) qkv_defer_bf16(QKVD2_PARAMS) { qkv_defer2_t<WBF16>(QKVD2_ARGS); }

// kv_clamp: done[i] = min(done[i], n) for i < count (deferred K/V after a
// truncation of the sequence to n tokens).
extern "C" __global__ void kv_clamp(int* done, int n, int count) {
    PDL_LAUNCH();
    PDL_WAIT();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) done[i] = min(done[i], n);
}

// ld_tail loads row[c0 … c0+8) one element at a time, zero past cols.
__device__ __forceinline__ uint4 ld_tail(const w16* row, int c0, int cols) {
    uint4 v;
    unsigned short* t = reinterpret_cast<unsigned short*>(&v);
#pragma unroll
    for (int i = 0; i < 8; i++) t[i] = c0 + i < cols ? row[c0 + i] : 0;
    return v;
}

// accum_rows: y[c] += Σ_k coef_k · WT[r_k][c] (+ bias[c]), over the K =
// *count·blk (or K) selected rows of a transposed (neuron-major) matrix of
// `cols` columns; r_k = idx[k / blk]·blk + k % blk (r_k = k without idx);
// coef_k = a[r_k] when aByRow is set, else a[k]. Block: 256 threads = 8
// warps over one strip of 256 columns, each thread 8 columns; blockIdx.y
// splits the rows; partial sums meet in shared memory, then one atomic add
// per column per block.
//
// With early set (and batch), idx and *count (when given) were written
// before this kernel's programmatic predecessors started (the caller
// guarantees it: a selection copied before the step, or made in an earlier
// layer behind a full graph edge), so each warp loads its first eight rows
// before the PDL wait, overlapping the kernel before it. Only a and y are
// read after the wait.
//
// With done set, the block that finishes last (a counter at *done, reset
// by that block) also normalizes the finished y (LayerNorm with nW/nB, or
// RMSNorm when rms; eps) into nOut and, when stdOut is set, standardizes
// it (eps2, no affine weights) into stdOut: the next norm without a kernel
// of its own.
#define ACC_NORM_PER 24
#define ACCUM_PARAMS const w16* __restrict__ WT, const float* __restrict__ a, const int* __restrict__ idx, \
        const int* __restrict__ count, int blk, int K, int aByRow, int cols, const float* __restrict__ bias,  \
        float* y, int* done, const float* __restrict__ nW, const float* __restrict__ nB, float* nOut,         \
        float eps, int rms, float* stdOut, float eps2, int batch, int early
#define ACCUM_ARGS WT, a, idx, count, blk, K, aByRow, cols, bias, y, done, nW, nB, nOut, eps, rms, stdOut, eps2, batch, early
template <class TW> __device__ __forceinline__ void accum_rows_t(ACCUM_PARAMS) {
    __shared__ float part[8][257];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    int c0 = blockIdx.x * 256 + lane * 8;
    PDL_LAUNCH();
    bool vec = (cols & 7) == 0 && c0 + 8 <= cols;
    // The rows of batch step k (eight a warp, kk = k + 8u; r = -1 past k1).
    auto load8 = [&](int k, int k1, uint4* v, int* r) {
#pragma unroll
        for (int u = 0; u < 8; u++) {
            int kk = k + 8 * u;
            r[u] = -1;
            v[u] = make_uint4(0, 0, 0, 0);
            if (kk < k1) {
                r[u] = idx ? idx[kk / blk] * blk + kk % blk : kk;
                v[u] = vec ? ldw(WT + (size_t)r[u] * cols + c0) : ld_tail(WT + (size_t)r[u] * cols, c0, cols);
            }
        }
    };
    bool pre = batch && early;
    int n = 0, k0 = 0, k1 = 0;
    uint4 v0[8];
    int r0[8];
    if (pre) {
        n = count ? (*count) * blk : K;
        int per = (n + gridDim.y - 1) / gridDim.y;
        k0 = blockIdx.y * per, k1 = min(n, k0 + per);
        load8(k0 + w, k1, v0, r0);
    }
    PDL_WAIT();
    if (!pre) {
        n = count ? (*count) * blk : K;
        int per = (n + gridDim.y - 1) / gridDim.y;
        k0 = blockIdx.y * per, k1 = min(n, k0 + per);
    }
    float acc[8];
#pragma unroll
    for (int i = 0; i < 8; i++) acc[i] = 0.f;
    int k = k0 + w;
    // batch: eight rows a step, the last step's missing rows predicated
    // off, so a warp's few rows of a sparse product are one round of row
    // indices and one round of loads, not a chain of single rows.
    if (batch) {
        for (bool first = pre; k < k1; k += 64, first = false) {
            if (!first) load8(k, k1, v0, r0);
            float cf[8];
#pragma unroll
            for (int u = 0; u < 8; u++) cf[u] = r0[u] < 0 ? 0.f : aByRow ? a[r0[u]] : a[k + 8 * u];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                const unsigned* h = reinterpret_cast<const unsigned*>(&v0[u]);
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    float2 f = TW::pair(h[i]);
                    acc[2 * i] += cf[u] * f.x;
                    acc[2 * i + 1] += cf[u] * f.y;
                }
            }
        }
    }
    // Four rows per step keep four 16-byte loads in flight per thread.
    for (; k + 24 < k1; k += 32) {
        uint4 v[4];
        float cf[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            int kk = k + 8 * u;
            int r = idx ? idx[kk / blk] * blk + kk % blk : kk;
            cf[u] = aByRow ? a[r] : a[kk];
            v[u] = vec ? ldw(WT + (size_t)r * cols + c0) : ld_tail(WT + (size_t)r * cols, c0, cols);
        }
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const unsigned* h = reinterpret_cast<const unsigned*>(&v[u]);
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float2 f = TW::pair(h[i]);
                acc[2 * i] += cf[u] * f.x;
                acc[2 * i + 1] += cf[u] * f.y;
            }
        }
    }
    for (; k < k1; k += 8) {
        int r = idx ? idx[k / blk] * blk + k % blk : k;
        float cf = aByRow ? a[r] : a[k];
        uint4 v = vec ? ldw(WT + (size_t)r * cols + c0) : ld_tail(WT + (size_t)r * cols, c0, cols);
        const unsigned* h = reinterpret_cast<const unsigned*>(&v);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float2 f = TW::pair(h[i]);
            acc[2 * i] += cf * f.x;
            acc[2 * i + 1] += cf * f.y;
        }
    }
#pragma unroll
    for (int i = 0; i < 8; i++) part[w][lane * 8 + i] = acc[i];
    __syncthreads();
    int c = blockIdx.x * 256 + threadIdx.x;
    if (c < cols) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < 8; i++) s += part[i][threadIdx.x];
        if (bias && blockIdx.y == 0) s += bias[c];
        if (k0 < k1 || (bias && blockIdx.y == 0)) atomicAdd(&y[c], s);
    }
    if (!done) return;
    __shared__ int last;
    TL_MARK(2);
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        int total = gridDim.x * gridDim.y;
        last = atomicAdd(done, 1) == total - 1;
        if (last) *done = 0;
    }
    __syncthreads();
    if (!last) return;
    TL_MARK_ANY(3);
    __threadfence();
    float* red = &part[0][0]; // 33 floats
    // The row in registers (ACC_NORM_PER values a thread, loads all in
    // flight) when it fits, else read from L2 three times.
    const int P = ACC_NORM_PER;
    bool reg = cols <= P * (int)blockDim.x;
    float v[P];
    float sum = 0.f;
    if (reg) {
#pragma unroll
        for (int k = 0; k < P; k++) {
            int i = threadIdx.x + k * blockDim.x;
            v[k] = i < cols ? __ldcg(y + i) : 0.f;
        }
#pragma unroll
        for (int k = 0; k < P; k++) sum += v[k];
    } else {
        for (int i = threadIdx.x; i < cols; i += blockDim.x) sum += __ldcg(y + i);
    }
    float mean = rms ? 0.f : block_sum(sum, red) / cols;
    float q = 0.f;
    if (reg) {
#pragma unroll
        for (int k = 0; k < P; k++) {
            int i = threadIdx.x + k * blockDim.x;
            float t = i < cols ? v[k] - mean : 0.f;
            q += t * t;
        }
    } else {
        for (int i = threadIdx.x; i < cols; i += blockDim.x) {
            float t = __ldcg(y + i) - mean;
            q += t * t;
        }
    }
    float var = block_sum(q, red) / cols;
    TL_MARK_ANY(4);
    float inv = rsqrtf(var + eps), inv2 = rsqrtf(var + eps2);
    if (reg) {
#pragma unroll
        for (int k = 0; k < P; k++) {
            int i = threadIdx.x + k * blockDim.x;
            if (i < cols) {
                if (stdOut) stdOut[i] = (v[k] - mean) * inv2;
                float o = (v[k] - mean) * inv * nW[i];
                if (nB) o += nB[i];
                nOut[i] = o;
            }
        }
        TL_MARK_ANY(5);
        return;
    }
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float x = __ldcg(y + i);
        if (stdOut) stdOut[i] = (x - mean) * inv2;
        float o = (x - mean) * inv * nW[i];
        if (nB) o += nB[i];
        nOut[i] = o;
    }
}

extern "C" __global__ void accum_rows_f16(ACCUM_PARAMS) { accum_rows_t<WF16>(ACCUM_ARGS); }
extern "C" __global__ void accum_rows_bf16(ACCUM_PARAMS) { accum_rows_t<WBF16>(ACCUM_ARGS); }

// norm: one block per row of d values. LayerNorm (rms = 0, with w and b)
// or RMSNorm (rms = 1, w only); w = NULL copies. out (f32) and out16 (f16)
// may each be NULL; out may be x; out16 is f16, or bf16 when bf is set.
// With stdOut set (one row), the row standardized with the same statistics
// and eps2, without w and b — a predictor's input — goes to stdOut. Rows of
// up to 8·blockDim values are held in registers (one read of x); longer
// rows are read three times.
#define NORM_PER 8
extern "C" __global__ void norm_rows(const float* x, const float* __restrict__ w, const float* __restrict__ b,
                                     float* out, w16* out16, int d, float eps, int rms, int bf, float* stdOut,
                                     float eps2) {
    PDL_LAUNCH();
    __shared__ float sh[33];
    const float* xr = x + (size_t)blockIdx.x * d;
    float mean = 0.f, inv = 1.f, inv2 = 1.f;
    bool reg = d <= NORM_PER * (int)blockDim.x;
    // The norm's weights before the wait (they depend on no earlier kernel).
    float wv[NORM_PER], bv[NORM_PER];
#pragma unroll
    for (int k = 0; k < NORM_PER; k++) {
        int i = threadIdx.x + k * blockDim.x;
        wv[k] = reg && w && i < d ? __ldg(w + i) : 1.f;
        bv[k] = reg && b && i < d ? __ldg(b + i) : 0.f;
    }
    PDL_WAIT();
    float v[NORM_PER];
#pragma unroll
    for (int k = 0; k < NORM_PER; k++) {
        int i = threadIdx.x + k * blockDim.x;
        v[k] = reg && i < d ? xr[i] : 0.f;
    }
    if (w) {
        if (!rms) {
            float s = 0.f;
            if (reg) {
#pragma unroll
                for (int k = 0; k < NORM_PER; k++) s += v[k];
            } else {
                for (int i = threadIdx.x; i < d; i += blockDim.x) s += xr[i];
            }
            mean = block_sum(s, sh) / d;
        }
        float q = 0.f;
        if (reg) {
#pragma unroll
            for (int k = 0; k < NORM_PER; k++) {
                int i = threadIdx.x + k * blockDim.x;
                float t = i < d ? v[k] - mean : 0.f;
                q += t * t;
            }
        } else {
            for (int i = threadIdx.x; i < d; i += blockDim.x) {
                float t = xr[i] - mean;
                q += t * t;
            }
        }
        float var = block_sum(q, sh) / d;
        inv = rsqrtf(var + eps);
        inv2 = rsqrtf(var + eps2);
    }
    __syncthreads();
    if (reg) {
#pragma unroll
        for (int k = 0; k < NORM_PER; k++) {
            int i = threadIdx.x + k * blockDim.x;
            if (i < d) {
                float o = v[k];
                if (stdOut) stdOut[i] = (o - mean) * inv2;
                if (w) o = (o - mean) * inv * wv[k] + bv[k];
                if (out) out[(size_t)blockIdx.x * d + i] = o;
                if (out16) out16[(size_t)blockIdx.x * d + i] = to16(o, bf);
            }
        }
        return;
    }
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float o = xr[i];
        if (stdOut) stdOut[i] = (o - mean) * inv2;
        if (w) {
            o = (o - mean) * inv * w[i];
            if (b) o += b[i];
        }
        if (out) out[(size_t)blockIdx.x * d + i] = o;
        if (out16) out16[(size_t)blockIdx.x * d + i] = to16(o, bf);
    }
}

// embed: x[i] = E[ids[i]] for the n tokens of the step (ids in io[1...]).
// E is f16, or bf16 when bf is set.
extern "C" __global__ void embed_rows(const w16* __restrict__ E, const int* __restrict__ io, float* x, int n, int dim, int bf) {
    PDL_LAUNCH();
    PDL_WAIT();
    int i = blockIdx.y;
    if (i >= n) return;
    const w16* e = E + (size_t)io[1 + i] * dim;
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < dim; c += gridDim.x * blockDim.x)
        x[(size_t)i * dim + c] = bf ? WBF16::one(e[c]) : WF16::one(e[c]);
}

// add_pos: x[i] += P[pos + i + 2] (OPT's learned positions, offset 2); P
// is f32 when f32 is set, else f16.
extern "C" __global__ void add_pos(const void* __restrict__ P, const int* __restrict__ io, float* x, int n, int d, int f32) {
    PDL_LAUNCH();
    PDL_WAIT();
    int i = blockIdx.y;
    if (i >= n) return;
    size_t r = (size_t)(io[0] + i + 2) * d;
    const float* pf = reinterpret_cast<const float*>(P) + r;
    const w16* ph = reinterpret_cast<const w16*>(P) + r;
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < d; c += gridDim.x * blockDim.x)
        x[(size_t)i * d + c] += f32 ? pf[c] : WF16::one(ph[c]);
}

// The prompt's elementwise kernels take four consecutive elements a
// thread, with 16-byte loads where the rows allow (one 4-byte load a
// thread ran at ~1.1 TB/s; docs/gpu.md, v21): grid (⌈d/(4·blockDim)⌉, n),
// row i = blockIdx.y.

// add_bias: x[i][j] += b[j] for n rows of d.
extern "C" __global__ void add_bias(float* x, const float* __restrict__ b, int n, int d) {
    PDL_LAUNCH();
    PDL_WAIT();
    int j = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    float* r = x + (size_t)blockIdx.y * d;
    if ((d & 3) == 0 && j < d) {
        float4 v = *reinterpret_cast<float4*>(r + j), c = __ldg(reinterpret_cast<const float4*>(b + j));
        *reinterpret_cast<float4*>(r + j) = make_float4(v.x + c.x, v.y + c.y, v.z + c.z, v.w + c.w);
        return;
    }
    for (int k = j; k < min(j + 4, d); k++) r[k] += b[k];
}

// to_f16: y = x rounded to f16, or bf16 when bf is set (n rows of d from x
// with row stride ldx).
extern "C" __global__ void to_f16(const float* __restrict__ x, int ldx, w16* y, int n, int d, int bf) {
    PDL_LAUNCH();
    PDL_WAIT();
    int j = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    const float* r = x + (size_t)blockIdx.y * ldx;
    w16* o = y + (size_t)blockIdx.y * d;
    if ((d & 3) == 0 && (ldx & 3) == 0 && j < d) {
        float4 v = *reinterpret_cast<const float4*>(r + j);
        *reinterpret_cast<uint2*>(o + j) = make_uint2(to16(v.x, bf) | (unsigned)to16(v.y, bf) << 16, to16(v.z, bf) | (unsigned)to16(v.w, bf) << 16);
        return;
    }
    for (int k = j; k < min(j + 4, d); k++) o[k] = to16(r[k], bf);
}

// act_rows: h[i][j] = act(u[i][j] + b[j]) (times u[i][F+j] + b[F+j] when
// gated) as f16 (bf16 when bf is set), for n rows of the up (or gate|up)
// products of stride ld.
extern "C" __global__ void act_rows(const float* __restrict__ u, int ld, const float* __restrict__ b,
                                    w16* h, int n, int F, int gated, int act, int bf) {
    PDL_LAUNCH();
    PDL_WAIT();
    int j = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    const float* r = u + (size_t)blockIdx.y * ld;
    w16* o = h + (size_t)blockIdx.y * F;
    if ((F & 3) == 0 && (ld & 3) == 0 && j < F) {
        float4 a = *reinterpret_cast<const float4*>(r + j), c = b ? __ldg(reinterpret_cast<const float4*>(b + j)) : make_float4(0.f, 0.f, 0.f, 0.f);
        a = make_float4(act_apply(a.x + c.x, act), act_apply(a.y + c.y, act), act_apply(a.z + c.z, act), act_apply(a.w + c.w, act));
        if (gated) {
            float4 g = *reinterpret_cast<const float4*>(r + F + j),
                   e = b ? __ldg(reinterpret_cast<const float4*>(b + F + j)) : make_float4(0.f, 0.f, 0.f, 0.f);
            a = make_float4(a.x * (g.x + e.x), a.y * (g.y + e.y), a.z * (g.z + e.z), a.w * (g.w + e.w));
        }
        *reinterpret_cast<uint2*>(o + j) = make_uint2(to16(a.x, bf) | (unsigned)to16(a.y, bf) << 16, to16(a.z, bf) | (unsigned)to16(a.w, bf) << 16);
        return;
    }
    for (int k = j; k < min(j + 4, F); k++) {
        float a = act_apply(r[k] + (b ? b[k] : 0.f), act);
        if (gated) a *= r[F + k] + (b ? b[F + k] : 0.f);
        o[k] = to16(a, bf);
    }
}

// rope_store: for token i of the step (position p = io[0] + i), add the
// q|k|v bias (when set) to its heads, rotate its query heads and key heads
// in place (when cos is set; half-split or interleaved pairs) and store its
// keys and values in the head-major caches (KVH × maxCtx × hd). qkv rows
// have stride ld: H query heads, then KVH key heads, then KVH value heads
// (the bias the same). grid (n, ⌈(H + KVH)/8⌉), 256 threads: a warp a
// head (query or key; a key head's warp stores its value head too), four
// elements a lane with 16-byte loads where hd allows (hd % 8 == 0: a
// rotated quad's partners are a quad too).
__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 add4(float4 a, float4 b) { return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }
extern "C" __global__ void rope_store(float* qkv, int ld, int n, int H, int KVH, int hd,
                                      const float* __restrict__ cosT, const float* __restrict__ sinT,
                                      int interleave, float* kc, float* vc, int maxCtx, const int* __restrict__ io,
                                      const float* __restrict__ bias) {
    PDL_LAUNCH();
    PDL_WAIT();
    int i = blockIdx.x, lane = threadIdx.x & 31, h = blockIdx.y * 8 + (threadIdx.x >> 5);
    if (h >= H + KVH) return;
    int p = io[0] + i, half = hd / 2;
    float* row = qkv + (size_t)i * ld;
    int off = h < H ? h * hd : H * hd + (h - H) * hd;
    float* x = row + off;
    const float* bx = bias ? bias + off : nullptr;
    const float* cs = cosT ? cosT + (size_t)p * half : nullptr;
    const float* sn = cosT ? sinT + (size_t)p * half : nullptr;
    const float4 z4 = make_float4(0.f, 0.f, 0.f, 0.f);
    if ((hd & 7) == 0) {
        if (cs && !interleave) { // pairs (j, j + half): quads j … j + 3 and their partners
            for (int j = 4 * lane; j < half; j += 128) {
                float4 a = add4(ld4(x + j), bx ? ld4(bx + j) : z4), b = add4(ld4(x + j + half), bx ? ld4(bx + j + half) : z4);
                float4 c = ld4(cs + j), s = ld4(sn + j);
                *reinterpret_cast<float4*>(x + j) = make_float4(a.x * c.x - b.x * s.x, a.y * c.y - b.y * s.y, a.z * c.z - b.z * s.z, a.w * c.w - b.w * s.w);
                *reinterpret_cast<float4*>(x + j + half) = make_float4(b.x * c.x + a.x * s.x, b.y * c.y + a.y * s.y, b.z * c.z + a.z * s.z, b.w * c.w + a.w * s.w);
            }
        } else {
            for (int e = 4 * lane; e < hd; e += 128) {
                float4 a = add4(ld4(x + e), bx ? ld4(bx + e) : z4);
                if (cs) { // interleaved: pairs (e, e + 1) and (e + 2, e + 3), angles e/2 and e/2 + 1
                    float c0 = cs[e / 2], s0 = sn[e / 2], c1 = cs[e / 2 + 1], s1 = sn[e / 2 + 1];
                    a = make_float4(a.x * c0 - a.y * s0, a.y * c0 + a.x * s0, a.z * c1 - a.w * s1, a.w * c1 + a.z * s1);
                }
                *reinterpret_cast<float4*>(x + e) = a;
            }
        }
    } else if (cs) {
        for (int j = lane; j < half; j += 32) {
            int i0 = interleave ? 2 * j : j, i1 = interleave ? 2 * j + 1 : j + half;
            float a = x[i0] + (bx ? bx[i0] : 0.f), b = x[i1] + (bx ? bx[i1] : 0.f);
            x[i0] = a * cs[j] - b * sn[j];
            x[i1] = b * cs[j] + a * sn[j];
        }
    } else if (bx) {
        for (int e = lane; e < hd; e += 32) x[e] += bx[e];
    }
    if (h < H) return;
    __syncwarp(); // the key head is final
    int g = h - H;
    float* v = row + (H + KVH) * hd + g * hd;
    const float* bv = bias ? bias + (H + KVH) * hd + g * hd : nullptr;
    size_t base = ((size_t)g * maxCtx + p) * hd;
    if ((hd & 3) == 0) {
        for (int e = 4 * lane; e < hd; e += 128) {
            float4 ve = ld4(v + e);
            if (bv) *reinterpret_cast<float4*>(v + e) = ve = add4(ve, ld4(bv + e));
            *reinterpret_cast<float4*>(kc + base + e) = ld4(x + e);
            *reinterpret_cast<float4*>(vc + base + e) = ve;
        }
        return;
    }
    for (int e = lane; e < hd; e += 32) {
        float ve = v[e];
        if (bv) v[e] = ve += bv[e];
        kc[base + e] = x[e];
        vc[base + e] = ve;
    }
}

// attention: for token i of the step (position p = io[0] + i) and head h
// (heads[blockIdx.y] when heads is set, for blockIdx.y < *headCount), the
// softmax of the query against the cached keys of its key/value group
// (positions max(0, p-window+1)…p), applied to the cached values, into
// out[i·ldo + h·hd …]. grid (n, heads), 128 threads, dynamic shared
// memory (maxCtx + hd + 33) floats plus 4·hd floats for the partial sums.
extern "C" __global__ void attention(const float* __restrict__ qkv, int ld, const float* __restrict__ kc,
                                     const float* __restrict__ vc, float* out, int ldo, int H, int KVH, int hd,
                                     int maxCtx, int window, float scale, const int* __restrict__ io,
                                     const int* __restrict__ heads, const int* __restrict__ headCount) {
    PDL_LAUNCH();
    PDL_WAIT();
    extern __shared__ float smem[];
    int i = blockIdx.x;
    if (heads && (int)blockIdx.y >= *headCount) return;
    int h = heads ? heads[blockIdx.y] : blockIdx.y;
    int p = io[0] + i;
    int lo = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;
    int L = p + 1 - lo;
    int g = h / (H / KVH);
    float* q = smem;             // hd
    float* red = q + hd;         // 33
    float* sc = red + 33;        // maxCtx
    float* acc = sc + maxCtx;    // 4·hd partials
    const float* qs = qkv + (size_t)i * ld + h * hd;
    for (int e = threadIdx.x; e < hd; e += blockDim.x) q[e] = qs[e];
    __syncthreads();
    const float* K = kc + ((size_t)g * maxCtx + lo) * hd;
    const float* V = vc + ((size_t)g * maxCtx + lo) * hd;
    // Scores: one warp per key, lanes over the head dimension.
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int t = wid; t < L; t += nw) {
        const float* k = K + (size_t)t * hd;
        float s = 0.f;
        for (int e = lane; e < hd; e += 32) s += q[e] * k[e];
        s = warp_sum(s);
        if (lane == 0) sc[t] = s * scale;
    }
    __syncthreads();
    float inv = 1.f / block_softmax(sc, L, red).y;
    // Weighted values: parts = blockDim / hd groups of threads split the keys.
    float* o = out + (size_t)i * ldo + h * hd;
    if (hd <= (int)blockDim.x) {
        int parts = blockDim.x / hd;
        if (parts > 4) parts = 4;
        int e = threadIdx.x % hd, part = threadIdx.x / hd;
        if (part < parts) {
            float s = 0.f;
            for (int t = part; t < L; t += parts) s += sc[t] * V[(size_t)t * hd + e];
            acc[part * hd + e] = s;
        }
        __syncthreads();
        if (threadIdx.x < hd) {
            float s = 0.f;
            for (int k = 0; k < parts; k++) s += acc[k * hd + threadIdx.x];
            o[threadIdx.x] = s * inv;
        }
    } else {
        for (int e = threadIdx.x; e < hd; e += blockDim.x) {
            float s = 0.f;
            for (int t = 0; t < L; t++) s += sc[t] * V[(size_t)t * hd + e];
            o[e] = s * inv;
        }
    }
}

// attn_merge combines the S partial results of one head (part: S rows of
// hd unnormalized outputs, the split's max score and its sum of
// exponentials) into out[0 … hd): the flash-decoding combine. S ≤
// blockDim.x: thread s loads split s's max and sum together, while each
// thread of the output loads its first eight partial values. ws holds S
// floats; red 33. Every thread of the block calls it.
__device__ void attn_merge(const float* part, int S, int hd, float* out, float* ws, float* red) {
    int s = threadIdx.x;
    float ms = __int_as_float(0xff800000), ls = 0.f;
    if (s < S) {
        ms = __ldcg(part + (size_t)s * (hd + 2) + hd);
        ls = __ldcg(part + (size_t)s * (hd + 2) + hd + 1);
    }
    float pv[8];
    int e0 = threadIdx.x;
#pragma unroll
    for (int k = 0; k < 8; k++) pv[k] = e0 < hd && k < S ? __ldcg(part + (size_t)k * (hd + 2) + e0) : 0.f;
    float M = block_max(ms, red);
    float w = __expf(ms - M); // an empty split (max −inf) weighs 0
    if (s < S) ws[s] = w;
    float l = block_sum(s < S ? w * ls : 0.f, red); // ends with every ws[] written (block_sum has barriers)
    __syncthreads();
    float inv = 1.f / l;
    for (int e = e0; e < hd; e += blockDim.x) {
        float o = 0.f;
        if (e == e0) {
#pragma unroll
            for (int k = 0; k < 8; k++)
                if (k < S) o += ws[k] * pv[k];
        } else {
#pragma unroll
            for (int k = 0; k < 8; k++)
                if (k < S) o += ws[k] * __ldcg(part + (size_t)k * (hd + 2) + e);
        }
#pragma unroll 8
        for (int k = 8; k < S; k++) o += ws[k] * __ldcg(part + (size_t)k * (hd + 2) + e);
        out[e] = o * inv;
    }
}

// attn_prompt is attention for a prompt batch — the n queries at
// positions io[0] … io[0] + n − 1 (causal; window > 0: the last window
// positions only) — as attention computes it, but a block per AP_Q
// queries of one head: each tile of AP_K keys and values is loaded into
// shared memory once for all of them, and every query keeps a running
// max, sum and output (flash attention's online softmax) instead of all
// its scores. Warp w takes queries w, w + 4, w + 8, w + 12, lane j key j
// of the tile: its four scores share every 16-byte load of the key, and
// stay in registers for the softmax; each value row is read once for the
// four queries. 128 threads; hd a multiple of 4, at most 32·AP_E; dynamic
// shared memory 4·(AP_Q·hd + AP_K·(hd + 4) + AP_K·hd) bytes (key rows
// padded by 4 floats: a quarter warp's 16-byte loads hit distinct banks).
#define AP_Q 16
#define AP_K 32
#define AP_E 8
extern "C" __global__ void __launch_bounds__(128) attn_prompt(const float* __restrict__ qkv, int ld, const float* __restrict__ kc,
                                                             const float* __restrict__ vc, float* out, int ldo, int H, int KVH,
                                                             int hd, int maxCtx, int window, float scale,
                                                             const int* __restrict__ io, int n) {
    PDL_LAUNCH();
    PDL_WAIT();
    extern __shared__ float4 sm_ap[];
    float* qs = reinterpret_cast<float*>(sm_ap); // AP_Q × hd
    float* ks = qs + AP_Q * hd;                 // AP_K × (hd + 4)
    float* vs = ks + AP_K * (hd + 4);           // AP_K × hd
    int h = blockIdx.y, g = h / (H / KVH), i0 = blockIdx.x * AP_Q;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, h4 = hd >> 2;
    int p0 = io[0] + i0, nq = min(AP_Q, n - i0);
    for (int t = threadIdx.x; t < AP_Q * h4; t += blockDim.x) {
        int qi = t / h4, e = t % h4;
        reinterpret_cast<float4*>(qs)[t] = qi < nq ? *reinterpret_cast<const float4*>(qkv + (size_t)(i0 + qi) * ld + h * hd + 4 * e)
                                                   : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    int hi = p0 + nq - 1, lo = window > 0 ? max(0, p0 - window + 1) : 0;
    const float* K = kc + (size_t)g * maxCtx * hd;
    const float* V = vc + (size_t)g * maxCtx * hd;
    const float ninf = __int_as_float(0xff800000);
    float m[4], l[4], acc[4][AP_E];
#pragma unroll
    for (int a = 0; a < 4; a++) {
        m[a] = ninf;
        l[a] = 0.f;
#pragma unroll
        for (int k = 0; k < AP_E; k++) acc[a][k] = 0.f;
    }
    for (int t0 = lo; t0 <= hi; t0 += AP_K) {
        __syncthreads(); // the previous tile is used up (and the queries are in)
        for (int t = threadIdx.x; t < AP_K * h4; t += blockDim.x) {
            int j = t / h4, e = t % h4;
            float4 kv = make_float4(0.f, 0.f, 0.f, 0.f), vv = kv;
            if (t0 + j <= hi) {
                kv = *reinterpret_cast<const float4*>(K + (size_t)(t0 + j) * hd + 4 * e);
                vv = *reinterpret_cast<const float4*>(V + (size_t)(t0 + j) * hd + 4 * e);
            }
            *reinterpret_cast<float4*>(ks + j * (hd + 4) + 4 * e) = kv;
            reinterpret_cast<float4*>(vs)[t] = vv;
        }
        __syncthreads();
        // Scores of key t0 + lane for the warp's four queries.
        float s[4] = {0.f, 0.f, 0.f, 0.f};
        const float4* kr = reinterpret_cast<const float4*>(ks + lane * (hd + 4));
        for (int e = 0; e < h4; e++) {
            float4 kv = kr[e];
#pragma unroll
            for (int a = 0; a < 4; a++) {
                float4 qv = reinterpret_cast<const float4*>(qs + (w + 4 * a) * hd)[e];
                s[a] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
            }
        }
        float pv[4];
#pragma unroll
        for (int a = 0; a < 4; a++) {
            int qi = w + 4 * a, pos = t0 + lane, pq = p0 + qi;
            float sc = qi < nq && pos <= pq && (window <= 0 || pos > pq - window) ? s[a] * scale : ninf;
            float mt = sc;
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) mt = fmaxf(mt, __shfl_xor_sync(FULL, mt, o));
            float mn = fmaxf(m[a], mt);
            pv[a] = 0.f;
            if (mn == ninf) continue; // nothing visible yet (uniform in the warp)
            float alpha = __expf(m[a] - mn);
            pv[a] = __expf(sc - mn);
            l[a] = l[a] * alpha + warp_sum(pv[a]);
            m[a] = mn;
#pragma unroll
            for (int k = 0; k < AP_E; k++) acc[a][k] *= alpha;
        }
        for (int j = 0; j < AP_K; j++) {
            float vk[AP_E];
#pragma unroll
            for (int k = 0; k < AP_E; k++) {
                int e = lane + 32 * k;
                vk[k] = e < hd ? vs[j * hd + e] : 0.f;
            }
#pragma unroll
            for (int a = 0; a < 4; a++) {
                float pj = __shfl_sync(FULL, pv[a], j);
#pragma unroll
                for (int k = 0; k < AP_E; k++) acc[a][k] += pj * vk[k];
            }
        }
    }
#pragma unroll
    for (int a = 0; a < 4; a++) {
        int qi = w + 4 * a;
        if (qi >= nq) continue;
        float inv = 1.f / l[a];
        float* o = out + (size_t)(i0 + qi) * ldo + h * hd;
#pragma unroll
        for (int k = 0; k < AP_E; k++) {
            int e = lane + 32 * k;
            if (e < hd) o[e] = acc[a][k] * inv;
        }
    }
}

// attn_prompt_tc is attn_prompt on the tensor cores (mma.sync m16n8k16:
// f16 inputs, f32 sums), flash-attention style. A block takes APT_Q
// queries of one head and walks the keys in tiles of APT_K, converted to
// f16 into shared memory once for the block (queries, keys and values
// row-major, rows padded by 8 halves so ldmatrix's row reads hit distinct
// banks). Its eight warps are four pairs: pair w & 3 takes queries 16w …
// 16w + 15, and warp w >> 2 of the pair half of each tile's keys, with a
// running max, sum and output of its own (merged at the end through shared
// memory, as flash-decoding merges splits). A warp keeps a tile of scores
// and its output rows in registers in the mma layouts: the scores'
// accumulator layout is the A operand of the product with the values (read
// transposed by ldmatrix.trans), so the probabilities never leave the
// registers, and the running max and sum of a row live in the four lanes
// that hold it. Queries, keys, probabilities and values are rounded to f16
// (as an fp16 model's attention would be); sums, softmax and output are
// f32. A warp skips the keys its queries cannot see (past the causal edge,
// before the window). 256 threads; hd a multiple of 16, at most APT_D;
// dynamic shared memory 2·3·APT_Q·(hd + 8) bytes (APT_Q = APT_K).
#define APT_Q 64
#define APT_K 64
#define APT_D 128

// pack_h2 rounds lo and hi to f16 and packs them (lo in the low half, the
// lower column of an mma operand).
__device__ __forceinline__ unsigned pack_h2(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// mma_16816 is c += a·b for a 16×16 f16 A (row-major fragments), a 16×8
// f16 B (column-major) and a 16×8 f32 C.
__device__ __forceinline__ void mma_16816(float* c, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ldsm_x4 loads four 8×8 f16 matrices from shared memory (lane i gives the
// address of row i % 8 of matrix i / 8), transposed with trans.
template <bool trans>
__device__ __forceinline__ void ldsm_x4(unsigned* r, const void* p) {
    unsigned a = (unsigned)__cvta_generic_to_shared(p);
    if (trans)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

// tile_f16 stores rows [0, 64) of src (f32, row stride hd ≤ APT_D; rows ≥
// nrows as zeros) as f16 into dst (row stride ld halves), 256 threads: all
// of a thread's (up to eight) 16-byte loads first, then the stores (one
// load, convert and store at a time took the kernel 29.3 ms, not 19.0, of
// a 2000-token opt-6.7b prompt; docs/gpu.md, v21).
__device__ __forceinline__ void tile_f16(unsigned short* dst, int ld, const float* __restrict__ src, int hd, int nrows) {
    int h4 = hd >> 2, n = 64 * h4;
    float4 v[8];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int t = threadIdx.x + 256 * i, j = t / h4;
        v[i] = t < n && j < nrows ? __ldg(reinterpret_cast<const float4*>(src + (size_t)j * hd + 4 * (t - j * h4)))
                                  : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int t = threadIdx.x + 256 * i, j = t / h4;
        if (t < n)
            *reinterpret_cast<uint2*>(dst + j * ld + 4 * (t - j * h4)) = make_uint2(pack_h2(v[i].x, v[i].y), pack_h2(v[i].z, v[i].w));
    }
}

extern "C" __global__ void __launch_bounds__(256, 2) attn_prompt_tc(const float* __restrict__ qkv, int ld, const float* __restrict__ kc,
                                                                   const float* __restrict__ vc, float* out, int ldo, int H, int KVH,
                                                                   int hd, int maxCtx, int window, float scale,
                                                                   const int* __restrict__ io, int n) {
    PDL_LAUNCH();
    PDL_WAIT();
    extern __shared__ float4 sm_apt[];
    const int sld = hd + 8; // row stride in halves
    unsigned short* qs = reinterpret_cast<unsigned short*>(sm_apt); // APT_Q × sld: queries
    unsigned short* ks = qs + APT_Q * sld;                          // APT_K × sld: keys
    unsigned short* vs = ks + APT_K * sld;                          // APT_K × sld: values
    int h = blockIdx.y, g = h / (H / KVH), i0 = blockIdx.x * APT_Q;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, qw = w & 3, kh = w >> 2;
    int r = lane >> 2, c2 = (lane & 3) * 2;
    int nk = hd >> 4, p0 = io[0] + i0, nq = min(APT_Q, n - i0);
    int qa = 16 * qw + r, qb = qa + 8; // the lane's two query rows (fragment rows r and r + 8)
    int pa = p0 + qa, pb = p0 + qb;
    // The queries (rows past the batch repeat its last query; never stored).
    for (int t = threadIdx.x; t < APT_Q * (hd >> 2); t += blockDim.x) {
        int j = t / (hd >> 2), e = 4 * (t % (hd >> 2));
        float4 v = *reinterpret_cast<const float4*>(qkv + (size_t)(i0 + min(j, nq - 1)) * ld + h * hd + e);
        *reinterpret_cast<uint2*>(qs + j * sld + e) = make_uint2(pack_h2(v.x, v.y), pack_h2(v.z, v.w));
    }
    // ldmatrix row addresses: A (queries) rows 16qw + lane % 16, columns + 8·(lane / 16); B (keys) rows
    // + (lane % 8) + 8·(lane / 16), columns + 8·((lane / 8) % 2); values (transposed) rows + lane % 16,
    // columns + 8·(lane / 16).
    const unsigned short* qA = qs + (16 * qw + (lane & 15)) * sld + 8 * (lane >> 4);
    const unsigned short* kB = ks + (32 * kh + (lane & 7) + 8 * (lane >> 4)) * sld + 8 * ((lane >> 3) & 1);
    const unsigned short* vB = vs + (32 * kh + (lane & 15)) * sld + 8 * (lane >> 4);
    int hi = p0 + nq - 1, lo = window > 0 ? max(0, p0 - window + 1) : 0;
    int wFirst = p0 + 16 * qw, wLast = min(wFirst + 15, hi); // the warp's first and last query positions
    const float* K = kc + (size_t)g * maxCtx * hd;
    const float* V = vc + (size_t)g * maxCtx * hd;
    const float ninf = __int_as_float(0xff800000), sl2 = scale * 1.4426950408889634f; // scores in log2 units
    float o[APT_D / 8][4];
#pragma unroll
    for (int d = 0; d < APT_D / 8; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.f;
    float ma = ninf, mb = ninf, la = 0.f, lb = 0.f; // running max (log2 units) and this lane's part of the sum
    for (int t0 = lo; t0 <= hi; t0 += APT_K) {
        __syncthreads(); // the previous tile is used up (and the queries are in)
        tile_f16(ks, sld, K + (size_t)t0 * hd, hd, hi + 1 - t0);
        tile_f16(vs, sld, V + (size_t)t0 * hd, hd, hi + 1 - t0);
        __syncthreads();
        int k0 = t0 + 32 * kh; // the warp's 32 keys: k0 … k0 + 31
        // Nothing visible to the warp: no queries, keys past its last query or before its first query's window.
        if (wFirst > hi || k0 > wLast || (window > 0 && k0 + 31 <= wFirst - window)) continue;
        float s[4][4];
#pragma unroll
        for (int nt = 0; nt < 4; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < APT_D / 16; kk++) {
            if (kk < nk) {
                unsigned a[4], b[4];
                ldsm_x4<false>(a, qA + 16 * kk);
#pragma unroll
                for (int np = 0; np < 2; np++) {
                    ldsm_x4<false>(b, kB + 16 * np * sld + 16 * kk);
                    mma_16816(s[2 * np], a, b[0], b[1]);
                    mma_16816(s[2 * np + 1], a, b[2], b[3]);
                }
            }
        }
        float xa = ninf, xb = ninf;
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int key = k0 + 8 * nt + c2 + e;
                bool va = key <= min(pa, hi) && (window <= 0 || key > pa - window);
                bool vb = key <= min(pb, hi) && (window <= 0 || key > pb - window);
                s[nt][e] = va ? s[nt][e] * sl2 : ninf;
                s[nt][2 + e] = vb ? s[nt][2 + e] * sl2 : ninf;
                xa = fmaxf(xa, s[nt][e]);
                xb = fmaxf(xb, s[nt][2 + e]);
            }
        }
#pragma unroll
        for (int m = 1; m < 4; m <<= 1) {
            xa = fmaxf(xa, __shfl_xor_sync(FULL, xa, m));
            xb = fmaxf(xb, __shfl_xor_sync(FULL, xb, m));
        }
        xa = fmaxf(ma, xa);
        xb = fmaxf(mb, xb);
        float ua = xa == ninf ? 0.f : xa, ub = xb == ninf ? 0.f : xb; // a row that sees nothing yet keeps zeros
        float aa = exp2f(ma - ua), ab = exp2f(mb - ub);
        ma = xa;
        mb = xb;
        float sa = 0.f, sb = 0.f;
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
            s[nt][0] = exp2f(s[nt][0] - ua);
            s[nt][1] = exp2f(s[nt][1] - ua);
            s[nt][2] = exp2f(s[nt][2] - ub);
            s[nt][3] = exp2f(s[nt][3] - ub);
            sa += s[nt][0] + s[nt][1];
            sb += s[nt][2] + s[nt][3];
        }
        la = la * aa + sa;
        lb = lb * ab + sb;
#pragma unroll
        for (int d = 0; d < APT_D / 8; d++) {
            o[d][0] *= aa;
            o[d][1] *= aa;
            o[d][2] *= ab;
            o[d][3] *= ab;
        }
#pragma unroll
        for (int kk = 0; kk < 2; kk++) {
            unsigned pf[4] = {pack_h2(s[2 * kk][0], s[2 * kk][1]), pack_h2(s[2 * kk][2], s[2 * kk][3]),
                              pack_h2(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack_h2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int d = 0; d < APT_D / 8; d += 2) {
                if (d < 2 * nk) {
                    unsigned b[4];
                    ldsm_x4<true>(b, vB + 16 * kk * sld + 8 * d);
                    mma_16816(o[d], pf, b[0], b[1]);
                    mma_16816(o[d + 1], pf, b[2], b[3]);
                }
            }
        }
    }
    // Merge the pair: warp 4 + qw hands its max, sum and output to warp qw through the key/value tiles
    // (2·APT_K·sld halves = 4·32·(hd/2 + 4) floats).
    __syncthreads();
    float* mg = reinterpret_cast<float*>(ks) + ((size_t)qw * 32 + lane) * (hd / 2 + 4);
    if (kh) {
        mg[0] = ma;
        mg[1] = mb;
        mg[2] = la;
        mg[3] = lb;
#pragma unroll
        for (int d = 0; d < APT_D / 8; d++)
            if (d < 2 * nk) *reinterpret_cast<float4*>(mg + 4 + 4 * d) = make_float4(o[d][0], o[d][1], o[d][2], o[d][3]);
    }
    __syncthreads();
    if (kh || wFirst > hi) return;
    float m2a = mg[0], m2b = mg[1];
    float xa = fmaxf(ma, m2a), xb = fmaxf(mb, m2b);
    float ua = xa == ninf ? 0.f : xa, ub = xb == ninf ? 0.f : xb;
    float a1 = exp2f(ma - ua), a2 = exp2f(m2a - ua), b1 = exp2f(mb - ub), b2 = exp2f(m2b - ub);
    la = la * a1 + mg[2] * a2;
    lb = lb * b1 + mg[3] * b2;
#pragma unroll
    for (int m = 1; m < 4; m <<= 1) {
        la += __shfl_xor_sync(FULL, la, m);
        lb += __shfl_xor_sync(FULL, lb, m);
    }
    float ia = 1.f / la, ib = 1.f / lb;
#pragma unroll
    for (int d = 0; d < APT_D / 8; d++) {
        if (d < 2 * nk) {
            float4 o2 = *reinterpret_cast<const float4*>(mg + 4 + 4 * d);
            if (qa < nq)
                *reinterpret_cast<float2*>(out + (size_t)(i0 + qa) * ldo + h * hd + 8 * d + c2) =
                    make_float2((o[d][0] * a1 + o2.x * a2) * ia, (o[d][1] * a1 + o2.y * a2) * ia);
            if (qb < nq)
                *reinterpret_cast<float2*>(out + (size_t)(i0 + qb) * ldo + h * hd + 8 * d + c2) =
                    make_float2((o[d][2] * b1 + o2.z * b2) * ib, (o[d][3] * b1 + o2.w * b2) * ib);
        }
    }
}

// attn_split is decode attention (one token, at position p = io[0]) split
// over the positions, flash-decoding style: grid (S, heads), block (s, y)
// takes head h = heads[y] (y < *headCount; all H when heads is NULL) and
// positions [s·c, min(L, (s+1)·c)) of the L in the window, c = max(⌈L/S⌉,
// ATTN_CMIN), so the grid is fixed (a CUDA graph replays it at every
// position) while the work per block follows the context (and a short
// context fills few splits, whose merge reads few rows). Each block writes
// its unnormalized output, max score and sum of exponentials (f32) to part
// (H × S rows of hd + 2 floats); with combine set, the last block of each
// head to finish (counter cnt[h], reset by it) merges the rows of the ⌈L/c⌉
// splits that hold positions into out[h·hd …] (the others return at once),
// otherwise attn_combine merges all S. After the head, one round of
// independent loads: the query (straight into registers when hd is a
// multiple of 4), the block's keys and its first values. 128 threads; S ≤
// 128 (attn_merge); dynamic shared memory (hd + 33 + S + max(⌈maxCtx/S⌉,
// ATTN_CMIN) + 4·hd) floats.
#define ATTN_CMIN 8
extern "C" __global__ void attn_split(const float* __restrict__ qkv, const float* __restrict__ kc,
                                      const float* __restrict__ vc, float* out, float* part, unsigned* cnt, int H,
                                      int KVH, int hd, int maxCtx, int window, float scale,
                                      const int* __restrict__ io, const int* __restrict__ heads,
                                      const int* __restrict__ headCount, int combine) {
    PDL_LAUNCH();
    PDL_WAIT();
    extern __shared__ float smem[];
    __shared__ int sLast;
    if (heads && (int)blockIdx.y >= *headCount) return;
    int h = heads ? heads[blockIdx.y] : blockIdx.y;
    int p = io[0];
    int S = gridDim.x, sp = blockIdx.x;
    int lo = (window > 0 && p - window + 1 > 0) ? p - window + 1 : 0;
    int L = p + 1 - lo;
    int c = max((L + S - 1) / S, ATTN_CMIN);
    int Sn = (L + c - 1) / c; // splits holding positions: [0, Sn)
    if (combine && sp >= Sn) return;
    int t0 = sp * c;
    int n = min(L, t0 + c) - t0;
    if (n < 0) n = 0;
    int g = h / (H / KVH);
    float* q = smem;        // hd
    float* red = q + hd;    // 33
    float* ws = red + 33;   // S (merge weights)
    float* sc = ws + S;     // c ≤ max(⌈maxCtx/S⌉, ATTN_CMIN) scores
    float* acc = sc + c;    // 4·hd partials
    const float* qs = qkv + (size_t)h * hd;
    const float* K = kc + ((size_t)g * maxCtx + lo + t0) * hd;
    const float* V = vc + ((size_t)g * maxCtx + lo + t0) * hd;
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    // The value phase's first loads (eight a thread), issued with the
    // keys': hd threads a part, parts parts splitting the positions (hd ≤
    // blockDim.x).
    int parts = hd <= (int)blockDim.x ? min(4, (int)blockDim.x / hd) : 0;
    int e = parts ? threadIdx.x % hd : 0, pt = parts ? threadIdx.x / hd : 0;
    float vp[8];
#pragma unroll
    for (int k = 0; k < 8; k++) vp[k] = pt < parts && pt + k * parts < n ? __ldg(V + (size_t)(pt + k * parts) * hd + e) : 0.f;
    // Scores: a warp per key, lanes over the head dimension, four keys per
    // warp at a time (four loads in flight per lane).
    bool v4 = (hd & 3) == 0;
    if (!v4) {
        for (int i = threadIdx.x; i < hd; i += blockDim.x) q[i] = qs[i];
        __syncthreads();
    }
    for (int t = wid; t < n; t += 4 * nw) {
        float a[4] = {0.f, 0.f, 0.f, 0.f};
        int tt[4];
#pragma unroll
        for (int u = 0; u < 4; u++) tt[u] = min(t + u * nw, n - 1);
        if (v4) {
            for (int i = lane * 4; i < hd; i += 128) {
                float4 qv = *reinterpret_cast<const float4*>(qs + i);
                float4 kv[4];
#pragma unroll
                for (int u = 0; u < 4; u++) kv[u] = __ldg(reinterpret_cast<const float4*>(K + (size_t)tt[u] * hd + i));
#pragma unroll
                for (int u = 0; u < 4; u++) a[u] += qv.x * kv[u].x + qv.y * kv[u].y + qv.z * kv[u].z + qv.w * kv[u].w;
            }
        } else {
            for (int i = lane; i < hd; i += 32) {
                float kv[4];
#pragma unroll
                for (int u = 0; u < 4; u++) kv[u] = __ldg(K + (size_t)tt[u] * hd + i);
#pragma unroll
                for (int u = 0; u < 4; u++) a[u] += q[i] * kv[u];
            }
        }
#pragma unroll
        for (int u = 0; u < 4; u++) {
            float s = warp_sum(a[u]);
            if (lane == 0 && t + u * nw < n) sc[t + u * nw] = s * scale;
        }
    }
    __syncthreads();
    TL_MARK(2);
    float2 ms = block_softmax(sc, n, red);
    float m = ms.x, sum = ms.y;
    TL_MARK(3);
    float* pr = part + ((size_t)h * S + sp) * (hd + 2);
    // Weighted values, unnormalized: parts groups of hd threads split the keys.
    if (parts) {
        if (pt < parts) {
            float s = 0.f;
#pragma unroll
            for (int k = 0; k < 8; k++)
                if (pt + k * parts < n) s += sc[pt + k * parts] * vp[k];
#pragma unroll 4
            for (int t = pt + 8 * parts; t < n; t += parts) s += sc[t] * __ldg(V + (size_t)t * hd + e);
            if (parts == 1) pr[e] = s; // one part: no sum across threads
            else acc[pt * hd + e] = s;
        }
        if (parts > 1) {
            __syncthreads();
            if (threadIdx.x < hd) {
                float s = 0.f;
                for (int k = 0; k < parts; k++) s += acc[k * hd + threadIdx.x];
                pr[threadIdx.x] = s;
            }
        }
    } else {
        for (int i = threadIdx.x; i < hd; i += blockDim.x) {
            float s = 0.f;
#pragma unroll 4
            for (int t = 0; t < n; t++) s += sc[t] * __ldg(V + (size_t)t * hd + i);
            pr[i] = s;
        }
    }
    if (threadIdx.x == 0) {
        pr[hd] = m;
        pr[hd + 1] = sum;
    }
    if (!combine) return;
    // The last block of head h to finish merges the Sn partial rows.
    __threadfence();
    __syncthreads();
    TL_MARK(4);
    if (threadIdx.x == 0) sLast = atomicAdd(&cnt[h], 1u) == (unsigned)(Sn - 1);
    __syncthreads();
    if (!sLast) return;
    __threadfence();
    TL_MARK_ANY(5);
    if (threadIdx.x == 0) cnt[h] = 0;
    attn_merge(part + (size_t)h * S * (hd + 2), Sn, hd, out + (size_t)h * hd, ws, red);
    TL_MARK_ANY(6);
}

// attn_combine merges attn_split's partial rows (S per head) for head h =
// heads[blockIdx.x] (blockIdx.x < *headCount; all H when heads is NULL).
// 128 threads; dynamic shared memory (33 + S) floats.
extern "C" __global__ void attn_combine(const float* part, float* out, int S, int hd,
                                        const int* __restrict__ heads, const int* __restrict__ headCount) {
    PDL_LAUNCH();
    PDL_WAIT();
    extern __shared__ float smem[];
    if (heads && (int)blockIdx.x >= *headCount) return;
    int h = heads ? heads[blockIdx.x] : blockIdx.x;
    attn_merge(part + (size_t)h * S * (hd + 2), S, hd, out + (size_t)h * hd, smem + 33, smem);
}

// fill_random: w[i] = f16 (bf16 when bf is set) of a pseudo-random value,
// uniform in [-a, a] (a hash of seed and i), for synthetic weights built
// on the GPU.
extern "C" __global__ void fill_random(w16* w, size_t n, unsigned long long seed, float a, int bf) {
    PDL_LAUNCH();
    PDL_WAIT();
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (size_t)gridDim.x * blockDim.x) {
        unsigned long long z = seed + t * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        float u = (float)(z >> 40) * (1.f / 16777216.f); // [0, 1)
        w[t] = to16((2.f * u - 1.f) * a, bf);
    }
}

// fkey maps a float to an unsigned key with the same order (NaN lowest).
__device__ __forceinline__ unsigned fkey(float v) {
    if (v != v) return 0u;
    unsigned u = __float_as_uint(v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// select_rows turns predictor logits z (n values) into a selection:
// out[0 … *count) = the indices of the k largest (ties taken in no
// particular order), or with useThr of those > thr; k ≥ n selects all.
// The order of out is unspecified. With smemKeys the keys are kept in
// dynamic shared memory (n words). One block (a multiple of 32 threads):
// the k-th largest key is found by a 4-pass radix select (8 bits a pass,
// histograms in shared memory), then one pass writes the indices.
extern "C" __global__ void __launch_bounds__(1024) select_rows(const float* __restrict__ z, int n, int k, float thr, int useThr,
                                       int* __restrict__ out, int* __restrict__ count, int smemKeys) {
    PDL_LAUNCH();
    PDL_WAIT();
    __shared__ unsigned hist[256];
    __shared__ unsigned sPrefix;
    __shared__ int sK, nOut, nTie;
    int lane = threadIdx.x & 31;
    if (threadIdx.x == 0) {
        nOut = 0;
        nTie = 0;
    }
    if (!useThr && k <= 0) {
        if (threadIdx.x == 0) *count = 0;
        return;
    }
    // The keys, read once into shared memory when they fit (dynamic shared
    // memory of n words; else read again from memory in each pass).
    extern __shared__ unsigned skeys[];
    bool sm = smemKeys != 0;
    if (sm) {
        for (int i = threadIdx.x; i < n; i += blockDim.x) skeys[i] = fkey(z[i]);
        __syncthreads();
    }
    bool all = !useThr && k >= n;
    unsigned T = 0;
    int ties = 0;
    if (useThr) {
        T = fkey(thr);
    } else if (!all) {
        unsigned prefix = 0, mask = 0;
        int kk = k;
        for (int shift = 24; shift >= 0; shift -= 8) {
            for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
            __syncthreads();
            for (int i0 = 0; i0 < n; i0 += blockDim.x) {
                // Warp-aggregated: logits share their top bits, so most
                // lanes hit one bin; one atomic per distinct bin per warp.
                int i = i0 + threadIdx.x;
                unsigned key = 0;
                if (i < n) key = sm ? skeys[i] : fkey(z[i]);
                bool in = i < n && (key & mask) == prefix;
                unsigned bin = (key >> shift) & 255u;
                unsigned act = __ballot_sync(FULL, in);
                if (in) {
                    unsigned peers = __match_any_sync(act, bin);
                    if (lane == __ffs(peers) - 1) atomicAdd(&hist[bin], (unsigned)__popc(peers));
                }
            }
            __syncthreads();
            if (threadIdx.x < 32) { // the digit holding the kk-th largest, from the top
                unsigned s = 0;
                for (int j = 0; j < 8; j++) s += hist[lane * 8 + j];
                unsigned S = s; // suffix sum over lanes ≥ lane
                for (int o = 1; o < 32; o <<= 1) {
                    unsigned t = __shfl_down_sync(FULL, S, o);
                    if (lane + o < 32) S += t;
                }
                unsigned above = S - s;
                if (S >= (unsigned)kk && above < (unsigned)kk) {
                    unsigned cum = above;
                    int d = lane * 8 + 7;
                    for (; d > lane * 8; d--) {
                        if (cum + hist[d] >= (unsigned)kk) break;
                        cum += hist[d];
                    }
                    sK = kk - (int)cum;
                    sPrefix = prefix | ((unsigned)d << shift);
                }
            }
            __syncthreads();
            kk = sK;
            prefix = sPrefix;
            mask |= 255u << shift;
            __syncthreads();
        }
        T = prefix; // the k-th largest key: take every key above it and kk equal to it
        ties = kk;
    }
    __syncthreads();
    for (int i0 = 0; i0 < n; i0 += blockDim.x) {
        int i = i0 + threadIdx.x;
        bool sel = false;
        if (i < n) {
            unsigned key = sm ? skeys[i] : fkey(z[i]);
            sel = all || key > T;
            if (!sel && !useThr && key == T) sel = atomicAdd(&nTie, 1) < ties;
        }
        unsigned b = __ballot_sync(FULL, sel);
        int base = 0;
        if (lane == 0 && b) base = atomicAdd(&nOut, __popc(b));
        base = __shfl_sync(FULL, base, 0);
        if (sel) out[base + __popc(b & ((1u << lane) - 1u))] = i;
    }
    __syncthreads();
    if (threadIdx.x == 0) *count = nOut;
}

// select_small is select_rows for n ≤ blockDim.x (the heads of a head
// predictor): one key per thread; for top-k a key is taken when fewer
// than k keys rank above it (larger, or equal with a lower index), so
// exactly min(k, n) are taken, ties to the lower index.
extern "C" __global__ void select_small(const float* __restrict__ z, int n, int k, float thr, int useThr,
                                        int* __restrict__ out, int* __restrict__ count) {
    PDL_LAUNCH();
    PDL_WAIT();
    extern __shared__ unsigned skeys[];
    __shared__ int nOut;
    int i = threadIdx.x, lane = threadIdx.x & 31;
    if (i == 0) nOut = 0;
    unsigned key = i < n ? fkey(z[i]) : 0u;
    if (i < n) skeys[i] = key;
    __syncthreads();
    bool sel = false;
    if (i < n) {
        if (useThr) {
            sel = key > fkey(thr);
        } else if (k >= n) {
            sel = true;
        } else if (k > 0) {
            int r = 0;
            for (int j = 0; j < n; j++) {
                unsigned o = skeys[j];
                r += o > key || (o == key && j < i);
            }
            sel = r < k;
        }
    }
    unsigned b = __ballot_sync(FULL, sel);
    int base = 0;
    if (lane == 0 && b) base = atomicAdd(&nOut, __popc(b));
    base = __shfl_sync(FULL, base, 0);
    if (sel) out[base + __popc(b & ((1u << lane) - 1u))] = i;
    __syncthreads();
    if (i == 0) *count = nOut;
}

// grid_sync is a barrier over the whole grid, whose blocks must all be
// resident at once (gridDim.x ≤ the SMs, a power of two). bar counts
// arrivals and is never reset: barrier j of any launch completes when it
// reaches the next multiple of gridDim.x.
__device__ __forceinline__ void grid_sync(unsigned* bar) {
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned G = gridDim.x;
        __threadfence();
        unsigned old = atomicAdd(bar, 1u);
        unsigned target = old - old % G + G;
        while ((int)(*(volatile unsigned*)bar - target) < 0) {
        }
        __threadfence();
    }
    __syncthreads();
}

#define SEL_BITS 11
#define SEL_BINS (1 << SEL_BITS)

// select_multi is select_rows over G = gridDim.x blocks (a power of two,
// all resident at once), each holding ⌈n/G⌉ of the keys in shared memory.
// Top-k: three radix passes (11, 11 and 10 bits from the top) find the
// k-th largest key; in each, every block adds its histogram of the keys
// that match the prefix so far into a global one (ws, which must start
// zeroed) and, after a grid barrier, reads it to find the next digit. Then
// each block writes its keys above the k-th (and as many equal to it as
// the rank asks) through a global counter. Thresholds need one pass. The
// last block to finish writes *count and zeroes ws for the next launch.
// ws: 16 words (tie counter, output counter, arrivals; barrier counters
// at 8 + log2 G, one per grid size) then 3 × SEL_BINS histogram words. 512 threads; dynamic shared memory ⌈n/G⌉ words.
extern "C" __global__ void __launch_bounds__(512) select_multi(const float* __restrict__ z, int n, int k, float thr,
                                                                int useThr, int* __restrict__ out,
                                                                int* __restrict__ count, unsigned* ws) {
    PDL_LAUNCH();
    PDL_WAIT();
    extern __shared__ unsigned skeys[];
    __shared__ unsigned hist[SEL_BINS];
    __shared__ unsigned sPrefix, sKK, sLast;
    __shared__ unsigned wsum[16];
    unsigned* nTie = ws;
    unsigned* nOut = ws + 1;
    unsigned* arrive = ws + 2;
    unsigned* bar = ws + 8 + (31 - __clz(gridDim.x));
    unsigned* gh = ws + 16;
    int G = gridDim.x, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (!useThr && k <= 0) {
        if (blockIdx.x == 0 && threadIdx.x == 0) *count = 0;
        return;
    }
    int per = (n + G - 1) / G;
    int i0 = blockIdx.x * per;
    int m = min(n, i0 + per) - i0;
    if (m < 0) m = 0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) skeys[i] = fkey(z[i0 + i]);
    __syncthreads();
    bool all = !useThr && k >= n;
    unsigned T = 0, ties = 0;
    if (useThr) {
        T = fkey(thr);
    } else if (!all) {
        unsigned prefix = 0, mask = 0, kk = (unsigned)k;
        for (int pass = 0; pass < 3; pass++) {
            int shift = pass == 0 ? 21 : pass == 1 ? 10 : 0;
            unsigned dmask = pass == 2 ? 1023u : 2047u;
            for (int j = threadIdx.x; j < SEL_BINS; j += blockDim.x) hist[j] = 0;
            __syncthreads();
            for (int b0 = 0; b0 < m; b0 += blockDim.x) {
                int i = b0 + threadIdx.x;
                unsigned key = i < m ? skeys[i] : 0u;
                bool in = i < m && (key & mask) == prefix;
                unsigned bin = (key >> shift) & dmask;
                unsigned act = __ballot_sync(FULL, in);
                if (in) {
                    unsigned peers = __match_any_sync(act, bin);
                    if (lane == __ffs(peers) - 1) atomicAdd(&hist[bin], (unsigned)__popc(peers));
                }
            }
            __syncthreads();
            unsigned* g = gh + pass * SEL_BINS;
            for (int j = threadIdx.x; j < SEL_BINS; j += blockDim.x)
                if (hist[j]) atomicAdd(&g[j], hist[j]);
            grid_sync(bar);
            // The digit holding the kk-th largest: thread t sums bins
            // [4t, 4t+4) (512 threads × 4 = SEL_BINS), suffix sums from the top.
            unsigned c4[4], s = 0;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                c4[j] = __ldcg(&g[threadIdx.x * 4 + j]);
                s += c4[j];
            }
            unsigned S = s; // suffix sum over the lanes ≥ lane of the warp
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                unsigned t = __shfl_down_sync(FULL, S, o);
                if (lane + o < 32) S += t;
            }
            if (lane == 0) wsum[w] = S;
            __syncthreads();
            unsigned above = S - s; // within the warp, above this thread
            for (int v = w + 1; v < 16; v++) above += wsum[v];
            if (above < kk && above + s >= kk) {
                unsigned cum = above;
                int d = threadIdx.x * 4 + 3;
                for (; d > threadIdx.x * 4; d--) {
                    if (cum + c4[d - threadIdx.x * 4] >= kk) break;
                    cum += c4[d - threadIdx.x * 4];
                }
                sKK = kk - cum;
                sPrefix = prefix | ((unsigned)d << shift);
            }
            __syncthreads();
            kk = sKK;
            prefix = sPrefix;
            mask |= dmask << shift;
        }
        T = prefix; // the k-th largest key: take every key above it and kk equal to it
        ties = kk;
    }
    for (int b0 = 0; b0 < m; b0 += blockDim.x) {
        int i = b0 + threadIdx.x;
        bool sel = false;
        if (i < m) {
            unsigned key = skeys[i];
            sel = all || key > T;
            if (!sel && !useThr && key == T) sel = atomicAdd(nTie, 1u) < ties;
        }
        unsigned b = __ballot_sync(FULL, sel);
        int base = 0;
        if (lane == 0 && b) base = (int)atomicAdd(nOut, (unsigned)__popc(b));
        base = __shfl_sync(FULL, base, 0);
        if (sel) out[base + __popc(b & ((1u << lane) - 1u))] = i0 + i;
    }
    // The last block to finish: the count, and ws zeroed for the next launch.
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) sLast = atomicAdd(arrive, 1u) == (unsigned)(G - 1);
    __syncthreads();
    if (!sLast) return;
    __threadfence();
    if (threadIdx.x == 0) {
        *count = (int)atomicAdd(nOut, 0u);
        *nTie = 0;
        *nOut = 0;
        *arrive = 0;
    }
    if (!useThr && !all)
        for (int j = threadIdx.x; j < 3 * SEL_BINS; j += blockDim.x) gh[j] = 0;
}

// find_digit finds the digit (bin of h: SEL_BINS bins, 4 per thread of a
// 512-thread block) that holds the kk-th largest key, counting from the
// top bin, and sets *sD to it and *sKK to kk less the keys in the bins
// above. h is read with ld.cg when global (written by other blocks). wsum
// holds 16 words. Every thread calls it; it ends with a barrier.
__device__ void find_digit(const unsigned* h, bool global, unsigned kk, unsigned* wsum, unsigned* sD, unsigned* sKK) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    unsigned c4[4], s = 0;
#pragma unroll
    for (int j = 0; j < 4; j++) {
        c4[j] = global ? __ldcg(&h[threadIdx.x * 4 + j]) : h[threadIdx.x * 4 + j];
        s += c4[j];
    }
    unsigned S = s; // suffix sum over the lanes ≥ lane of the warp
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        unsigned t = __shfl_down_sync(FULL, S, o);
        if (lane + o < 32) S += t;
    }
    if (lane == 0) wsum[w] = S;
    __syncthreads();
    unsigned above = S - s;
    for (int v = w + 1; v < 16; v++) above += wsum[v];
    if (above < kk && above + s >= kk) {
        unsigned cum = above;
        int j = 3;
        for (; j > 0; j--) {
            if (cum + c4[j] >= kk) break;
            cum += c4[j];
        }
        *sD = threadIdx.x * 4 + j;
        *sKK = kk - cum;
    }
    __syncthreads();
}

// select_fast is select_multi with one grid barrier: the blocks add their
// histograms of the top 11 bits of their slices' keys into a global one
// (ws as select_multi's, first histogram only); after the barrier every
// block finds the digit holding the k-th largest, gathers the keys of all
// n with that digit (the candidates) into shared memory and finds the k-th
// among them by two local radix passes (11 and 10 bits); then it writes
// its own slice's selection as select_multi does. 512 threads; dynamic
// shared memory n words (the candidates, at most all n). Measured slower
// than select_multi on an H100 (21.7 vs 13.1 µs for n = 16384: every block
// walks all n logits); kept for DEJAVU_CUDA_SELECT=fast.
extern "C" __global__ void __launch_bounds__(512) select_fast(const float* __restrict__ z, int n, int k, float thr,
                                                               int useThr, int* __restrict__ out,
                                                               int* __restrict__ count, unsigned* ws) {
    PDL_LAUNCH();
    PDL_WAIT();
    extern __shared__ unsigned cand[];
    __shared__ unsigned hist[SEL_BINS];
    __shared__ unsigned sD, sKK, sLast, nC;
    __shared__ unsigned wsum[16];
    unsigned* nTie = ws;
    unsigned* nOut = ws + 1;
    unsigned* arrive = ws + 2;
    unsigned* bar = ws + 8 + (31 - __clz(gridDim.x));
    unsigned* gh = ws + 16;
    int G = gridDim.x, lane = threadIdx.x & 31;
    if (!useThr && k <= 0) {
        if (blockIdx.x == 0 && threadIdx.x == 0) *count = 0;
        return;
    }
    int per = (n + G - 1) / G;
    int i0 = blockIdx.x * per;
    int m = min(n, i0 + per) - i0;
    if (m < 0) m = 0;
    bool all = !useThr && k >= n;
    unsigned T = 0, ties = 0;
    if (useThr) {
        T = fkey(thr);
    } else if (!all) {
        // Pass 1, over the grid: the top 11 bits.
        for (int j = threadIdx.x; j < SEL_BINS; j += blockDim.x) hist[j] = 0;
        if (threadIdx.x == 0) nC = 0;
        __syncthreads();
        for (int b0 = 0; b0 < m; b0 += blockDim.x) {
            int i = b0 + threadIdx.x;
            unsigned key = i < m ? fkey(z[i0 + i]) : 0u;
            bool in = i < m;
            unsigned bin = key >> 21;
            unsigned act = __ballot_sync(FULL, in);
            if (in) {
                unsigned peers = __match_any_sync(act, bin);
                if (lane == __ffs(peers) - 1) atomicAdd(&hist[bin], (unsigned)__popc(peers));
            }
        }
        __syncthreads();
        for (int j = threadIdx.x; j < SEL_BINS; j += blockDim.x)
            if (hist[j]) atomicAdd(&gh[j], hist[j]);
        grid_sync(bar);
        find_digit(gh, true, (unsigned)k, wsum, &sD, &sKK);
        unsigned d1 = sD, kk = sKK;
        // The candidates: every key of the n with that top digit.
#pragma unroll 4
        for (int b0 = 0; b0 < n; b0 += blockDim.x) {
            int i = b0 + threadIdx.x;
            unsigned key = i < n ? fkey(__ldg(z + i)) : 0u;
            bool in = i < n && (key >> 21) == d1;
            unsigned b = __ballot_sync(FULL, in);
            unsigned base = 0;
            if (lane == 0 && b) base = atomicAdd(&nC, (unsigned)__popc(b));
            base = __shfl_sync(FULL, base, 0);
            if (in) cand[base + __popc(b & ((1u << lane) - 1u))] = key;
        }
        __syncthreads();
        int C = (int)nC;
        unsigned prefix = d1 << 21, mask = 2047u << 21;
        // Passes 2 and 3, in the block: bits 20…10, then 9…0.
        for (int pass = 1; pass < 3; pass++) {
            int shift = pass == 1 ? 10 : 0;
            unsigned dmask = pass == 2 ? 1023u : 2047u;
            for (int j = threadIdx.x; j < SEL_BINS; j += blockDim.x) hist[j] = 0;
            __syncthreads();
            for (int b0 = 0; b0 < C; b0 += blockDim.x) {
                int i = b0 + threadIdx.x;
                unsigned key = i < C ? cand[i] : 0u;
                bool in = i < C && (key & mask) == prefix;
                unsigned bin = (key >> shift) & dmask;
                unsigned act = __ballot_sync(FULL, in);
                if (in) {
                    unsigned peers = __match_any_sync(act, bin);
                    if (lane == __ffs(peers) - 1) atomicAdd(&hist[bin], (unsigned)__popc(peers));
                }
            }
            __syncthreads();
            find_digit(hist, false, kk, wsum, &sD, &sKK);
            kk = sKK;
            prefix |= sD << shift;
            mask |= dmask << shift;
        }
        T = prefix;
        ties = kk;
    }
    for (int b0 = 0; b0 < m; b0 += blockDim.x) {
        int i = b0 + threadIdx.x;
        bool sel = false;
        if (i < m) {
            unsigned key = fkey(z[i0 + i]);
            sel = all || key > T;
            if (!sel && !useThr && key == T) sel = atomicAdd(nTie, 1u) < ties;
        }
        unsigned b = __ballot_sync(FULL, sel);
        int base = 0;
        if (lane == 0 && b) base = (int)atomicAdd(nOut, (unsigned)__popc(b));
        base = __shfl_sync(FULL, base, 0);
        if (sel) out[base + __popc(b & ((1u << lane) - 1u))] = i0 + i;
    }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) sLast = atomicAdd(arrive, 1u) == (unsigned)(G - 1);
    __syncthreads();
    if (!sLast) return;
    __threadfence();
    if (threadIdx.x == 0) {
        *count = (int)atomicAdd(nOut, 0u);
        *nTie = 0;
        *nOut = 0;
        *arrive = 0;
    }
    if (!useThr && !all)
        for (int j = threadIdx.x; j < SEL_BINS; j += blockDim.x) gh[j] = 0;
}
