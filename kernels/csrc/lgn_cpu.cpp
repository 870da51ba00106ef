// The gate operators for the CPU: the same layout as the CUDA kernels (lgn_kernels.h, feature-major
// activations [features, batch]), for gates of 1 to 6 inputs and for candidate mixtures (learned wiring).
// Every inner loop runs over the contiguous samples of one gate, slot or feature, in blocks whose
// intermediate tables stay in L1, so the compiler vectorises it. Threads take disjoint ranges of gates,
// slots or features, so the result does not depend on the thread count: deterministic (fixed summation
// order, vector width fixed by the build). Used by kernels.ops on CPU tensors; bfloat16 uses the torch
// reference there.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace {

// Below this many (row x sample) elements a thread costs more than it saves.
constexpr int64_t kMinWorkPerThread = 1 << 16;
// Samples per block: a gate's intermediate tables (at most 32 x kBlock values) stay in L1.
constexpr int64_t kBlock = 64;

// Runs body(begin, end) over [0, rows) split into contiguous ranges, one per thread, on OpenMP's threads:
// the library links libgomp.so.1, which in a process that runs torch is torch's own, so these are the
// threads of torch's pool. Threads of our own would run beside that pool's workers, which keep spinning on
// the other cores for a while after each torch operator: on 2 cores that made a 0.7 ms call take 4.9 ms.
template <typename Body>
void parallel_rows(int64_t rows, int64_t row_work, int threads, Body body) {
  const int64_t useful = std::max<int64_t>(1, rows * row_work / kMinWorkPerThread);
  const int64_t count = std::min<int64_t>(std::max(threads, 1), std::min(useful, rows));
  if (count <= 1) {
    body(int64_t(0), rows);
    return;
  }
  const int64_t chunk = (rows + count - 1) / count;
#pragma omp parallel for num_threads(count) schedule(static, 1)
  for (int64_t t = 0; t < count; ++t) {
    const int64_t begin = t * chunk, end = std::min(rows, begin + chunk);
    if (begin < end) body(begin, end);
  }
}

// ---- gates of N inputs ---------------------------------------------------------------------------------
// A gate's output is the multilinear interpolation of its 2^N corner values at its inputs. Corner m is
// the assignment m = sum_k x_k 2^k; folding input 0 first mixes corners 2j and 2j + 1.

// v[j][b] = corner 2j + (corner 2j+1 - corner 2j) * x0[b], then fold the rest: the output in v[0].
template <int N, typename T>
void fold_block(const T* w, const T* const* in, int64_t nb, T (*v)[kBlock]) {
  for (int j = 0; j < (1 << (N - 1)); ++j) {
    const T lo = w[2 * j], slope = w[2 * j + 1] - w[2 * j];
#pragma omp simd
    for (int64_t b = 0; b < nb; ++b) v[j][b] = lo + slope * in[0][b];
  }
  for (int k = 1; k < N; ++k) {
    for (int j = 0; j < (1 << (N - 1 - k)); ++j) {
#pragma omp simd
      for (int64_t b = 0; b < nb; ++b) v[j][b] = v[2 * j][b] + (v[2 * j + 1][b] - v[2 * j][b]) * in[k][b];
    }
  }
}

// Arity 2, written out (the common case): g(a, c) = w0 + (w1 - w0) a + (w2 - w0) c + (w0 - w1 - w2 + w3) a c.
template <typename T>
void forward_gates2(const T* x, int64_t batch, const int32_t* wiring, int64_t first, int64_t last, const T* corners,
                    T* y) {
  for (int64_t g = first; g < last; ++g) {
    const T* a = x + static_cast<int64_t>(wiring[2 * g]) * batch;
    const T* c = x + static_cast<int64_t>(wiring[2 * g + 1]) * batch;
    const T* w = corners + 4 * g;
    const T k0 = w[0], ka = w[1] - w[0], kc = w[2] - w[0], kac = w[0] - w[1] - w[2] + w[3];
    T* out = y + g * batch;
#pragma omp simd
    for (int64_t b = 0; b < batch; ++b) out[b] = k0 + ka * a[b] + (kc + kac * a[b]) * c[b];
  }
}

