// Logic-gate layer kernels: relaxed forward, both gradients, OP corner expectations, and the
// discretized layer on packed bits. The layout contract is in lgn_kernels.h.
//
// Design notes
// - One thread per (gate, sample) with the sample index fastest: a warp reads 32 adjacent samples of
//   the same feature, so every activation load coalesces and no layer needs a transpose.
// - The input gradient is gathered, not scattered: one thread per (feature, sample) walks the feature's
//   consumer list and recomputes each consumer's partial derivative. No atomics, a fixed summation
//   order (deterministic), and a gate reading the same feature on two fan-ins contributes both
//   derivatives because it appears twice in the list.
// - The corner gradient is a reduction over the batch: one warp per gate, lanes stride over samples,
//   then a shuffle tree (fixed order, deterministic).
// - Nothing here synchronises the device; every launch goes to the caller's stream.
// - The per-thread work lives in lgn_gate_math.cuh, shared with a host build (lgn_host_emulation.cpp)
//   that the tests run against the reference on machines without a GPU.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "lgn_kernels.h"

namespace lgn {
namespace math {
// bfloat16 activations (float accumulation); float and double come with the math header.
__host__ __device__ __forceinline__ float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__host__ __device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16(v); }
}  // namespace math
}  // namespace lgn

#include "lgn_gate_math.cuh"

namespace lgn {
namespace {

using math::Acc;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 20;  // grid-stride loops cover the rest

inline unsigned blocks_for(int64_t work) {
  int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_count() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// ---- relaxed forward: one thread per (gate, sample), sample fastest ---------------------------------

template <int N, typename T>
__global__ void forward_kernel(const T* __restrict__ x, int64_t batch, const int32_t* __restrict__ wiring,
                               int64_t gates, const typename Acc<T>::type* __restrict__ corners,
                               T* __restrict__ y) {
  const int64_t total = gates * batch;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t g = i / batch, b = i - g * batch;
    if constexpr (N == 2) {
      math::store(y + i, math::forward2_element(x, batch, wiring, corners, g, b));
    } else {
      math::store(y + i, math::forward_element<N>(x, batch, wiring, corners, g, b));
    }
  }
}

// ---- input gradient: one thread per (feature, sample), gathered over the feature's consumers --------

template <int N, typename T>
__global__ void input_grad_kernel(const T* __restrict__ grad_y, const T* __restrict__ x, int64_t batch,
                                  int64_t in_features, const int32_t* __restrict__ wiring,
                                  const typename Acc<T>::type* __restrict__ corners,
                                  const int32_t* __restrict__ offsets, const int32_t* __restrict__ entries,
                                  T* __restrict__ grad_x) {
  const int64_t total = in_features * batch;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t f = i / batch, b = i - f * batch;
    if constexpr (N == 2) {
      math::store(grad_x + i, math::input_grad2_element(grad_y, x, batch, wiring, corners, offsets, entries, f, b));
    } else {
      math::store(grad_x + i, math::input_grad_element<N>(grad_y, x, batch, wiring, corners, offsets, entries, f, b));
    }
  }
}

// ---- corner gradient: one warp per gate, lanes stride over the batch, then a shuffle tree -----------

template <int N, typename T>
__global__ void corner_grad_kernel(const T* __restrict__ grad_y, const T* __restrict__ x, int64_t batch,
                                   const int32_t* __restrict__ wiring, int64_t gates,
                                   typename Acc<T>::type* __restrict__ grad_corners) {
  using A = typename Acc<T>::type;
  const int lane = threadIdx.x & 31;
  const int64_t warps = thread_count() >> 5;
  // g is the same for every lane of a warp, so the loop and the shuffles below are warp-uniform.
  for (int64_t g = thread_index() >> 5; g < gates; g += warps) {
    A acc[1 << N];
    math::corner_grad_lane<N>(grad_y, x, batch, wiring, g, lane, 32, acc);
#pragma unroll
    for (int m = 0; m < (1 << N); ++m) {
      A v = acc[m];
#pragma unroll
      for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
      if (lane == 0) grad_corners[g * (1 << N) + m] = v;
    }
  }
}

// ---- OP corners and their backward: one thread per gate ---------------------------------------------

template <typename A>
__global__ void op_corners_kernel(const A* __restrict__ logits, const int32_t* __restrict__ tables, int64_t gates,
                                  A* __restrict__ corners) {
  for (int64_t g = thread_index(); g < gates; g += thread_count()) math::op_corners_element(logits, tables, g, corners);
}

template <typename A>
__global__ void op_corners_backward_kernel(const A* __restrict__ grad_corners, const A* __restrict__ logits,
                                           const int32_t* __restrict__ tables, int64_t gates,
                                           A* __restrict__ grad_logits) {
  for (int64_t g = thread_index(); g < gates; g += thread_count())
    math::op_corners_backward_element(grad_corners, logits, tables, g, grad_logits);
}

// ---- discretized layer on packed bits: one thread per (gate, word) ----------------------------------

template <int N>
__global__ void packed_kernel(const uint64_t* __restrict__ bits, int64_t words, const int32_t* __restrict__ wiring,
                              int64_t gates, const uint64_t* __restrict__ tables, uint64_t* __restrict__ out) {
  const int64_t total = gates * words;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t g = i / words, w = i - g * words;
    out[i] = math::packed_element<N>(bits, words, wiring, tables, g, w);
  }
}

