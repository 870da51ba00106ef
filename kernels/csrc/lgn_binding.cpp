// PyTorch binding of the gate kernels: checks every tensor, allocates outputs, launches on the stream
// the caller passes (PyTorch's current stream, as an integer handle), and never synchronises.
// Includes no CUDA header, so it compiles with the host compiler alone.
#include <torch/extension.h>

#include <tuple>

#include "lgn_kernels.h"

namespace {

lgn::DType activation_dtype(const at::Tensor& x) {
  switch (x.scalar_type()) {
    case at::kFloat: return lgn::DType::f32;
    case at::kDouble: return lgn::DType::f64;
    case at::kBFloat16: return lgn::DType::bf16;
    default: TORCH_CHECK(false, "lgn kernels take float32, float64 or bfloat16 activations, got ", x.scalar_type());
  }
}

// Corner values (and OP logits) are float64 with float64 activations, float32 otherwise.
at::ScalarType accumulator_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

void check_cuda(const at::Tensor& t, const char* name, const at::Tensor& like) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(t.device() == like.device(), name, " is on ", t.device(), " but the activations are on ", like.device());
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

void check_wiring(const at::Tensor& wiring, const at::Tensor& x) {
  check_cuda(wiring, "wiring", x);
  TORCH_CHECK(wiring.scalar_type() == at::kInt, "wiring must be int32, got ", wiring.scalar_type());
  TORCH_CHECK(wiring.dim() == 2 && wiring.size(1) >= 1 && wiring.size(1) <= 6,
              "wiring must be [gates, arity] with arity 1..6, got ", wiring.sizes());
  TORCH_CHECK(wiring.size(0) * wiring.size(1) < (int64_t(1) << 31), "too many gate inputs for int32 consumer lists");
}

void check_corners(const at::Tensor& corners, const at::Tensor& wiring, const at::Tensor& x) {
  check_cuda(corners, "corners", x);
  TORCH_CHECK(corners.scalar_type() == accumulator_type(x), "corners must be ", accumulator_type(x), " for ",
              x.scalar_type(), " activations, got ", corners.scalar_type());
  TORCH_CHECK(corners.dim() == 2 && corners.size(0) == wiring.size(0) && corners.size(1) == (1 << wiring.size(1)),
              "corners must be [gates, 2^arity] = [", wiring.size(0), ", ", (1 << wiring.size(1)), "], got ",
              corners.sizes());
}

void raise_on(int code, const char* what) {
  TORCH_CHECK(code == 0, "lgn CUDA kernel ", what, " failed to launch: ", lgn::error_string(code));
}

void* as_stream(int64_t stream) { return reinterpret_cast<void*>(static_cast<intptr_t>(stream)); }

at::Tensor gate_forward(const at::Tensor& x, const at::Tensor& wiring, const at::Tensor& corners, int64_t stream) {
  check_cuda(x, "x", x);
  TORCH_CHECK(x.dim() == 2, "x must be [in_features, batch], got ", x.sizes());
  check_wiring(wiring, x);
  check_corners(corners, wiring, x);
  // Index ranges (0 <= wiring < in_features) are checked once per wiring in kernels.ops, not per launch.
  auto y = at::empty({wiring.size(0), x.size(1)}, x.options());
  raise_on(lgn::gate_forward(activation_dtype(x), x.data_ptr(), x.size(1), wiring.data_ptr<int32_t>(),
                             static_cast<int>(wiring.size(1)), wiring.size(0), corners.data_ptr(), y.data_ptr(),
                             as_stream(stream)),
           "gate_forward");
  return y;
}

std::tuple<at::Tensor, at::Tensor> gate_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                 const at::Tensor& wiring, const at::Tensor& corners,
                                                 const at::Tensor& offsets, const at::Tensor& entries,
                                                 bool need_input_grad, int64_t stream) {
  check_cuda(x, "x", x);
  TORCH_CHECK(x.dim() == 2, "x must be [in_features, batch], got ", x.sizes());
  check_wiring(wiring, x);
  check_corners(corners, wiring, x);
  check_cuda(grad_y, "grad_y", x);
  TORCH_CHECK(grad_y.scalar_type() == x.scalar_type(), "grad_y must have the activations' dtype");
  TORCH_CHECK(grad_y.dim() == 2 && grad_y.size(0) == wiring.size(0) && grad_y.size(1) == x.size(1),
              "grad_y must be [gates, batch], got ", grad_y.sizes());
  check_cuda(offsets, "consumer_offsets", x);
  check_cuda(entries, "consumer_entries", x);
  TORCH_CHECK(offsets.scalar_type() == at::kInt && entries.scalar_type() == at::kInt,
              "consumer lists must be int32");
  TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) == x.size(0) + 1,
              "consumer_offsets must have in_features + 1 entries");
  TORCH_CHECK(entries.dim() == 1 && entries.size(0) == wiring.numel(),
              "consumer_entries must have one entry per gate input");
  auto grad_corners = at::empty(corners.sizes(), corners.options());
  at::Tensor grad_x = need_input_grad ? at::empty(x.sizes(), x.options()) : at::Tensor();
  raise_on(lgn::gate_backward(activation_dtype(x), grad_y.data_ptr(), x.data_ptr(), x.size(1), x.size(0),
                              wiring.data_ptr<int32_t>(), static_cast<int>(wiring.size(1)), wiring.size(0),
                              corners.data_ptr(), offsets.data_ptr<int32_t>(), entries.data_ptr<int32_t>(),
                              need_input_grad ? grad_x.data_ptr() : nullptr, grad_corners.data_ptr(),
                              as_stream(stream)),
           "gate_backward");
  if (!need_input_grad) grad_x = at::zeros(x.sizes(), x.options());
  return {grad_x, grad_corners};
}