template <int N, typename T>
void forward_gates(const T* x, int64_t batch, const int32_t* wiring, int64_t first, int64_t last, const T* corners,
                   T* y) {
  if constexpr (N == 2) {
    forward_gates2(x, batch, wiring, first, last, corners, y);
    return;
  }
  T v[1 << (N - 1)][kBlock];
  for (int64_t g = first; g < last; ++g) {
    for (int64_t b0 = 0; b0 < batch; b0 += kBlock) {
      const int64_t nb = std::min(kBlock, batch - b0);
      const T* in[N];
      for (int k = 0; k < N; ++k) in[k] = x + static_cast<int64_t>(wiring[g * N + k]) * batch + b0;
      fold_block<N>(corners + (g << N), in, nb, v);
      T* out = y + g * batch + b0;
#pragma omp simd
      for (int64_t b = 0; b < nb; ++b) out[b] = v[0][b];
    }
  }
}

// dL/dcorner m = sum_b dL/dy[b] * prod_k (x_k[b] if bit k of m else 1 - x_k[b]). With OwnInputs (learned
// wiring: gate g reads features 2g and 2g + 1, and nothing else reads them) the same pass also writes the
// input gradients, with input_grads' arithmetic, so the results are those of the general path.
template <bool OwnInputs, typename T>
void grads2(const T* grad_y, const T* x, int64_t batch, const int32_t* wiring, const T* corners, int64_t first,
            int64_t last, T* grad_corners, T* grad_x) {
  for (int64_t g = first; g < last; ++g) {
    const T* a = x + static_cast<int64_t>(OwnInputs ? 2 * g : wiring[2 * g]) * batch;
    const T* c = x + static_cast<int64_t>(OwnInputs ? 2 * g + 1 : wiring[2 * g + 1]) * batch;
    const T* gy = grad_y + g * batch;
    T slope_a = 0, slope_c = 0, cross = 0;
    T *out_a = nullptr, *out_c = nullptr;
    if constexpr (OwnInputs) {
      const T* w = corners + 4 * g;
      slope_a = w[1] - w[0], slope_c = w[2] - w[0], cross = w[0] - w[1] - w[2] + w[3];
      out_a = grad_x + 2 * g * batch, out_c = out_a + batch;
    }
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t b = 0; b < batch; ++b) {
      const T ac = a[b] * c[b];
      s0 += gy[b] * (T(1) - a[b] - c[b] + ac);
      s1 += gy[b] * (a[b] - ac);
      s2 += gy[b] * (c[b] - ac);
      s3 += gy[b] * ac;
      if constexpr (OwnInputs) {
        out_a[b] = gy[b] * (slope_a + cross * c[b]);
        out_c[b] = gy[b] * (slope_c + cross * a[b]);
      }
    }
    T* out = grad_corners + 4 * g;
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
    out[3] = s3;
  }
}

template <int N, typename T>
void corner_grads(const T* grad_y, const T* x, int64_t batch, const int32_t* wiring, int64_t first, int64_t last,
                  T* grad_corners) {
  if constexpr (N == 2) {
    grads2<false, T>(grad_y, x, batch, wiring, nullptr, first, last, grad_corners, nullptr);
    return;
  }
  T basis[1 << N][kBlock];
  for (int64_t g = first; g < last; ++g) {
    T sums[1 << N] = {};
    for (int64_t b0 = 0; b0 < batch; b0 += kBlock) {
      const int64_t nb = std::min(kBlock, batch - b0);
      const T* gy = grad_y + g * batch + b0;
#pragma omp simd
      for (int64_t b = 0; b < nb; ++b) basis[0][b] = gy[b];
      for (int k = 0; k < N; ++k) {  // entries 0 .. 2^k - 1 cover inputs 0 .. k - 1; split them on input k
        const T* xk = x + static_cast<int64_t>(wiring[g * N + k]) * batch + b0;
        for (int i = 0; i < (1 << k); ++i) {
#pragma omp simd
          for (int64_t b = 0; b < nb; ++b) {
            const T on = basis[i][b] * xk[b];
            basis[i + (1 << k)][b] = on;
            basis[i][b] -= on;
          }
        }
      }
      for (int m = 0; m < (1 << N); ++m) {
        T s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t b = 0; b < nb; ++b) s += basis[m][b];
        sums[m] += s;
      }
    }
    for (int m = 0; m < (1 << N); ++m) grad_corners[(g << N) + m] = sums[m];
  }
}

