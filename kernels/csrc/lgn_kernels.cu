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
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "lgn_kernels.h"

namespace lgn {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 20;  // grid-stride loops cover the rest

template <typename T>
struct Acc {
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};

__device__ __forceinline__ float load(const float* p) { return __ldg(p); }
__device__ __forceinline__ double load(const double* p) { return __ldg(p); }
__device__ __forceinline__ float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(double* p, double v) { *p = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16(v); }

__device__ __forceinline__ float exp_of(float v) { return expf(v); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }

inline unsigned blocks_for(int64_t work) {
  int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_count() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// Fold a table of 2^M values over M inputs, in place: pairs (2j, 2j+1) differ in the first input.
template <int M, typename A>
__device__ __forceinline__ A fold(A* v, const A* in) {
#pragma unroll
  for (int k = 0; k < M; ++k) {
#pragma unroll
    for (int j = 0; j < (1 << (M - 1 - k)); ++j) v[j] = v[2 * j] + (v[2 * j + 1] - v[2 * j]) * in[k];
  }
  return v[0];
}

template <int N, typename T, typename A>
__device__ __forceinline__ void gather(const T* x, int64_t batch, const int32_t* wiring, int64_t g, int64_t b,
                                       A* in) {
#pragma unroll
  for (int k = 0; k < N; ++k) in[k] = load(x + static_cast<int64_t>(__ldg(wiring + g * N + k)) * batch + b);
}

// d gate / d input k: the difference table along k, interpolated at the other inputs. w is global.
template <int N, typename A>
__device__ __forceinline__ A partial(const A* __restrict__ w, const A* in, int k) {
  A diff[1 << (N - 1)];
  A others[N > 1 ? N - 1 : 1];
#pragma unroll
  for (int j = 0; j < (1 << (N - 1)); ++j) {
    const int low = j & ((1 << k) - 1);
    const int m0 = ((j >> k) << (k + 1)) | low;
    diff[j] = __ldg(w + (m0 | (1 << k))) - __ldg(w + m0);
  }
#pragma unroll
  for (int j = 0, o = 0; j < N; ++j) {
    if (j != k) others[o++] = in[j];
  }
  return fold<N - 1>(diff, others);
}

// ---- relaxed forward -------------------------------------------------------------------------------

template <int N, typename T>
__global__ void forward_kernel(const T* __restrict__ x, int64_t batch, const int32_t* __restrict__ wiring,
                               int64_t gates, const typename Acc<T>::type* __restrict__ corners,
                               T* __restrict__ y) {
  using A = typename Acc<T>::type;
  const int64_t total = gates * batch;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t g = i / batch, b = i - g * batch;
    A in[N];
    gather<N>(x, batch, wiring, g, b, in);
    const A* w = corners + g * (1 << N);
    A v[1 << (N - 1)];
#pragma unroll
    for (int j = 0; j < (1 << (N - 1)); ++j) {
      const A low = __ldg(w + 2 * j);
      v[j] = low + (__ldg(w + 2 * j + 1) - low) * in[0];
    }
    store(y + i, fold<N - 1>(v, in + 1));
  }
}

// Arity 2, written out: g = w0 + (w1 - w0) a + (w2 - w0) b + (w0 - w1 - w2 + w3) a b.
template <typename T>
__global__ void forward2_kernel(const T* __restrict__ x, int64_t batch, const int32_t* __restrict__ wiring,
                                int64_t gates, const typename Acc<T>::type* __restrict__ corners,
                                T* __restrict__ y) {
  using A = typename Acc<T>::type;
  const int64_t total = gates * batch;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t g = i / batch, b = i - g * batch;
    const A a = load(x + static_cast<int64_t>(__ldg(wiring + 2 * g)) * batch + b);
    const A c = load(x + static_cast<int64_t>(__ldg(wiring + 2 * g + 1)) * batch + b);
    const A* w = corners + 4 * g;
    const A w0 = __ldg(w), w1 = __ldg(w + 1), w2 = __ldg(w + 2), w3 = __ldg(w + 3);
    const A low = w0 + (w1 - w0) * a, high = w2 + (w3 - w2) * a;
    store(y + i, low + (high - low) * c);
  }
}

