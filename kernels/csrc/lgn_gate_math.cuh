// The per-thread work of every gate kernel, as functions that compile for the device (nvcc) and for the
// host (any C++17 compiler). The kernels in lgn_kernels.cu are thin loops around them; the host build
// (lgn_host_emulation.cpp) runs the very same code over every thread index, so the arithmetic and the
// indexing of the kernels are tested on machines without a GPU. Layout contract: lgn_kernels.h.
//
// Activation loads go through load()/A: the includer provides overloads for its activation types
// (float and double here; bfloat16 in the CUDA translation unit) before including this header.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define LGN_HD __host__ __device__ __forceinline__
#else
#define LGN_HD inline
#endif
#ifdef __CUDA_ARCH__  // fixed-size loops unrolled, so the small arrays below live in registers
#define LGN_UNROLL _Pragma("unroll")
#else
#define LGN_UNROLL
#endif

namespace lgn {
namespace math {

LGN_HD float load(const float* p) { return *p; }
LGN_HD double load(const double* p) { return *p; }
LGN_HD void store(float* p, float v) { *p = v; }
LGN_HD void store(double* p, double v) { *p = v; }

template <typename T>
struct Acc {
  using type = float;  // float and bfloat16 activations accumulate in float
};
template <>
struct Acc<double> {
  using type = double;
};

// Fold a table of 2^M values over M inputs, in place: entries 2j and 2j+1 differ in the first input.
// One input per template step, so every loop bound and array index is a compile-time constant.
template <int M, int K = 0, typename A>
LGN_HD A fold(A* v, const A* in) {
  if constexpr (K < M) {
    LGN_UNROLL
    for (int j = 0; j < (1 << (M - 1 - K)); ++j) v[j] = v[2 * j] + (v[2 * j + 1] - v[2 * j]) * in[K];
    return fold<M, K + 1>(v, in);
  } else {
    return v[0];
  }
}

template <int N, typename T, typename A>
LGN_HD void gather(const T* x, int64_t batch, const int32_t* wiring, int64_t g, int64_t b, A* in) {
  LGN_UNROLL
  for (int k = 0; k < N; ++k) in[k] = load(x + static_cast<int64_t>(wiring[g * N + k]) * batch + b);
}

// ---- relaxed forward: element i = g * batch + b -----------------------------------------------------

template <int N, typename T>
LGN_HD typename Acc<T>::type forward_element(const T* x, int64_t batch, const int32_t* wiring,
                                             const typename Acc<T>::type* corners, int64_t g, int64_t b) {
  using A = typename Acc<T>::type;
  A in[N];
  gather<N>(x, batch, wiring, g, b, in);
  const A* w = corners + g * (1 << N);
  A v[1 << (N - 1)];
  LGN_UNROLL
  for (int j = 0; j < (1 << (N - 1)); ++j) v[j] = w[2 * j] + (w[2 * j + 1] - w[2 * j]) * in[0];
  return fold<N - 1>(v, in + 1);
}

// Arity 2, written out: mix corners by a, then by b.
template <typename T>
LGN_HD typename Acc<T>::type forward2_element(const T* x, int64_t batch, const int32_t* wiring,
                                              const typename Acc<T>::type* corners, int64_t g, int64_t b) {
  using A = typename Acc<T>::type;
  const A a = load(x + static_cast<int64_t>(wiring[2 * g]) * batch + b);
  const A c = load(x + static_cast<int64_t>(wiring[2 * g + 1]) * batch + b);
  const A* w = corners + 4 * g;
  const A low = w[0] + (w[1] - w[0]) * a, high = w[2] + (w[3] - w[2]) * a;
  return low + (high - low) * c;
}

// ---- input gradient: element i = f * batch + b, gathered over f's consumers -------------------------

// d gate / d input K: the difference table along K, interpolated at the other inputs.
template <int N, int K, typename A>
LGN_HD A partial_fixed(const A* w, const A* in) {
  A diff[1 << (N - 1)];
  A others[N > 1 ? N - 1 : 1];
  LGN_UNROLL
  for (int j = 0; j < (1 << (N - 1)); ++j) {
    const int m0 = ((j >> K) << (K + 1)) | (j & ((1 << K) - 1));  // insert a 0 bit at position K
    diff[j] = w[m0 | (1 << K)] - w[m0];
  }
  LGN_UNROLL
  for (int j = 0; j < N - 1; ++j) others[j] = in[j < K ? j : j + 1];
  return fold<N - 1>(diff, others);
}

// The same for a runtime k: a chain of compile-time cases, so every index stays static (registers).
template <int N, int K = 0, typename A>
LGN_HD A partial(const A* w, const A* in, int k) {
  if constexpr (K + 1 < N) {
    if (k != K) return partial<N, K + 1>(w, in, k);
  }
  return partial_fixed<N, K>(w, in);
}

template <int N, typename T>
LGN_HD typename Acc<T>::type input_grad_element(const T* grad_y, const T* x, int64_t batch, const int32_t* wiring,
                                                const typename Acc<T>::type* corners, const int32_t* offsets,
                                                const int32_t* entries, int64_t f, int64_t b) {
  using A = typename Acc<T>::type;
  A sum = 0;
  for (int e = offsets[f]; e < offsets[f + 1]; ++e) {  // ascending: a fixed summation order
    const int entry = entries[e];
    const int64_t g = entry / N;
    const int k = entry - static_cast<int>(g) * N;
    A in[N];
    gather<N>(x, batch, wiring, g, b, in);
    sum += load(grad_y + g * batch + b) * partial<N>(corners + g * (1 << N), in, k);
  }
  return sum;
}

// Arity 2: dg/da = (w1 - w0) + (w0 - w1 - w2 + w3) b and dg/db = (w2 - w0) + (w0 - w1 - w2 + w3) a: the
// derivative along one fan-in reads only the other fan-in.
template <typename T>
LGN_HD typename Acc<T>::type input_grad2_element(const T* grad_y, const T* x, int64_t batch, const int32_t* wiring,
                                                 const typename Acc<T>::type* corners, const int32_t* offsets,
                                                 const int32_t* entries, int64_t f, int64_t b) {
  using A = typename Acc<T>::type;
  A sum = 0;
  for (int e = offsets[f]; e < offsets[f + 1]; ++e) {
    const int entry = entries[e];
    const int64_t g = entry >> 1;
    const A* w = corners + 4 * g;
    const A other = load(x + static_cast<int64_t>(wiring[2 * g + ((entry & 1) ^ 1)]) * batch + b);
    const A slope = (entry & 1) ? (w[2] - w[0]) : (w[1] - w[0]);
    sum += load(grad_y + g * batch + b) * (slope + (w[0] - w[1] - w[2] + w[3]) * other);
  }
  return sum;
}

// basis[0] times each corner's product prod_k (x_k if bit k of m else 1 - x_k), for all 2^N corners
// m = sum_k bit_k 2^k: input K doubles the table, the upper half being the entries with bit K set.
template <int N, int K = 0, typename A>
LGN_HD void expand_basis(A* basis, const A* in) {
  if constexpr (K < N) {
    LGN_UNROLL
    for (int j = 0; j < (1 << K); ++j) {
      basis[j + (1 << K)] = basis[j] * in[K];
      basis[j] = basis[j] * (A(1) - in[K]);
    }
    expand_basis<N, K + 1>(basis, in);
  }
}

// ---- corner gradient: lane `lane` of `lanes` sums samples lane, lane + lanes, ... of gate g ---------

template <int N, typename T>
LGN_HD void corner_grad_lane(const T* grad_y, const T* x, int64_t batch, const int32_t* wiring, int64_t g,
                             int lane, int lanes, typename Acc<T>::type* acc) {
  using A = typename Acc<T>::type;
  LGN_UNROLL
  for (int m = 0; m < (1 << N); ++m) acc[m] = 0;
  for (int64_t b = lane; b < batch; b += lanes) {
    A in[N];
    gather<N>(x, batch, wiring, g, b, in);
    A basis[1 << N];
    basis[0] = load(grad_y + g * batch + b);
    expand_basis<N>(basis, in);
    LGN_UNROLL
    for (int m = 0; m < (1 << N); ++m) acc[m] += basis[m];
  }
}

// ---- OP corners ------------------------------------------------------------------------------------

LGN_HD float exp_of(float v) { return expf(v); }
LGN_HD double exp_of(double v) { return exp(v); }

template <typename A>
LGN_HD void softmax16(const A* logits, A* p) {
  A top = logits[0];
  LGN_UNROLL
  for (int i = 1; i < 16; ++i) top = logits[i] > top ? logits[i] : top;
  A total = 0;
  LGN_UNROLL
  for (int i = 0; i < 16; ++i) {
    p[i] = exp_of(logits[i] - top);
    total += p[i];
  }
  LGN_UNROLL
  for (int i = 0; i < 16; ++i) p[i] /= total;
}

template <typename A>
LGN_HD void op_corners_element(const A* logits, const int32_t* tables, int64_t g, A* corners) {
  A p[16];
  softmax16(logits + 16 * g, p);
  LGN_UNROLL
  for (int m = 0; m < 4; ++m) {
    A v = 0;
    LGN_UNROLL
    for (int i = 0; i < 16; ++i) v += ((tables[i] >> m) & 1) ? p[i] : A(0);
    corners[4 * g + m] = v;
  }
}

// Through the softmax: d/dlogit_i = p_i (s_i - sum_j p_j s_j), s_i = sum_m T[i][m] dcorner_m.
template <typename A>
LGN_HD void op_corners_backward_element(const A* grad_corners, const A* logits, const int32_t* tables, int64_t g,
                                        A* grad_logits) {
  A p[16], s[16];
  softmax16(logits + 16 * g, p);
  A mean = 0;
  LGN_UNROLL
  for (int i = 0; i < 16; ++i) {
    A v = 0;
    LGN_UNROLL
    for (int m = 0; m < 4; ++m) v += ((tables[i] >> m) & 1) ? grad_corners[4 * g + m] : A(0);
    s[i] = v;
    mean += p[i] * v;
  }
  LGN_UNROLL
  for (int i = 0; i < 16; ++i) grad_logits[16 * g + i] = p[i] * (s[i] - mean);
}

// ---- discretized layer on packed bits: element i = g * words + w ------------------------------------

// fold() for bit masks: entry j picks v[2j] where the input bit is 0 and v[2j + 1] where it is 1.
template <int M, int K = 0>
LGN_HD uint64_t select(uint64_t* v, const uint64_t* in) {
  if constexpr (K < M) {
    LGN_UNROLL
    for (int j = 0; j < (1 << (M - 1 - K)); ++j) v[j] = (v[2 * j] & ~in[K]) | (v[2 * j + 1] & in[K]);
    return select<M, K + 1>(v, in);
  } else {
    return v[0];
  }
}

template <int N>
LGN_HD uint64_t packed_element(const uint64_t* bits, int64_t words, const int32_t* wiring, const uint64_t* tables,
                               int64_t g, int64_t w) {
  const uint64_t table = tables[g];
  uint64_t in[N];
  LGN_UNROLL
  for (int k = 0; k < N; ++k) in[k] = bits[static_cast<int64_t>(wiring[g * N + k]) * words + w];
  // A multiplexer tree: corner values as all-ones / all-zeros words, selected by one input at a time.
  uint64_t v[1 << (N - 1)];
  LGN_UNROLL
  for (int j = 0; j < (1 << (N - 1)); ++j) {
    const uint64_t low = 0 - ((table >> (2 * j)) & 1), high = 0 - ((table >> (2 * j + 1)) & 1);
    v[j] = (low & ~in[0]) | (high & in[0]);
  }
  return select<N - 1>(v, in + 1);
}

}  // namespace math
}  // namespace lgn