// d output / d input k = the interpolation, over the other inputs, of (corner with bit k) - (corner without).
template <int N, typename T>
void slope_block(const T* w, int slot, const T* x, int64_t batch, const int32_t* row, int64_t b0, int64_t nb,
                 T (*v)[kBlock]) {
  if constexpr (N == 1) {
    const T d = w[1] - w[0];
    for (int64_t b = 0; b < nb; ++b) v[0][b] = d;
  } else {
    T diff[1 << (N - 1)];
    const T* in[N - 1];
    for (int j = 0, k = 0; k < N; ++k) {
      if (k != slot) in[j++] = x + static_cast<int64_t>(row[k]) * batch + b0;
    }
    const int low = (1 << slot) - 1;
    for (int j = 0; j < (1 << (N - 1)); ++j) {  // j enumerates the other inputs' bits in order
      const int m = ((j & ~low) << 1) | (j & low);
      diff[j] = w[m | (1 << slot)] - w[m];
    }
    fold_block<N - 1>(diff, in, nb, v);
  }
}

// Gathered over each feature's consumers (ascending), like the CUDA kernel: a gate reading the feature on
// several fan-ins adds every derivative.
template <int N, typename T>
void input_grads(const T* grad_y, const T* x, int64_t batch, int64_t first, int64_t last, const int32_t* wiring,
                 const T* corners, const int32_t* offsets, const int32_t* entries, T* grad_x) {
  T v[N > 1 ? (1 << (N - 2)) : 1][kBlock];
  for (int64_t f = first; f < last; ++f) {
    T* out = grad_x + f * batch;
    for (int64_t b = 0; b < batch; ++b) out[b] = 0;
    for (int32_t e = offsets[f]; e < offsets[f + 1]; ++e) {
      const int64_t g = entries[e] / N;
      const int slot = entries[e] % N;
      const T* gy = grad_y + g * batch;
      if constexpr (N == 2) {  // the slope is linear in the other input: written out
        const T* w = corners + 4 * g;
        const T* other = x + static_cast<int64_t>(wiring[2 * g + (slot ^ 1)]) * batch;
        const T slope = slot ? w[2] - w[0] : w[1] - w[0];
        const T cross = w[0] - w[1] - w[2] + w[3];
#pragma omp simd
        for (int64_t b = 0; b < batch; ++b) out[b] += gy[b] * (slope + cross * other[b]);
        continue;
      }
      for (int64_t b0 = 0; b0 < batch; b0 += kBlock) {
        const int64_t nb = std::min(kBlock, batch - b0);
        slope_block<N>(corners + (g << N), slot, x, batch, wiring + g * N, b0, nb, v);
#pragma omp simd
        for (int64_t b = 0; b < nb; ++b) out[b0 + b] += gy[b0 + b] * v[0][b];
      }
    }
  }
}

// True when gate g reads features g * N .. g * N + N - 1 and there are no other features.
inline bool reads_own_inputs(const int32_t* wiring, int64_t gates, int64_t arity, int64_t in_features) {
  if (in_features != gates * arity) return false;
  for (int64_t i = 0; i < gates * arity; ++i) {
    if (wiring[i] != i) return false;
  }
  return true;
}

template <int N, typename T>
void forward_parallel(const void* x, int64_t batch, const int32_t* wiring, int64_t gates, const void* corners,
                      void* y, int threads) {
  parallel_rows(gates, batch << N, threads, [=](int64_t first, int64_t last) {
    forward_gates<N>(static_cast<const T*>(x), batch, wiring, first, last, static_cast<const T*>(corners),
                     static_cast<T*>(y));
  });
}

