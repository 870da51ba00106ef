// Launchers of the logic-gate CUDA kernels: raw pointers and a stream, no PyTorch types, so that this
// header and lgn_kernels.cu compile with nvcc alone (`python -m kernels --check`) and the binding
// compiles with a host compiler alone.
//
// Layout contract (all arrays contiguous):
//   activations   x[in_features][batch]     feature-major: the samples of one feature are adjacent, so
//                                            threads that take consecutive samples of one gate coalesce
//   wiring        int32 [gates][arity]       fan-in k of gate g reads feature wiring[g][k]
//   corners       acc   [gates][2^arity]     corner m is the input assignment sum_k x_k 2^k
//   consumers     CSR over input features:   entries[offsets[f] .. offsets[f+1]) = g * arity + k for every
//                                            fan-in k of gate g that reads f, ascending (a gate that reads
//                                            f twice appears twice)
//   packed bits   uint64 [features][words]   bit j of word w is sample 64 w + j
// acc is double when the activations are double, float otherwise (float and bfloat16 activations).
// Every launcher returns 0 or a CUDA error code (see lgn_error_string) and never synchronises.
#pragma once
#include <cstdint>

namespace lgn {

enum class DType : int { f32 = 0, f64 = 1, bf16 = 2 };

const char* error_string(int code);

int gate_forward(DType dtype, const void* x, int64_t batch, const int32_t* wiring, int arity, int64_t gates,
                 const void* corners, void* y, void* stream);

int gate_backward(DType dtype, const void* grad_y, const void* x, int64_t batch, int64_t in_features,
                  const int32_t* wiring, int arity, int64_t gates, const void* corners,
                  const int32_t* consumer_offsets, const int32_t* consumer_entries, void* grad_x,
                  void* grad_corners, void* stream);

// OP: 16 logits per gate -> 4 expected corner values; tables[i] = truth table of gate id i (bit m = corner m).
int op_corners_forward(DType dtype, const void* logits, const int32_t* tables, int64_t gates, void* corners,
                       void* stream);
int op_corners_backward(DType dtype, const void* grad_corners, const void* logits, const int32_t* tables,
                        int64_t gates, void* grad_logits, void* stream);

// Discretized layer on packed bits; tables[g] bit m = gate g's value at corner m.
int packed_forward(const uint64_t* bits, int64_t words, const int32_t* wiring, int arity, int64_t gates,
                   const uint64_t* tables, uint64_t* out, void* stream);

}  // namespace lgn
