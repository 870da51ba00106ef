"""The gate kernels as PyTorch custom operators (``torch.library``), with autograd and fake (meta)
implementations, so they compose with autograd and ``torch.compile``.

Every operator has a CUDA implementation (``csrc/lgn_kernels.cu``, registered for the ``cuda`` device)
and one for every other device: for 2-input gates in float32/float64 on the CPU, vectorised C++
(``csrc/lgn_cpu.cpp``, built on first use with the system compiler); otherwise the pure-torch reference
below, explicit formulas checked against the autograd math of ``training.functional`` (the oracle).

Activations are feature-major, ``[features, batch]`` (see ``csrc/lgn_kernels.h``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import functional as F
from . import host
from .build import load_extension
from .cpu import cpu_backward, cpu_forward, fast_cpu_applies

# ---- the reference (any device) -------------------------------------------------------------------


def _inputs(x: Tensor, wiring: Tensor) -> list[Tensor]:
    """What each fan-in slot reads: n tensors ``[gates, batch]``."""
    return [torch.index_select(x, 0, wiring[:, k]) for k in range(wiring.shape[1])]


def reference_forward(x: Tensor, wiring: Tensor, corners: Tensor) -> Tensor:
    inputs = [t.to(corners.dtype).t() for t in _inputs(x, wiring)]
    return F.interpolate(corners, inputs).t().to(x.dtype).contiguous()


def corner_basis(inputs: list[Tensor]) -> Tensor:
    """``[gates, batch, 2^n]``: prod_k (x_k if bit k of m else 1 - x_k) for every corner m."""
    basis = torch.ones_like(inputs[0]).unsqueeze(-1)
    for x in inputs:  # new index = bit * 2^k + old index
        x = x.unsqueeze(-1)
        basis = torch.cat([basis * (1 - x), basis * x], dim=-1)
    return basis


def corner_differences(corners: Tensor, k: int) -> Tensor:
    """``[gates, 2^(n-1)]``: corner (bit k set) minus corner (bit k clear), ordered by the other bits."""
    m = torch.arange(corners.shape[1], device=corners.device)
    low = m[((m >> k) & 1) == 0]
    return corners[:, low | (1 << k)] - corners[:, low]


def slot_grads(grad_y: Tensor, x: Tensor, wiring: Tensor, corners: Tensor) -> Tensor:
    """``[gates * n, batch]``: the loss's gradient at each gate input (row g * n + k: input k of gate g)."""
    inputs = [t.to(corners.dtype) for t in _inputs(x, wiring)]
    gy = grad_y.to(corners.dtype)
    per_input = []
    for k in range(wiring.shape[1]):
        others = [t.t() for j, t in enumerate(inputs) if j != k]
        difference = corner_differences(corners, k)
        per_input.append(gy * (F.interpolate(difference, others).t() if others else difference.expand_as(gy)))
    return torch.stack(per_input, 1).reshape(-1, x.shape[1])


def reference_backward(
    grad_y: Tensor, x: Tensor, wiring: Tensor, corners: Tensor, need_input_grad: bool
) -> tuple[Tensor, Tensor]:
    inputs = [t.to(corners.dtype) for t in _inputs(x, wiring)]
    grad_corners = (grad_y.to(corners.dtype).unsqueeze(-1) * corner_basis(inputs)).sum(1)
    grad_x = torch.zeros(x.shape, dtype=corners.dtype, device=x.device)
    if need_input_grad:
        grad_x.index_add_(0, wiring.reshape(-1), slot_grads(grad_y, x, wiring, corners))
    return grad_x.to(x.dtype), grad_corners


def op_table_matrix(tables: Tensor, dtype) -> Tensor:
    """``[16, 4]`` 0/1: gate i's value at corner m, from the 16 truth tables."""
    corners = torch.arange(4, device=tables.device)
    return ((tables.to(torch.int64)[:, None] >> corners) & 1).to(dtype)