template <int N, typename T>
void backward_parallel(const void* grad_y, const void* x, int64_t batch, int64_t in_features, const int32_t* wiring,
                       int64_t gates, const void* corners, const int32_t* offsets, const int32_t* entries,
                       void* grad_x, void* grad_corners, int threads) {
  const T* gy = static_cast<const T*>(grad_y);
  const T* xs = static_cast<const T*>(x);
  if (N == 2 && grad_x != nullptr && grad_corners != nullptr && reads_own_inputs(wiring, gates, N, in_features)) {
    parallel_rows(gates, batch << N, threads, [=](int64_t first, int64_t last) {
      grads2<true, T>(gy, xs, batch, wiring, static_cast<const T*>(corners), first, last,
                      static_cast<T*>(grad_corners), static_cast<T*>(grad_x));
    });
    return;
  }
  if (grad_corners != nullptr) {
    parallel_rows(gates, batch << N, threads, [=](int64_t first, int64_t last) {
      corner_grads<N>(gy, xs, batch, wiring, first, last, static_cast<T*>(grad_corners));
    });
  }
  if (grad_x == nullptr) return;
  parallel_rows(in_features, N * batch << N, threads, [=](int64_t first, int64_t last) {
    input_grads<N>(gy, xs, batch, first, last, wiring, static_cast<const T*>(corners), offsets, entries,
                   static_cast<T*>(grad_x));
  });
}

// ---- candidate mixtures (learned wiring) --------------------------------------------------------------

// Candidates whose dot products run side by side: independent accumulators instead of one long chain.
constexpr int64_t kDots = 8;

// out[j] = sum_b g[b] * in[j][b] for j < n <= kDots, in lanes of one 64-byte vector each; fixed order.
template <typename T>
void dot_products(const T* g, const T* const* in, int64_t n, int64_t batch, T* out) {
  constexpr int64_t kLanes = 64 / sizeof(T);
  T acc[kDots][kLanes] = {};
  int64_t b0 = 0;
  for (; b0 + kLanes <= batch; b0 += kLanes) {
    for (int64_t j = 0; j < n; ++j) {
#pragma omp simd
      for (int64_t l = 0; l < kLanes; ++l) acc[j][l] += g[b0 + l] * in[j][b0 + l];
    }
  }
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t b = b0; b < batch; ++b) acc[j][b - b0] += g[b] * in[j][b];
  }
  T sums[kDots] = {};
  for (int64_t l = 0; l < kLanes; ++l) {
    for (int64_t j = 0; j < kDots; ++j) sums[j] += acc[j][l];
  }
  for (int64_t j = 0; j < n; ++j) out[j] = sums[j];
}

// out[c] = sum_b g[b] * x[row[c]][b] for c < candidates, kDots at a time.
template <typename T>
void candidate_dots(const T* g, const T* x, int64_t batch, const int32_t* row, int64_t candidates, T* out) {
  for (int64_t c = 0; c < candidates; c += kDots) {
    const int64_t nc = std::min(kDots, candidates - c);
    const T* in[kDots];
    for (int64_t j = 0; j < nc; ++j) in[j] = x + static_cast<int64_t>(row[c + j]) * batch;
    dot_products(g, in, nc, batch, out + c);
  }
}

// Slot s reads sum_c weight[s, c] * x[pool[s, c]]; zero weights (a hard choice) are skipped.
template <typename T>
void mix_forward(const T* x, int64_t batch, const int32_t* pool, const T* weight, int64_t candidates, int64_t first,
                 int64_t last, T* slots) {
  for (int64_t s = first; s < last; ++s) {
    T* out = slots + s * batch;
    for (int64_t b = 0; b < batch; ++b) out[b] = 0;
    for (int64_t c = 0; c < candidates; ++c) {
      const T w = weight[s * candidates + c];
      if (w == T(0)) continue;
      const T* in = x + static_cast<int64_t>(pool[s * candidates + c]) * batch;
#pragma omp simd
      for (int64_t b = 0; b < batch; ++b) out[b] += w * in[b];
    }
  }
}

