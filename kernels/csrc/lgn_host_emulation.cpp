// The kernels' per-thread code (lgn_gate_math.cuh) built for the host: each kernel's loop over thread
// indices run one index after another, the warp's shuffle-tree reduction done in the same order as on
// the GPU. It lets the tests check the CUDA code's arithmetic and indexing on machines without a GPU;
// it is not a fast CPU path. Same arguments as lgn_kernels.h, float and double activations only.
#include <cstdint>

#include "lgn_gate_math.cuh"

namespace {

using lgn::math::Acc;

template <int N, typename T>
void forward(const T* x, int64_t batch, const int32_t* wiring, int64_t gates, const typename Acc<T>::type* corners,
             T* y) {
  for (int64_t i = 0; i < gates * batch; ++i) {
    const int64_t g = i / batch, b = i - g * batch;
    if constexpr (N == 2) {
      y[i] = lgn::math::forward2_element(x, batch, wiring, corners, g, b);
    } else {
      y[i] = lgn::math::forward_element<N>(x, batch, wiring, corners, g, b);
    }
  }
}

// The GPU's __shfl_down_sync tree over 32 lanes: lane l adds lane l + offset (its own value when that
// lane is out of range) for offset = 16, 8, 4, 2, 1; lane 0 holds the result.
template <typename A>
A warp_tree(A* lanes) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    A next[32];
    for (int l = 0; l < 32; ++l) next[l] = lanes[l] + (l + offset < 32 ? lanes[l + offset] : lanes[l]);
    for (int l = 0; l < 32; ++l) lanes[l] = next[l];
  }
  return lanes[0];
}

template <int N, typename T>
void backward(const T* grad_y, const T* x, int64_t batch, int64_t in_features, const int32_t* wiring, int64_t gates,
              const typename Acc<T>::type* corners, const int32_t* offsets, const int32_t* entries, T* grad_x,
              typename Acc<T>::type* grad_corners) {
  using A = typename Acc<T>::type;
  for (int64_t i = 0; i < in_features * batch; ++i) {
    const int64_t f = i / batch, b = i - f * batch;
    if constexpr (N == 2) {
      grad_x[i] = lgn::math::input_grad2_element(grad_y, x, batch, wiring, corners, offsets, entries, f, b);
    } else {
      grad_x[i] = lgn::math::input_grad_element<N>(grad_y, x, batch, wiring, corners, offsets, entries, f, b);
    }
  }
  for (int64_t g = 0; g < gates; ++g) {
    A acc[32][1 << N];
    for (int lane = 0; lane < 32; ++lane) lgn::math::corner_grad_lane<N>(grad_y, x, batch, wiring, g, lane, 32, acc[lane]);
    for (int m = 0; m < (1 << N); ++m) {
      A lanes[32];
      for (int lane = 0; lane < 32; ++lane) lanes[lane] = acc[lane][m];
      grad_corners[g * (1 << N) + m] = warp_tree(lanes);
    }
  }
}

template <int N>
void packed(const uint64_t* bits, int64_t words, const int32_t* wiring, int64_t gates, const uint64_t* tables,
            uint64_t* out) {
  for (int64_t i = 0; i < gates * words; ++i) {
    const int64_t g = i / words, w = i - g * words;
    out[i] = lgn::math::packed_element<N>(bits, words, wiring, tables, g, w);
  }
}

// Calls f.template operator()<N>() for the runtime arity; 1 for an arity outside 1..6.
template <typename F>
int by_arity(int arity, F&& f) {
  switch (arity) {
    case 1: f.template operator()<1>(); return 0;
    case 2: f.template operator()<2>(); return 0;
    case 3: f.template operator()<3>(); return 0;
    case 4: f.template operator()<4>(); return 0;
    case 5: f.template operator()<5>(); return 0;
    case 6: f.template operator()<6>(); return 0;
    default: return 1;
  }
}

template <typename T>
int forward_t(const void* x, int64_t batch, const int32_t* wiring, int arity, int64_t gates, const void* corners,
              void* y) {
  using A = typename Acc<T>::type;
  return by_arity(arity, [&]<int N>() {
    forward<N>(static_cast<const T*>(x), batch, wiring, gates, static_cast<const A*>(corners), static_cast<T*>(y));
  });
}

template <typename T>
int backward_t(const void* grad_y, const void* x, int64_t batch, int64_t in_features, const int32_t* wiring,
               int arity, int64_t gates, const void* corners, const int32_t* offsets, const int32_t* entries,
               void* grad_x, void* grad_corners) {
  using A = typename Acc<T>::type;
  return by_arity(arity, [&]<int N>() {
    backward<N>(static_cast<const T*>(grad_y), static_cast<const T*>(x), batch, in_features, wiring, gates,
                static_cast<const A*>(corners), offsets, entries, static_cast<T*>(grad_x),
                static_cast<A*>(grad_corners));
  });
}

}  // namespace

extern "C" {

// dtype: 0 = float32, 1 = float64 (as lgn::DType). Return 0, or 1 for an unsupported dtype or arity.
int lgn_emulate_forward(int dtype, const void* x, int64_t batch, const int32_t* wiring, int arity, int64_t gates,
                        const void* corners, void* y) {
  if (dtype == 0) return forward_t<float>(x, batch, wiring, arity, gates, corners, y);
  if (dtype == 1) return forward_t<double>(x, batch, wiring, arity, gates, corners, y);
  return 1;
}

int lgn_emulate_backward(int dtype, const void* grad_y, const void* x, int64_t batch, int64_t in_features,
                         const int32_t* wiring, int arity, int64_t gates, const void* corners, const int32_t* offsets,
                         const int32_t* entries, void* grad_x, void* grad_corners) {
  if (dtype == 0)
    return backward_t<float>(grad_y, x, batch, in_features, wiring, arity, gates, corners, offsets, entries, grad_x,
                             grad_corners);
  if (dtype == 1)
    return backward_t<double>(grad_y, x, batch, in_features, wiring, arity, gates, corners, offsets, entries, grad_x,
                              grad_corners);
  return 1;
}

int lgn_emulate_op_corners(int dtype, const void* logits, const int32_t* tables, int64_t gates, void* corners) {
  for (int64_t g = 0; g < gates; ++g) {
    if (dtype == 0) {
      lgn::math::op_corners_element(static_cast<const float*>(logits), tables, g, static_cast<float*>(corners));
    } else if (dtype == 1) {
      lgn::math::op_corners_element(static_cast<const double*>(logits), tables, g, static_cast<double*>(corners));
    } else {
      return 1;
    }
  }
  return 0;
}

int lgn_emulate_op_corners_backward(int dtype, const void* grad_corners, const void* logits, const int32_t* tables,
                                    int64_t gates, void* grad_logits) {
  for (int64_t g = 0; g < gates; ++g) {
    if (dtype == 0) {
      lgn::math::op_corners_backward_element(static_cast<const float*>(grad_corners),
                                             static_cast<const float*>(logits), tables, g,
                                             static_cast<float*>(grad_logits));
    } else if (dtype == 1) {
      lgn::math::op_corners_backward_element(static_cast<const double*>(grad_corners),
                                             static_cast<const double*>(logits), tables, g,
                                             static_cast<double*>(grad_logits));
    } else {
      return 1;
    }
  }
  return 0;
}

int lgn_emulate_packed(const uint64_t* bits, int64_t words, const int32_t* wiring, int arity, int64_t gates,
                       const uint64_t* tables, uint64_t* out) {
  return by_arity(arity, [&]<int N>() { packed<N>(bits, words, wiring, gates, tables, out); });
}

}  // extern "C"