// ---- dispatch --------------------------------------------------------------------------------------

template <typename T>
int launch_forward(const void* x, int64_t batch, const int32_t* wiring, int arity, int64_t gates,
                   const void* corners, void* y, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const T* xs = static_cast<const T*>(x);
  const A* cs = static_cast<const A*>(corners);
  T* ys = static_cast<T*>(y);
  const unsigned blocks = blocks_for(gates * batch);
  switch (arity) {
    case 1: forward_kernel<1, T><<<blocks, kThreads, 0, stream>>>(xs, batch, wiring, gates, cs, ys); break;
    case 2: forward_kernel<2, T><<<blocks, kThreads, 0, stream>>>(xs, batch, wiring, gates, cs, ys); break;
    case 3: forward_kernel<3, T><<<blocks, kThreads, 0, stream>>>(xs, batch, wiring, gates, cs, ys); break;
    case 4: forward_kernel<4, T><<<blocks, kThreads, 0, stream>>>(xs, batch, wiring, gates, cs, ys); break;
    case 5: forward_kernel<5, T><<<blocks, kThreads, 0, stream>>>(xs, batch, wiring, gates, cs, ys); break;
    case 6: forward_kernel<6, T><<<blocks, kThreads, 0, stream>>>(xs, batch, wiring, gates, cs, ys); break;
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

template <int N, typename T>
void launch_backward_n(const T* gy, const T* xs, int64_t batch, int64_t in_features, const int32_t* wiring,
                       int64_t gates, const typename Acc<T>::type* cs, const int32_t* offsets, const int32_t* entries,
                       T* gx, typename Acc<T>::type* gc, cudaStream_t stream) {
  if (gx != nullptr && in_features * batch > 0) {
    input_grad_kernel<N, T><<<blocks_for(in_features * batch), kThreads, 0, stream>>>(
        gy, xs, batch, in_features, wiring, cs, offsets, entries, gx);
  }
  if (gc != nullptr && gates > 0) {
    corner_grad_kernel<N, T><<<blocks_for(gates * 32), kThreads, 0, stream>>>(gy, xs, batch, wiring, gates, gc);
  }
}

template <typename T>
int launch_backward(const void* grad_y, const void* x, int64_t batch, int64_t in_features, const int32_t* wiring,
                    int arity, int64_t gates, const void* corners, const int32_t* offsets, const int32_t* entries,
                    void* grad_x, void* grad_corners, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const T* gy = static_cast<const T*>(grad_y);
  const T* xs = static_cast<const T*>(x);
  const A* cs = static_cast<const A*>(corners);
  T* gx = static_cast<T*>(grad_x);
  A* gc = static_cast<A*>(grad_corners);
  switch (arity) {
    case 1: launch_backward_n<1, T>(gy, xs, batch, in_features, wiring, gates, cs, offsets, entries, gx, gc, stream); break;
    case 2: launch_backward_n<2, T>(gy, xs, batch, in_features, wiring, gates, cs, offsets, entries, gx, gc, stream); break;
    case 3: launch_backward_n<3, T>(gy, xs, batch, in_features, wiring, gates, cs, offsets, entries, gx, gc, stream); break;
    case 4: launch_backward_n<4, T>(gy, xs, batch, in_features, wiring, gates, cs, offsets, entries, gx, gc, stream); break;
    case 5: launch_backward_n<5, T>(gy, xs, batch, in_features, wiring, gates, cs, offsets, entries, gx, gc, stream); break;
    case 6: launch_backward_n<6, T>(gy, xs, batch, in_features, wiring, gates, cs, offsets, entries, gx, gc, stream); break;
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

const char* error_string(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }

int gate_forward(DType dtype, const void* x, int64_t batch, const int32_t* wiring, int arity, int64_t gates,
                 const void* corners, void* y, void* stream) {
  if (gates * batch == 0) return 0;  // a zero-block launch is an error
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::f32: return launch_forward<float>(x, batch, wiring, arity, gates, corners, y, s);
    case DType::f64: return launch_forward<double>(x, batch, wiring, arity, gates, corners, y, s);
    case DType::bf16: return launch_forward<__nv_bfloat16>(x, batch, wiring, arity, gates, corners, y, s);
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

int gate_backward(DType dtype, const void* grad_y, const void* x, int64_t batch, int64_t in_features,
                  const int32_t* wiring, int arity, int64_t gates, const void* corners,
                  const int32_t* consumer_offsets, const int32_t* consumer_entries, void* grad_x,
                  void* grad_corners, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::f32:
      return launch_backward<float>(grad_y, x, batch, in_features, wiring, arity, gates, corners, consumer_offsets,
                                    consumer_entries, grad_x, grad_corners, s);
    case DType::f64:
      return launch_backward<double>(grad_y, x, batch, in_features, wiring, arity, gates, corners,
                                     consumer_offsets, consumer_entries, grad_x, grad_corners, s);
    case DType::bf16:
      return launch_backward<__nv_bfloat16>(grad_y, x, batch, in_features, wiring, arity, gates, corners,
                                            consumer_offsets, consumer_entries, grad_x, grad_corners, s);
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

int op_corners_forward(DType dtype, const void* logits, const int32_t* tables, int64_t gates, void* corners,
                       void* stream) {
  if (gates == 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (dtype == DType::f32) {
    op_corners_kernel<float><<<blocks_for(gates), kThreads, 0, s>>>(static_cast<const float*>(logits), tables, gates,
                                                                     static_cast<float*>(corners));
  } else if (dtype == DType::f64) {
    op_corners_kernel<double><<<blocks_for(gates), kThreads, 0, s>>>(static_cast<const double*>(logits), tables,
                                                                      gates, static_cast<double*>(corners));
  } else {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

int op_corners_backward(DType dtype, const void* grad_corners, const void* logits, const int32_t* tables,
                        int64_t gates, void* grad_logits, void* stream) {
  if (gates == 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (dtype == DType::f32) {
    op_corners_backward_kernel<float><<<blocks_for(gates), kThreads, 0, s>>>(
        static_cast<const float*>(grad_corners), static_cast<const float*>(logits), tables, gates,
        static_cast<float*>(grad_logits));
  } else if (dtype == DType::f64) {
    op_corners_backward_kernel<double><<<blocks_for(gates), kThreads, 0, s>>>(
        static_cast<const double*>(grad_corners), static_cast<const double*>(logits), tables, gates,
        static_cast<double*>(grad_logits));
  } else {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

int packed_forward(const uint64_t* bits, int64_t words, const int32_t* wiring, int arity, int64_t gates,
                   const uint64_t* tables, uint64_t* out, void* stream) {
  if (gates * words == 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const unsigned blocks = blocks_for(gates * words);
  switch (arity) {
    case 1: packed_kernel<1><<<blocks, kThreads, 0, s>>>(bits, words, wiring, gates, tables, out); break;
    case 2: packed_kernel<2><<<blocks, kThreads, 0, s>>>(bits, words, wiring, gates, tables, out); break;
    case 3: packed_kernel<3><<<blocks, kThreads, 0, s>>>(bits, words, wiring, gates, tables, out); break;
    case 4: packed_kernel<4><<<blocks, kThreads, 0, s>>>(bits, words, wiring, gates, tables, out); break;
    case 5: packed_kernel<5><<<blocks, kThreads, 0, s>>>(bits, words, wiring, gates, tables, out); break;
    case 6: packed_kernel<6><<<blocks, kThreads, 0, s>>>(bits, words, wiring, gates, tables, out); break;
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace lgn