template <typename T>
void mix_weight_grads(const T* grad_slots, const T* x, int64_t batch, const int32_t* pool, int64_t candidates,
                      int64_t first, int64_t last, T* grad_weight) {
  for (int64_t s = first; s < last; ++s) candidate_dots(grad_slots + s * batch, x, batch, pool + s * candidates,
                                                      candidates, grad_weight + s * candidates);
}

// Gathered over each feature's entries s * candidates + c (ascending).
template <typename T>
void mix_input_grads(const T* grad_slots, const T* weight, int64_t batch, int64_t candidates, int64_t first,
                     int64_t last, const int32_t* offsets, const int32_t* entries, T* grad_x) {
  for (int64_t f = first; f < last; ++f) {
    T* out = grad_x + f * batch;
    for (int64_t b = 0; b < batch; ++b) out[b] = 0;
    for (int32_t e = offsets[f]; e < offsets[f + 1]; ++e) {
      const T w = weight[entries[e]];
      if (w == T(0)) continue;
      const T* gs = grad_slots + (entries[e] / candidates) * batch;
#pragma omp simd
      for (int64_t b = 0; b < batch; ++b) out[b] += w * gs[b];
    }
  }
}

template <typename T>
void mix_forward_parallel(const void* x, int64_t batch, const int32_t* pool, const void* weight, int64_t slots,
                          int64_t candidates, void* out, int threads) {
  parallel_rows(slots, batch * candidates, threads, [=](int64_t first, int64_t last) {
    mix_forward(static_cast<const T*>(x), batch, pool, static_cast<const T*>(weight), candidates, first, last,
                static_cast<T*>(out));
  });
}

template <typename T>
void mix_backward_parallel(const void* grad_slots, const void* x, int64_t batch, int64_t in_features,
                           const int32_t* pool, const void* weight, int64_t slots, int64_t candidates,
                           const int32_t* offsets, const int32_t* entries, void* grad_x, void* grad_weight,
                           int threads) {
  const T* gs = static_cast<const T*>(grad_slots);
  parallel_rows(slots, batch * candidates, threads, [=](int64_t first, int64_t last) {
    mix_weight_grads(gs, static_cast<const T*>(x), batch, pool, candidates, first, last,
                     static_cast<T*>(grad_weight));
  });
  if (grad_x == nullptr) return;
  parallel_rows(in_features, batch * candidates, threads, [=](int64_t first, int64_t last) {
    mix_input_grads(gs, static_cast<const T*>(weight), batch, candidates, first, last, offsets, entries,
                    static_cast<T*>(grad_x));
  });
}

// ---- the softmax of the wiring logits ----------------------------------------------------------------

// e^y for y <= 0 without a library call, so that a loop of them vectorises: y = k ln 2 + r, |r| <= ln 2 / 2,
// e^r by its Taylor polynomial (truncation below 1e-8 relative for float, 1e-17 for double), times 2^k set
// in the exponent bits. Below -80 (float) or -700 (double) the value is that of the bound, far below any
// weight that matters next to the largest (which is 1).
template <typename T>
inline T exp_nonpositive(T y) {
  using Bits = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  constexpr int kDegree = sizeof(T) == 4 ? 7 : 13, kMantissa = sizeof(T) == 4 ? 23 : 52;
  constexpr Bits kBias = sizeof(T) == 4 ? 127 : 1023;
  constexpr T kLowest = sizeof(T) == 4 ? -80 : -700;
  y = y < kLowest ? kLowest : y;
  // k = y / ln 2 rounded to the nearest integer by adding and taking away 1.5 * 2^mantissa bits (floor()
  // would not vectorise here)
  constexpr T kRound = sizeof(T) == 4 ? T(12582912.0) : T(6755399441055744.0);
  const T k = (y * T(1.4426950408889634) + kRound) - kRound;
  const T r = (y - k * T(0.693145751953125)) - k * T(1.4286068203094173e-06);  // ln 2 in two parts
  T term = 1;  // 1 + r (1 + r/2 (1 + r/3 (...))), the reciprocals folded at compile time
#pragma GCC unroll 16
  for (int n = kDegree; n >= 1; --n) term = T(1) + term * r * (T(1) / T(n));
  const Bits scale = (static_cast<Bits>(k) + kBias) << kMantissa;
  return term * std::bit_cast<T>(scale);
}

