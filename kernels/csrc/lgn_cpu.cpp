// The 2-input gate operators for the CPU: the same layout as the CUDA kernels (lgn_kernels.h), with
// every inner loop running over the contiguous samples of one gate or feature, so the compiler
// vectorises it. Single-threaded and deterministic (fixed summation order, vector width fixed by the
// build). Used by kernels.ops on CPU tensors; other arities and dtypes use the torch reference there.
#include <cstdint>

namespace {

template <typename T>
void forward2(const T* x, int64_t batch, const int32_t* wiring, int64_t gates, const T* corners, T* y) {
  for (int64_t g = 0; g < gates; ++g) {
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
void corner_grad2(const T* grad_y, const T* x, int64_t batch, const int32_t* wiring, int64_t gates, T* grad_corners) {
  for (int64_t g = 0; g < gates; ++g) {
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
void input_grad2(const T* grad_y, const T* x, int64_t batch, int64_t in_features, const int32_t* wiring,
                 const T* corners, const int32_t* offsets, const int32_t* entries, T* grad_x) {
  for (int64_t f = 0; f < in_features; ++f) {
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

}  // namespace

extern "C" {

// dtype: 0 = float32, 1 = float64; activations and corners share it. Return 0, or 1 for another dtype.
int lgn_cpu_forward2(int dtype, const void* x, int64_t batch, const int32_t* wiring, int64_t gates,
                     const void* corners, void* y) {
  if (dtype == 0) {
    forward2(static_cast<const float*>(x), batch, wiring, gates, static_cast<const float*>(corners),
             static_cast<float*>(y));
  } else if (dtype == 1) {
    forward2(static_cast<const double*>(x), batch, wiring, gates, static_cast<const double*>(corners),
             static_cast<double*>(y));
  } else {
    return 1;
  }
  return 0;
}

// grad_x may be null (no input gradient wanted).
int lgn_cpu_backward2(int dtype, const void* grad_y, const void* x, int64_t batch, int64_t in_features,
                      const int32_t* wiring, int64_t gates, const void* corners, const int32_t* offsets,
                      const int32_t* entries, void* grad_x, void* grad_corners) {
  if (dtype == 0) {
    const float* gy = static_cast<const float*>(grad_y);
    const float* xs = static_cast<const float*>(x);
    const float* cs = static_cast<const float*>(corners);
    corner_grad2(gy, xs, batch, wiring, gates, static_cast<float*>(grad_corners));
    if (grad_x) input_grad2(gy, xs, batch, in_features, wiring, cs, offsets, entries, static_cast<float*>(grad_x));
  } else if (dtype == 1) {
    const double* gy = static_cast<const double*>(grad_y);
    const double* xs = static_cast<const double*>(x);
    const double* cs = static_cast<const double*>(corners);
    corner_grad2(gy, xs, batch, wiring, gates, static_cast<double*>(grad_corners));
    if (grad_x) input_grad2(gy, xs, batch, in_features, wiring, cs, offsets, entries, static_cast<double*>(grad_x));
  } else {
    return 1;
  }
  return 0;
}

}  // extern "C"