def reference_packed_layer(bits: Tensor, wiring: Tensor, tables: Tensor) -> Tensor:
    arity = wiring.shape[1]
    inputs = _inputs(bits, wiring)  # [gates, words] int64
    corner_words = [-((tables >> m) & 1)[:, None] for m in range(1 << arity)]  # all ones or all zeros
    values = [torch.broadcast_to(w, inputs[0].shape) for w in corner_words]
    for x in inputs:
        values = [(values[2 * j] & ~x) | (values[2 * j + 1] & x) for j in range(len(values) // 2)]
    return values[0].contiguous()


# ---- the operators --------------------------------------------------------------------------------


def _stream(device: torch.device) -> int:
    return torch.cuda.current_stream(device).cuda_stream


@torch.library.custom_op("lgn::gate_forward", mutates_args=())
def gate_forward(
    x: Tensor, wiring: Tensor, corners: Tensor, consumer_offsets: Tensor, consumer_entries: Tensor
) -> Tensor:
    """Relaxed gates: ``x [in, batch]``, ``wiring int32 [gates, n]``, ``corners [gates, 2^n]`` ->
    ``[gates, batch]``. The consumer lists (see ``consumer_lists``) are used by the backward only."""
    if fast_cpu_applies(x, corners) and (library := host.cpu_library()) is not None:
        return cpu_forward(library, x, wiring, corners)
    return reference_forward(x, wiring, corners)


@gate_forward.register_kernel("cuda")
def _gate_forward_cuda(x, wiring, corners, consumer_offsets, consumer_entries):
    with torch.cuda.device(x.device):
        return load_extension().gate_forward(x.contiguous(), wiring, corners.contiguous(), _stream(x.device))


@gate_forward.register_fake
def _gate_forward_fake(x, wiring, corners, consumer_offsets, consumer_entries):
    return x.new_empty((wiring.shape[0], x.shape[1]))


@torch.library.custom_op("lgn::gate_backward", mutates_args=())
def gate_backward(
    grad_y: Tensor,
    x: Tensor,
    wiring: Tensor,
    corners: Tensor,
    consumer_offsets: Tensor,
    consumer_entries: Tensor,
    need_input_grad: bool,
) -> tuple[Tensor, Tensor]:
    """Gradients of ``gate_forward``: (d/dx ``[in, batch]``, zeros unless ``need_input_grad``;
    d/dcorners ``[gates, 2^n]``)."""
    if fast_cpu_applies(x, corners) and (library := host.cpu_library()) is not None:
        return cpu_backward(library, grad_y, x, wiring, corners, consumer_offsets, consumer_entries, need_input_grad)
    return reference_backward(grad_y, x, wiring, corners, need_input_grad)


@gate_backward.register_kernel("cuda")
def _gate_backward_cuda(grad_y, x, wiring, corners, consumer_offsets, consumer_entries, need_input_grad):
    with torch.cuda.device(x.device):
        return load_extension().gate_backward(
            grad_y.contiguous(),
            x.contiguous(),
            wiring,
            corners.contiguous(),
            consumer_offsets,
            consumer_entries,
            need_input_grad,
            _stream(x.device),
        )


@gate_backward.register_fake
def _gate_backward_fake(grad_y, x, wiring, corners, consumer_offsets, consumer_entries, need_input_grad):
    return torch.empty_like(x), torch.empty_like(corners)


def _save_inputs(ctx, inputs, output):
    """Autograd context of both operators: every input is needed by their backward."""
    ctx.save_for_backward(*inputs)


def _gate_backward_rule(ctx, grad_y):
    x, wiring, corners, offsets, entries = ctx.saved_tensors
    need_x = ctx.needs_input_grad[0]
    grad_x, grad_corners = gate_backward(grad_y, x, wiring, corners, offsets, entries, need_x)
    return (grad_x if need_x else None), None, grad_corners, None, None


gate_forward.register_autograd(_gate_backward_rule, setup_context=_save_inputs)


@torch.library.custom_op("lgn::op_corners", mutates_args=())
def op_corners(logits: Tensor, tables: Tensor) -> Tensor:
    """OP: ``[gates, 16]`` logits -> ``[gates, 4]`` expected corner values (softmax-weighted tables)."""
    return torch.softmax(logits, dim=-1) @ op_table_matrix(tables, logits.dtype)


@op_corners.register_kernel("cuda")
def _op_corners_cuda(logits, tables):
    with torch.cuda.device(logits.device):
        return load_extension().op_corners(logits.contiguous(), tables, _stream(logits.device))


@op_corners.register_fake
def _op_corners_fake(logits, tables):
    return logits.new_empty((logits.shape[0], 4))


@torch.library.custom_op("lgn::op_corners_backward", mutates_args=())
def op_corners_backward(grad_corners: Tensor, logits: Tensor, tables: Tensor) -> Tensor:
    """d/dlogits of ``op_corners``: p_i (s_i - sum_j p_j s_j) with s = grad_corners @ T^T."""
    p = torch.softmax(logits, dim=-1)
    s = grad_corners @ op_table_matrix(tables, logits.dtype).t()
    return p * (s - (p * s).sum(-1, keepdim=True))


@op_corners_backward.register_kernel("cuda")
def _op_corners_backward_cuda(grad_corners, logits, tables):
    with torch.cuda.device(logits.device):
        return load_extension().op_corners_backward(
            grad_corners.contiguous(), logits.contiguous(), tables, _stream(logits.device)
        )


@op_corners_backward.register_fake
def _op_corners_backward_fake(grad_corners, logits, tables):
    return torch.empty_like(logits)


def _op_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _op_backward_rule(ctx, grad_corners):
    logits, tables = ctx.saved_tensors
    return op_corners_backward(grad_corners, logits, tables), None


op_corners.register_autograd(_op_backward_rule, setup_context=_op_setup)


@torch.library.custom_op("lgn::packed_layer", mutates_args=())
def packed_layer(bits: Tensor, wiring: Tensor, tables: Tensor) -> Tensor:
    """Discretized layer on packed bits: ``bits int64 [in, words]`` (bit j of word w = sample 64 w + j),
    ``tables int64 [gates]`` (bit m = value at corner m) -> ``int64 [gates, words]``."""
    return reference_packed_layer(bits, wiring, tables)


@packed_layer.register_kernel("cuda")
def _packed_layer_cuda(bits, wiring, tables):
    with torch.cuda.device(bits.device):
        return load_extension().packed_layer(bits.contiguous(), wiring, tables.contiguous(), _stream(bits.device))


@packed_layer.register_fake
def _packed_layer_fake(bits, wiring, tables):
    return bits.new_empty((wiring.shape[0], bits.shape[1]))