// p[s] = softmax(logits[s] / tau) for `rows` rows of `cols` (the exponentials of all rows in one loop).
template <typename T>
void softmax_rows(const T* logits, int64_t rows, int64_t cols, T tau, T* p) {
  for (int64_t s = 0; s < rows; ++s) {
    const T* l = logits + s * cols;
    T top = l[0];
    for (int64_t c = 1; c < cols; ++c) top = std::max(top, l[c]);
    for (int64_t c = 0; c < cols; ++c) p[s * cols + c] = (l[c] - top) / tau;
  }
#pragma omp simd
  for (int64_t i = 0; i < rows * cols; ++i) p[i] = exp_nonpositive(p[i]);
  for (int64_t s = 0; s < rows; ++s) {
    T total = 0;
    for (int64_t c = 0; c < cols; ++c) total += p[s * cols + c];
    for (int64_t c = 0; c < cols; ++c) p[s * cols + c] /= total;
  }
}

// The gradient of the logits from that of the softmax's weights: p_c (d_c - sum_j p_j d_j) / tau.
template <typename T>
void softmax_rows_backward(const T* p, const T* d, int64_t rows, int64_t cols, T tau, T* grad) {
  for (int64_t s = 0; s < rows; ++s) {
    const T* ps = p + s * cols;
    const T* ds = d + s * cols;
    T expected = 0;
    for (int64_t c = 0; c < cols; ++c) expected += ps[c] * ds[c];
    for (int64_t c = 0; c < cols; ++c) grad[s * cols + c] = ps[c] * (ds[c] - expected) / tau;
  }
}

// ---- a hard choice among candidates (learned wiring, straight-through) ------------------------------
// Gate g reads x[wiring[g, k]]: slot s = g * N + k's chosen candidate. The forward and the gradients of x
// and the corners are those of fixed wiring (gate_forward, gate_backward over `wiring`); this adds the
// logits' gradient, that of a softmax mixture at temperature tau taken through the chosen candidate:
//   grad_logits[s, c] = p_c (d_c - sum_j p_j d_j) / tau,  p = softmax(logits[s] / tau),
//   d_c = sum_b dL/d(slot s)[b] * x[pool[s, c]][b]   (the slot's gradient against each candidate).
// A slot's gradient is computed once, in a buffer of one batch, and read by its candidates' dot products.
// Given grad_corners, the same pass over each gate makes the corners' gradient too (its inputs are in L1).
template <int N, typename T>
void choice_grads(const T* grad_y, const T* x, int64_t batch, const int32_t* wiring, const T* corners,
                  const int32_t* pool, int64_t candidates, const T* logits, T tau, int64_t first, int64_t last,
                  T* grad_logits, T* grad_corners) {
  std::vector<T> slot_grad(batch), d(N * candidates), p(N * candidates);
  T v[N > 1 ? (1 << (N - 2)) : 1][kBlock];
  for (int64_t g = first; g < last; ++g) {
    if (grad_corners != nullptr) corner_grads<N>(grad_y, x, batch, wiring, g, g + 1, grad_corners);
    const T* gy = grad_y + g * batch;
    for (int k = 0; k < N; ++k) {
      for (int64_t b0 = 0; b0 < batch; b0 += kBlock) {
        const int64_t nb = std::min(kBlock, batch - b0);
        slope_block<N>(corners + (g << N), k, x, batch, wiring + g * N, b0, nb, v);
#pragma omp simd
        for (int64_t b = 0; b < nb; ++b) slot_grad[b0 + b] = gy[b0 + b] * v[0][b];
      }
      candidate_dots(slot_grad.data(), x, batch, pool + (g * N + k) * candidates, candidates,
                     d.data() + k * candidates);
    }
    const int64_t at = g * N * candidates;
    softmax_rows(logits + at, N, candidates, tau, p.data());
    softmax_rows_backward(p.data(), d.data(), N, candidates, tau, grad_logits + at);
  }
}

