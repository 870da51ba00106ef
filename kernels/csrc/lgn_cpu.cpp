// The gate operators for the CPU: the same layout as the CUDA kernels (lgn_kernels.h, feature-major
// activations [features, batch]), for gates of 1 to 6 inputs and for candidate mixtures (learned wiring).
// Every inner loop runs over the contiguous samples of one gate, slot or feature, in blocks whose
// intermediate tables stay in L1, so the compiler vectorises it. Threads take disjoint ranges of gates,
// slots or features, so the result does not depend on the thread count: deterministic (fixed summation
// order, vector width fixed by the build). Used by kernels.ops on CPU tensors; bfloat16 uses the torch
// reference there.
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

// Below this many (row x sample) elements a thread costs more than it saves.
constexpr int64_t kMinWorkPerThread = 1 << 16;
// Samples per block: a gate's intermediate tables (at most 32 x kBlock values) stay in L1.
constexpr int64_t kBlock = 64;

// Runs body(begin, end) over [0, rows) split into contiguous ranges, one per thread.
template <typename Body>
void parallel_rows(int64_t rows, int64_t row_work, int threads, Body body) {
  const int64_t useful = std::max<int64_t>(1, rows * row_work / kMinWorkPerThread);
  const int64_t count = std::min<int64_t>(std::max(threads, 1), std::min(useful, rows));
  if (count <= 1) {
    body(int64_t(0), rows);
    return;
  }
  const int64_t chunk = (rows + count - 1) / count;
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < count; ++t) {
    const int64_t begin = t * chunk, end = std::min(rows, begin + chunk);
    if (begin < end) pool.emplace_back(body, begin, end);
  }
  body(int64_t(0), std::min(rows, chunk));
  for (auto& thread : pool) thread.join();
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
  if (N == 2 && grad_x != nullptr && reads_own_inputs(wiring, gates, N, in_features)) {
    parallel_rows(gates, batch << N, threads, [=](int64_t first, int64_t last) {
      grads2<true, T>(gy, xs, batch, wiring, static_cast<const T*>(corners), first, last,
                      static_cast<T*>(grad_corners), static_cast<T*>(grad_x));
    });
    return;
  }
  parallel_rows(gates, batch << N, threads, [=](int64_t first, int64_t last) {
    corner_grads<N>(gy, xs, batch, wiring, first, last, static_cast<T*>(grad_corners));
  });
  if (grad_x == nullptr) return;
  parallel_rows(in_features, N * batch << N, threads, [=](int64_t first, int64_t last) {
    input_grads<N>(gy, xs, batch, first, last, wiring, static_cast<const T*>(corners), offsets, entries,
                   static_cast<T*>(grad_x));
  });
}

// ---- candidate mixtures (learned wiring) --------------------------------------------------------------
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
  for (int64_t s = first; s < last; ++s) {
    const T* gs = grad_slots + s * batch;
    for (int64_t c = 0; c < candidates; ++c) {
      const T* in = x + static_cast<int64_t>(pool[s * candidates + c]) * batch;
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t b = 0; b < batch; ++b) sum += gs[b] * in[b];
      grad_weight[s * candidates + c] = sum;
    }
  }
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

}  // namespace

extern "C" {

// dtype: 0 = float32, 1 = float64; activations and corners share it. arity: 1..6. threads: at most this
// many. Return 0, or 1 for another dtype or arity.
int lgn_cpu_forward(int dtype, int arity, const void* x, int64_t batch, const int32_t* wiring, int64_t gates,
                    const void* corners, void* y, int threads) {
  return dispatch<Forward>(dtype, arity, x, batch, wiring, gates, corners, y, threads) ? 0 : 1;
}

// grad_x may be null (no input gradient wanted).
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

}  // extern "C"