void check_op(const at::Tensor& logits, const at::Tensor& tables) {
  TORCH_CHECK(logits.is_cuda() && logits.is_contiguous(), "logits must be a contiguous CUDA tensor");
  TORCH_CHECK(logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kDouble,
              "OP logits must be float32 or float64, got ", logits.scalar_type());
  TORCH_CHECK(logits.dim() == 2 && logits.size(1) == 16, "OP logits must be [gates, 16], got ", logits.sizes());
  check_cuda(tables, "tables", logits);
  TORCH_CHECK(tables.scalar_type() == at::kInt && tables.numel() == 16, "tables must be 16 int32 truth tables");
}

at::Tensor op_corners(const at::Tensor& logits, const at::Tensor& tables, int64_t stream) {
  check_op(logits, tables);
  auto corners = at::empty({logits.size(0), 4}, logits.options());
  raise_on(lgn::op_corners_forward(logits.scalar_type() == at::kDouble ? lgn::DType::f64 : lgn::DType::f32,
                                   logits.data_ptr(), tables.data_ptr<int32_t>(), logits.size(0),
                                   corners.data_ptr(), as_stream(stream)),
           "op_corners");
  return corners;
}

at::Tensor op_corners_backward(const at::Tensor& grad_corners, const at::Tensor& logits, const at::Tensor& tables,
                               int64_t stream) {
  check_op(logits, tables);
  check_cuda(grad_corners, "grad_corners", logits);
  TORCH_CHECK(grad_corners.scalar_type() == logits.scalar_type() && grad_corners.dim() == 2 &&
                  grad_corners.size(0) == logits.size(0) && grad_corners.size(1) == 4,
              "grad_corners must be [gates, 4] in the logits' dtype");
  auto grad_logits = at::empty(logits.sizes(), logits.options());
  raise_on(lgn::op_corners_backward(logits.scalar_type() == at::kDouble ? lgn::DType::f64 : lgn::DType::f32,
                                    grad_corners.data_ptr(), logits.data_ptr(), tables.data_ptr<int32_t>(),
                                    logits.size(0), grad_logits.data_ptr(), as_stream(stream)),
           "op_corners_backward");
  return grad_logits;
}

at::Tensor packed_layer(const at::Tensor& bits, const at::Tensor& wiring, const at::Tensor& tables, int64_t stream) {
  check_cuda(bits, "bits", bits);
  TORCH_CHECK(bits.scalar_type() == at::kLong && bits.dim() == 2, "packed bits must be int64 [features, words]");
  check_wiring(wiring, bits);
  check_cuda(tables, "tables", bits);
  TORCH_CHECK(tables.scalar_type() == at::kLong && tables.dim() == 1 && tables.size(0) == wiring.size(0),
              "tables must be int64 [gates]");
  auto out = at::empty({wiring.size(0), bits.size(1)}, bits.options());
  raise_on(lgn::packed_forward(reinterpret_cast<const uint64_t*>(bits.data_ptr<int64_t>()), bits.size(1),
                               wiring.data_ptr<int32_t>(), static_cast<int>(wiring.size(1)), wiring.size(0),
                               reinterpret_cast<const uint64_t*>(tables.data_ptr<int64_t>()),
                               reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>()), as_stream(stream)),
           "packed_layer");
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "lgn logic gate CUDA kernels (use through kernels.ops, which registers them as torch.library ops)";
  m.def("gate_forward", &gate_forward);
  m.def("gate_backward", &gate_backward);
  m.def("op_corners", &op_corners);
  m.def("op_corners_backward", &op_corners_backward);
  m.def("packed_layer", &packed_layer);
}