template <int N, typename T>
void choice_grads_parallel(const void* grad_y, const void* x, int64_t batch, const int32_t* wiring, int64_t gates,
                           const void* corners, const int32_t* pool, int64_t candidates, const void* logits,
                           double tau, void* grad_logits, void* grad_corners, int threads) {
  parallel_rows(gates, batch * N * (candidates + 2), threads, [=](int64_t first, int64_t last) {
    choice_grads<N>(static_cast<const T*>(grad_y), static_cast<const T*>(x), batch, wiring,
                    static_cast<const T*>(corners), pool, candidates, static_cast<const T*>(logits), T(tau), first,
                    last, static_cast<T*>(grad_logits), static_cast<T*>(grad_corners));
  });
}

template <typename T>
void softmax_parallel(const void* logits, int64_t rows, int64_t cols, double tau, void* p, int threads) {
  parallel_rows(rows, cols * 16, threads, [=](int64_t first, int64_t last) {
    softmax_rows(static_cast<const T*>(logits) + first * cols, last - first, cols, T(tau),
                 static_cast<T*>(p) + first * cols);
  });
}

template <typename T>
void softmax_backward_parallel(const void* p, const void* grad_p, int64_t rows, int64_t cols, double tau,
                               void* grad_logits, int threads) {
  parallel_rows(rows, cols * 4, threads, [=](int64_t first, int64_t last) {
    softmax_rows_backward(static_cast<const T*>(p) + first * cols, static_cast<const T*>(grad_p) + first * cols,
                          last - first, cols, T(tau), static_cast<T*>(grad_logits) + first * cols);
  });
}

// Runs F<N, T>(args...) for the arity and dtype given at run time; false for unsupported ones.
template <template <int, typename> class Op, typename... Args>
bool dispatch(int dtype, int arity, Args... args) {
  auto with_type = [&](auto zero) {
    using T = decltype(zero);
    switch (arity) {
      case 1: Op<1, T>::run(args...); return true;
      case 2: Op<2, T>::run(args...); return true;
      case 3: Op<3, T>::run(args...); return true;
      case 4: Op<4, T>::run(args...); return true;
      case 5: Op<5, T>::run(args...); return true;
      case 6: Op<6, T>::run(args...); return true;
      default: return false;
    }
  };
  if (dtype == 0) return with_type(0.0f);
  if (dtype == 1) return with_type(0.0);
  return false;
}

template <int N, typename T>
struct Forward {
  template <typename... Args>
  static void run(Args... args) { forward_parallel<N, T>(args...); }
};

template <int N, typename T>
struct Backward {
  template <typename... Args>
  static void run(Args... args) { backward_parallel<N, T>(args...); }
};

template <int N, typename T>
struct ChoiceGrads {
  template <typename... Args>
  static void run(Args... args) { choice_grads_parallel<N, T>(args...); }
};

}  // namespace