// ---- input gradient (gather over consumer lists) ---------------------------------------------------

template <int N, typename T>
__global__ void input_grad_kernel(const T* __restrict__ grad_y, const T* __restrict__ x, int64_t batch,
                                  int64_t in_features, const int32_t* __restrict__ wiring,
                                  const typename Acc<T>::type* __restrict__ corners,
                                  const int32_t* __restrict__ offsets, const int32_t* __restrict__ entries,
                                  T* __restrict__ grad_x) {
  using A = typename Acc<T>::type;
  const int64_t total = in_features * batch;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t f = i / batch, b = i - f * batch;
    A sum = 0;
    const int end = __ldg(offsets + f + 1);
    for (int e = __ldg(offsets + f); e < end; ++e) {
      const int entry = __ldg(entries + e);
      const int64_t g = entry / N;
      const int k = entry - static_cast<int>(g) * N;
      A in[N];
      gather<N>(x, batch, wiring, g, b, in);
      sum += load(grad_y + g * batch + b) * partial<N>(corners + g * (1 << N), in, k);
    }
    store(grad_x + i, sum);
  }
}

// Arity 2: dg/da = (w1 - w0) + (w0 - w1 - w2 + w3) b, dg/db = (w2 - w0) + (w0 - w1 - w2 + w3) a.
template <typename T>
__global__ void input_grad2_kernel(const T* __restrict__ grad_y, const T* __restrict__ x, int64_t batch,
                                   int64_t in_features, const int32_t* __restrict__ wiring,
                                   const typename Acc<T>::type* __restrict__ corners,
                                   const int32_t* __restrict__ offsets, const int32_t* __restrict__ entries,
                                   T* __restrict__ grad_x) {
  using A = typename Acc<T>::type;
  const int64_t total = in_features * batch;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t f = i / batch, b = i - f * batch;
    A sum = 0;
    const int end = __ldg(offsets + f + 1);
    for (int e = __ldg(offsets + f); e < end; ++e) {
      const int entry = __ldg(entries + e);
      const int64_t g = entry >> 1;
      const A* w = corners + 4 * g;
      const A w0 = __ldg(w), w1 = __ldg(w + 1), w2 = __ldg(w + 2), w3 = __ldg(w + 3);
      // The derivative along one fan-in depends on the other fan-in's value only.
      const int other = __ldg(wiring + 2 * g + ((entry & 1) ^ 1));
      const A v = load(x + static_cast<int64_t>(other) * batch + b);
      const A cross = w0 - w1 - w2 + w3;
      const A slope = (entry & 1) ? (w2 - w0) : (w1 - w0);
      sum += load(grad_y + g * batch + b) * (slope + cross * v);
    }
    store(grad_x + i, sum);
  }
}

// ---- corner gradient (one warp per gate, reduction over the batch) ---------------------------------

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
#pragma unroll
    for (int m = 0; m < (1 << N); ++m) acc[m] = 0;
    for (int64_t b = lane; b < batch; b += 32) {
      A in[N];
      gather<N>(x, batch, wiring, g, b, in);
      A basis[1 << N];
      basis[0] = load(grad_y + g * batch + b);
#pragma unroll
      for (int k = 0; k < N; ++k) {
#pragma unroll
        for (int j = 0; j < (1 << k); ++j) {
          basis[j + (1 << k)] = basis[j] * in[k];
          basis[j] = basis[j] * (A(1) - in[k]);
        }
      }
#pragma unroll
      for (int m = 0; m < (1 << N); ++m) acc[m] += basis[m];
    }
#pragma unroll
    for (int m = 0; m < (1 << N); ++m) {
      A v = acc[m];
#pragma unroll
      for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
      if (lane == 0) grad_corners[g * (1 << N) + m] = v;
    }
  }
}

// ---- OP corners: softmax over 16 gates, expectation at each corner ---------------------------------

template <typename A>
__device__ __forceinline__ void softmax16(const A* logits, A* p) {
  A top = logits[0];
#pragma unroll
  for (int i = 1; i < 16; ++i) top = logits[i] > top ? logits[i] : top;
  A total = 0;
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    p[i] = exp_of(logits[i] - top);
    total += p[i];
  }
