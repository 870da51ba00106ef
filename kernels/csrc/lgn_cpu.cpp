// The 2-input gate operators for the CPU: the same layout as the CUDA kernels (lgn_kernels.h), with
// every inner loop running over the contiguous samples of one gate or feature, so the compiler
// vectorises it. Threads take disjoint ranges of gates (or features), so the result does not depend on
// the thread count: deterministic (fixed summation order, vector width fixed by the build). Used by
// kernels.ops on CPU tensors; other arities and dtypes use the torch reference there.
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

// Below this many (row x sample) elements a thread costs more than it saves.
constexpr int64_t kMinWorkPerThread = 1 << 16;

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

template <typename T>
void forward2(const T* x, int64_t batch, const int32_t* wiring, int64_t first, int64_t last, const T* corners,
              T* y) {
  for (int64_t g = first; g < last; ++g) {
    const T* a = x + static_cast<int64_t>(wiring[2 * g]) * batch;
    const T* c = x + static_cast<int64_t>(wiring[2 * g + 1]) * batch;
    const T* w = corners + 4 * g;
    // g(a, c) = w0 + (w1 - w0) a + (w2 - w0) c + (w0 - w1 - w2 + w3) a c
    const T k0 = w[0], ka = w[1] - w[0], kc = w[2] - w[0], kac = w[0] - w[1] - w[2] + w[3];
    T* out = y + g * batch;
#pragma omp simd
    for (int64_t b = 0; b < batch; ++b) out[b] = k0 + ka * a[b] + (kc + kac * a[b]) * c[b];
  }
}

template <typename T>
void corner_grad2(const T* grad_y, const T* x, int64_t batch, const int32_t* wiring, int64_t first, int64_t last,
                  T* grad_corners) {
  for (int64_t g = first; g < last; ++g) {
    const T* a = x + static_cast<int64_t>(wiring[2 * g]) * batch;
    const T* c = x + static_cast<int64_t>(wiring[2 * g + 1]) * batch;
    const T* gy = grad_y + g * batch;
    // corner m = a + 2 c: products (1-a)(1-c), a(1-c), (1-a)c, ac, each weighted by the upstream gradient
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int64_t b = 0; b < batch; ++b) {
      const T ac = a[b] * c[b];
      s0 += gy[b] * (T(1) - a[b] - c[b] + ac);
      s1 += gy[b] * (a[b] - ac);
      s2 += gy[b] * (c[b] - ac);
      s3 += gy[b] * ac;
    }
    T* out = grad_corners + 4 * g;
    out[0] = s0;
    out[1] = s1;
    out[2] = s2;
    out[3] = s3;
  }
}

// Gathered over each feature's consumers (ascending), like the CUDA kernel: a gate reading the
// feature on both fan-ins adds both derivatives.
template <typename T>
void input_grad2(const T* grad_y, const T* x, int64_t batch, int64_t first, int64_t last, const int32_t* wiring,
                 const T* corners, const int32_t* offsets, const int32_t* entries, T* grad_x) {
  for (int64_t f = first; f < last; ++f) {
    T* out = grad_x + f * batch;
    for (int64_t b = 0; b < batch; ++b) out[b] = 0;
    for (int32_t e = offsets[f]; e < offsets[f + 1]; ++e) {
      const int64_t g = entries[e] >> 1;
      const int slot = entries[e] & 1;
      const T* w = corners + 4 * g;
      const T* other = x + static_cast<int64_t>(wiring[2 * g + (slot ^ 1)]) * batch;
      const T slope = slot ? w[2] - w[0] : w[1] - w[0];
      const T cross = w[0] - w[1] - w[2] + w[3];
      const T* gy = grad_y + g * batch;
#pragma omp simd
      for (int64_t b = 0; b < batch; ++b) out[b] += gy[b] * (slope + cross * other[b]);
    }
  }
}

template <typename T>
void forward2_parallel(const void* x, int64_t batch, const int32_t* wiring, int64_t gates, const void* corners,
                       void* y, int threads) {
  parallel_rows(gates, batch, threads, [=](int64_t first, int64_t last) {
    forward2(static_cast<const T*>(x), batch, wiring, first, last, static_cast<const T*>(corners),
             static_cast<T*>(y));
  });
}

template <typename T>
void backward2_parallel(const void* grad_y, const void* x, int64_t batch, int64_t in_features, const int32_t* wiring,
                        int64_t gates, const void* corners, const int32_t* offsets, const int32_t* entries,
                        void* grad_x, void* grad_corners, int threads) {
  const T* gy = static_cast<const T*>(grad_y);
  const T* xs = static_cast<const T*>(x);
  parallel_rows(gates, batch, threads, [=](int64_t first, int64_t last) {
    corner_grad2(gy, xs, batch, wiring, first, last, static_cast<T*>(grad_corners));
  });
  if (grad_x == nullptr) return;
  parallel_rows(in_features, 2 * batch, threads, [=](int64_t first, int64_t last) {
    input_grad2(gy, xs, batch, first, last, wiring, static_cast<const T*>(corners), offsets, entries,
                static_cast<T*>(grad_x));
  });
}

}  // namespace

extern "C" {

// dtype: 0 = float32, 1 = float64; activations and corners share it. threads: at most this many.
// Return 0, or 1 for another dtype.
int lgn_cpu_forward2(int dtype, const void* x, int64_t batch, const int32_t* wiring, int64_t gates,
                     const void* corners, void* y, int threads) {
  if (dtype == 0) {
    forward2_parallel<float>(x, batch, wiring, gates, corners, y, threads);
  } else if (dtype == 1) {
    forward2_parallel<double>(x, batch, wiring, gates, corners, y, threads);
  } else {
    return 1;
  }
  return 0;
}

// grad_x may be null (no input gradient wanted).
int lgn_cpu_backward2(int dtype, const void* grad_y, const void* x, int64_t batch, int64_t in_features,
                      const int32_t* wiring, int64_t gates, const void* corners, const int32_t* offsets,
                      const int32_t* entries, void* grad_x, void* grad_corners, int threads) {
  if (dtype == 0) {
    backward2_parallel<float>(grad_y, x, batch, in_features, wiring, gates, corners, offsets, entries, grad_x,
                              grad_corners, threads);
  } else if (dtype == 1) {
    backward2_parallel<double>(grad_y, x, batch, in_features, wiring, gates, corners, offsets, entries, grad_x,
                               grad_corners, threads);
  } else {
    return 1;
  }
  return 0;
}

}  // extern "C"