extern "C" {

// dtype: 0 = float32, 1 = float64; activations and corners share it. arity: 1..6. threads: at most this
// many. Return 0, or 1 for another dtype or arity.
int lgn_cpu_forward(int dtype, int arity, const void* x, int64_t batch, const int32_t* wiring, int64_t gates,
                    const void* corners, void* y, int threads) {
  return dispatch<Forward>(dtype, arity, x, batch, wiring, gates, corners, y, threads) ? 0 : 1;
}

// grad_x may be null (no input gradient wanted), and grad_corners (no corner gradient wanted).
int lgn_cpu_backward(int dtype, int arity, const void* grad_y, const void* x, int64_t batch, int64_t in_features,
                     const int32_t* wiring, int64_t gates, const void* corners, const int32_t* offsets,
                     const int32_t* entries, void* grad_x, void* grad_corners, int threads) {
  return dispatch<Backward>(dtype, arity, grad_y, x, batch, in_features, wiring, gates, corners, offsets, entries,
                            grad_x, grad_corners, threads)
             ? 0
             : 1;
}

// slots[s] = sum_c weight[s, c] * x[pool[s, c]]: x [in, batch], pool int32 [slots, candidates].
int lgn_cpu_mix_forward(int dtype, const void* x, int64_t batch, const int32_t* pool, const void* weight,
                        int64_t slots, int64_t candidates, void* out, int threads) {
  if (dtype == 0) {
    mix_forward_parallel<float>(x, batch, pool, weight, slots, candidates, out, threads);
  } else if (dtype == 1) {
    mix_forward_parallel<double>(x, batch, pool, weight, slots, candidates, out, threads);
  } else {
    return 1;
  }
  return 0;
}

// offsets/entries: who reads each feature (entries s * candidates + c, ascending). grad_x may be null.
int lgn_cpu_mix_backward(int dtype, const void* grad_slots, const void* x, int64_t batch, int64_t in_features,
                         const int32_t* pool, const void* weight, int64_t slots, int64_t candidates,
                         const int32_t* offsets, const int32_t* entries, void* grad_x, void* grad_weight,
                         int threads) {
  if (dtype == 0) {
    mix_backward_parallel<float>(grad_slots, x, batch, in_features, pool, weight, slots, candidates, offsets,
                                 entries, grad_x, grad_weight, threads);
  } else if (dtype == 1) {
    mix_backward_parallel<double>(grad_slots, x, batch, in_features, pool, weight, slots, candidates, offsets,
                                  entries, grad_x, grad_weight, threads);
  } else {
    return 1;
  }
  return 0;
}

// The wiring logits' gradient of a hard choice (see choice_grads): wiring int32 [gates, arity] (the chosen
// candidates), pool int32 [gates * arity, candidates], logits [gates * arity, candidates] in the dtype; and the
// corners' gradient unless grad_corners is null.
int lgn_cpu_choice_grads(int dtype, int arity, const void* grad_y, const void* x, int64_t batch,
                         const int32_t* wiring, int64_t gates, const void* corners, const int32_t* pool,
                         int64_t candidates, const void* logits, double tau, void* grad_logits, void* grad_corners,
                         int threads) {
  return dispatch<ChoiceGrads>(dtype, arity, grad_y, x, batch, wiring, gates, corners, pool, candidates, logits, tau,
                               grad_logits, grad_corners, threads)
             ? 0
             : 1;
}

// weights[s] = softmax(logits[s] / tau), rows of `cols` (a learned-wiring layer's candidate weights).
int lgn_cpu_softmax(int dtype, const void* logits, int64_t rows, int64_t cols, double tau, void* weights,
                    int threads) {
  if (dtype == 0) {
    softmax_parallel<float>(logits, rows, cols, tau, weights, threads);
  } else if (dtype == 1) {
    softmax_parallel<double>(logits, rows, cols, tau, weights, threads);
  } else {
    return 1;
  }
  return 0;
}

// grad_logits of lgn_cpu_softmax, from its weights and their gradient.
int lgn_cpu_softmax_backward(int dtype, const void* weights, const void* grad_weights, int64_t rows, int64_t cols,
                             double tau, void* grad_logits, int threads) {
  if (dtype == 0) {
    softmax_backward_parallel<float>(weights, grad_weights, rows, cols, tau, grad_logits, threads);
  } else if (dtype == 1) {
    softmax_backward_parallel<double>(weights, grad_weights, rows, cols, tau, grad_logits, threads);
  } else {
    return 1;
  }
  return 0;
}

// Who reads each feature (consumer lists, CSR): entries[offsets[f] .. offsets[f + 1]) are the ascending
// positions i with index[i] == f. A counting sort; returns 1 (and writes nothing useful) when an index is
// outside [0, in_features).
int lgn_cpu_consumers(const int32_t* index, int64_t n, int64_t in_features, int32_t* offsets, int32_t* entries) {
  std::fill(offsets, offsets + in_features + 1, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (index[i] < 0 || index[i] >= in_features) return 1;
    ++offsets[index[i] + 1];
  }
  for (int64_t f = 0; f < in_features; ++f) offsets[f + 1] += offsets[f];
  std::vector<int32_t> next(offsets, offsets + in_features);
  for (int64_t i = 0; i < n; ++i) entries[next[index[i]]++] = static_cast<int32_t>(i);
  return 0;
}

}  // extern "C"