#pragma unroll
  for (int i = 0; i < 16; ++i) p[i] /= total;
}

template <typename A>
__global__ void op_corners_kernel(const A* __restrict__ logits, const int32_t* __restrict__ tables, int64_t gates,
                                  A* __restrict__ corners) {
  for (int64_t g = thread_index(); g < gates; g += thread_count()) {
    A l[16], p[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) l[i] = __ldg(logits + 16 * g + i);
    softmax16(l, p);
#pragma unroll
    for (int m = 0; m < 4; ++m) {
      A v = 0;
#pragma unroll
      for (int i = 0; i < 16; ++i) v += ((__ldg(tables + i) >> m) & 1) ? p[i] : A(0);
      corners[4 * g + m] = v;
    }
  }
}

// d corners / d logit_i through the softmax: p_i (s_i - sum_j p_j s_j), s_i = sum_m T[i][m] dcorner_m.
template <typename A>
__global__ void op_corners_backward_kernel(const A* __restrict__ grad_corners, const A* __restrict__ logits,
                                           const int32_t* __restrict__ tables, int64_t gates,
                                           A* __restrict__ grad_logits) {
  for (int64_t g = thread_index(); g < gates; g += thread_count()) {
    A l[16], p[16], s[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) l[i] = __ldg(logits + 16 * g + i);
    softmax16(l, p);
    A mean = 0;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      A v = 0;
#pragma unroll
      for (int m = 0; m < 4; ++m) v += ((__ldg(tables + i) >> m) & 1) ? __ldg(grad_corners + 4 * g + m) : A(0);
      s[i] = v;
      mean += p[i] * v;
    }
#pragma unroll
    for (int i = 0; i < 16; ++i) grad_logits[16 * g + i] = p[i] * (s[i] - mean);
  }
}

// ---- discretized layer on packed bits --------------------------------------------------------------

template <int N>
__global__ void packed_kernel(const uint64_t* __restrict__ bits, int64_t words, const int32_t* __restrict__ wiring,
                              int64_t gates, const uint64_t* __restrict__ tables, uint64_t* __restrict__ out) {
  const int64_t total = gates * words;
  for (int64_t i = thread_index(); i < total; i += thread_count()) {
    const int64_t g = i / words, w = i - g * words;
    const uint64_t table = __ldg(reinterpret_cast<const unsigned long long*>(tables) + g);
    uint64_t in[N];
#pragma unroll
    for (int k = 0; k < N; ++k)
      in[k] = __ldg(reinterpret_cast<const unsigned long long*>(bits) +
                    static_cast<int64_t>(__ldg(wiring + g * N + k)) * words + w);
    // Multiplexer tree: corner values as all-ones/all-zeros words, selected by one input at a time.
    uint64_t v[1 << (N - 1)];
#pragma unroll
    for (int j = 0; j < (1 << (N - 1)); ++j) {
      const uint64_t low = 0 - ((table >> (2 * j)) & 1), high = 0 - ((table >> (2 * j + 1)) & 1);
      v[j] = (low & ~in[0]) | (high & in[0]);
    }
#pragma unroll
    for (int k = 1; k < N; ++k) {
#pragma unroll
      for (int j = 0; j < (1 << (N - 1 - k)); ++j) v[j] = (v[2 * j] & ~in[k]) | (v[2 * j + 1] & in[k]);
    }
    out[i] = v[0];
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
    case 2: forward2_kernel<T><<<blocks, kThreads, 0, stream>>>(xs, batch, wiring, gates, cs, ys); break;
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
    if (N == 2) {
      input_grad2_kernel<T><<<blocks_for(in_features * batch), kThreads, 0, stream>>>(
          gy, xs, batch, in_features, wiring, cs, offsets, entries, gx);
    } else {
      input_grad_kernel<N, T><<<blocks_for(in_features * batch), kThreads, 0, stream>>>(
          gy, xs, batch, in_features, wiring, cs, offsets, entries, gx);
    }
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
