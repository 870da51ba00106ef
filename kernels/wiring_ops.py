"""The learned-wiring operators (``torch.library``, with autograd and fake implementations), beside the gate
operators of ``ops``: candidate mixtures (``lgn::mix_forward``, the soft estimator), a hard choice among
candidates (``lgn::chosen_gates``, straight-through: no mixtures are made) and the softmax of the wiring
logits (``lgn::wiring_softmax``). On CPU tensors in float32/float64 they run the vectorised C++ of
``csrc/lgn_cpu.cpp``; elsewhere the pure-torch reference below (also on CUDA: there is no CUDA kernel of
their own; ``chosen_gates`` runs the CUDA gate kernels).
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import host
from .cpu import (
    cpu_backward,
    cpu_choice_grads,
    cpu_mix_backward,
    cpu_mix_forward,
    cpu_softmax,
    cpu_softmax_backward,
    fast_cpu_applies,
)
from .ops import _save_inputs, gate_backward, gate_forward, slot_grads

# ---- candidate mixtures (learned wiring) -----------------------------------------------------------------


def reference_mix_forward(x: Tensor, pool: Tensor, weight: Tensor) -> Tensor:
    """``[slots, batch]``: slot s = sum_c weight[s, c] * x[pool[s, c]] (x feature-major ``[in, batch]``)."""
    return (x[pool] * weight.to(x.dtype).unsqueeze(-1)).sum(1)


def reference_mix_backward(grad_slots, x, pool, weight, need_input_grad: bool) -> tuple[Tensor, Tensor]:
    gathered = x[pool]  # [slots, candidates, batch]
    grad_weight = (gathered * grad_slots.unsqueeze(1)).sum(-1)
    grad_x = torch.zeros_like(x)
    if need_input_grad:
        contributions = weight.to(x.dtype).unsqueeze(-1) * grad_slots.unsqueeze(1)  # [slots, candidates, batch]
        grad_x.index_add_(0, pool.reshape(-1), contributions.reshape(-1, x.shape[1]))
    return grad_x, grad_weight.to(weight.dtype)


@torch.library.custom_op("lgn::mix_forward", mutates_args=())
def mix_forward(x: Tensor, pool: Tensor, weight: Tensor, consumer_offsets: Tensor, consumer_entries: Tensor) -> Tensor:
    """Candidate mixtures: ``x [in, batch]``, ``pool int32 [slots, candidates]``, ``weight [slots, candidates]``
    -> ``[slots, batch]``, slot s = sum_c weight[s, c] x[pool[s, c]]. Zero weights cost nothing on the CPU
    (a hard choice is a one-hot weight). The consumer lists (of the flattened pool) serve the backward."""
    if fast_cpu_applies(x, weight) and (library := host.cpu_library()) is not None:
        return cpu_mix_forward(library, x, pool, weight)
    return reference_mix_forward(x, pool, weight)


@mix_forward.register_fake
def _mix_forward_fake(x, pool, weight, consumer_offsets, consumer_entries):
    return x.new_empty((pool.shape[0], x.shape[1]))


@torch.library.custom_op("lgn::mix_backward", mutates_args=())
def mix_backward(
    grad_slots: Tensor,
    x: Tensor,
    pool: Tensor,
    weight: Tensor,
    consumer_offsets: Tensor,
    consumer_entries: Tensor,
    need_input_grad: bool,
) -> tuple[Tensor, Tensor]:
    """Gradients of ``mix_forward``: (d/dx ``[in, batch]``, zeros unless ``need_input_grad``; d/dweight)."""
    if fast_cpu_applies(x, weight) and (library := host.cpu_library()) is not None:
        return cpu_mix_backward(
            library, grad_slots, x, pool, weight, consumer_offsets, consumer_entries, need_input_grad
        )
    return reference_mix_backward(grad_slots, x, pool, weight, need_input_grad)


@mix_backward.register_fake
def _mix_backward_fake(grad_slots, x, pool, weight, consumer_offsets, consumer_entries, need_input_grad):
    return torch.empty_like(x), torch.empty_like(weight)


def _mix_backward_rule(ctx, grad_slots):
    x, pool, weight, offsets, entries = ctx.saved_tensors
    need_x = ctx.needs_input_grad[0]
    grad_x, grad_weight = mix_backward(grad_slots, x, pool, weight, offsets, entries, need_x)
    return (grad_x if need_x else None), None, grad_weight, None, None


mix_forward.register_autograd(_mix_backward_rule, setup_context=_save_inputs)


# ---- a hard choice among candidates (learned wiring, straight-through) -------------------------------------


def reference_choice_backward(grad_y, x, wiring, corners, pool, logits, temperature: float) -> Tensor:
    """The logits' gradient of ``chosen_gates``: the softmax mixture's at ``temperature``, through the choice."""
    against = (x[pool].to(corners.dtype) * slot_grads(grad_y, x, wiring, corners).unsqueeze(1)).sum(-1)
    p = torch.softmax(logits.to(against.dtype) / temperature, dim=-1)
    return (p * (against - (p * against).sum(-1, keepdim=True)) / temperature).to(logits.dtype)


@torch.library.custom_op("lgn::chosen_backward", mutates_args=())
def chosen_backward(
    grad_y: Tensor,
    x: Tensor,
    wiring: Tensor,
    corners: Tensor,
    consumer_offsets: Tensor,
    consumer_entries: Tensor,
    pool: Tensor,
    logits: Tensor,
    temperature: float,
    need_input_grad: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of ``chosen_gates``: (d/dx, zeros unless ``need_input_grad``; d/dcorners; d/dlogits). On the
    CPU the corners' gradient comes from the pass that makes the logits', over each gate's inputs once."""
    if fast_cpu_applies(x, corners) and (library := host.cpu_library()) is not None:
        grad_logits, grad_corners = cpu_choice_grads(
            library, grad_y, x, wiring, corners, pool, logits, temperature, with_corners=True
        )
        if not need_input_grad:
            return torch.zeros_like(x), grad_corners, grad_logits
        grad_x, _ = cpu_backward(
            library, grad_y, x, wiring, corners, consumer_offsets, consumer_entries, True, need_corners=False
        )
        return grad_x, grad_corners, grad_logits
    grad_x, grad_corners = gate_backward(
        grad_y, x, wiring, corners, consumer_offsets, consumer_entries, need_input_grad
    )
    return grad_x, grad_corners, reference_choice_backward(grad_y, x, wiring, corners, pool, logits, temperature)


@chosen_backward.register_fake
def _chosen_backward_fake(grad_y, x, wiring, corners, offsets, entries, pool, logits, temperature, need_input_grad):
    return torch.empty_like(x), torch.empty_like(corners), torch.empty_like(logits)


@torch.library.custom_op("lgn::chosen_gates", mutates_args=())
def chosen_gates(
    x: Tensor,
    wiring: Tensor,
    corners: Tensor,
    consumer_offsets: Tensor,
    consumer_entries: Tensor,
    pool: Tensor,
    logits: Tensor,
    temperature: float,
) -> Tensor:
    """Learned wiring with a hard choice: ``gate_forward`` over ``wiring``, each gate input the chosen
    candidate of its row of ``pool [gates * n, candidates]`` (the logits' argmax). The values are those of
    fixed wiring; the backward adds the logits' gradient (``chosen_backward``). No slot mixtures are made."""
    return gate_forward(x, wiring, corners, consumer_offsets, consumer_entries)


@chosen_gates.register_fake
def _chosen_gates_fake(x, wiring, corners, consumer_offsets, consumer_entries, pool, logits, temperature):
    return x.new_empty((wiring.shape[0], x.shape[1]))


def _chosen_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:7])
    ctx.temperature = inputs[7]


def _chosen_backward_rule(ctx, grad_y):
    x, wiring, corners, offsets, entries, pool, logits = ctx.saved_tensors
    need_x = ctx.needs_input_grad[0]
    grad_x, grad_corners, grad_logits = chosen_backward(
        grad_y, x, wiring, corners, offsets, entries, pool, logits, ctx.temperature, need_x
    )
    return (grad_x if need_x else None), None, grad_corners, None, None, None, grad_logits, None


chosen_gates.register_autograd(_chosen_backward_rule, setup_context=_chosen_setup)


# ---- the softmax of the wiring logits --------------------------------------------------------------------------
# torch's softmax over rows of a few candidates is slow on the CPU (1.8 ms for 16,000 rows of 8 on one core).


def reference_softmax_backward(weights: Tensor, grad_weights: Tensor, temperature: float) -> Tensor:
    return weights * (grad_weights - (weights * grad_weights).sum(-1, keepdim=True)) / temperature


@torch.library.custom_op("lgn::wiring_softmax", mutates_args=())
def wiring_softmax(logits: Tensor, temperature: float) -> Tensor:
    """``softmax(logits / temperature)`` over the last axis of ``[slots, candidates]``."""
    if fast_cpu_applies(logits, logits) and (library := host.cpu_library()) is not None:
        return cpu_softmax(library, logits, temperature)
    return torch.softmax(logits / temperature, dim=-1)


@wiring_softmax.register_fake
def _wiring_softmax_fake(logits, temperature):
    return torch.empty_like(logits)


@torch.library.custom_op("lgn::wiring_softmax_backward", mutates_args=())
def wiring_softmax_backward(weights: Tensor, grad_weights: Tensor, temperature: float) -> Tensor:
    if fast_cpu_applies(weights, grad_weights) and (library := host.cpu_library()) is not None:
        return cpu_softmax_backward(library, weights, grad_weights, temperature)
    return reference_softmax_backward(weights, grad_weights, temperature)


@wiring_softmax_backward.register_fake
def _wiring_softmax_backward_fake(weights, grad_weights, temperature):
    return torch.empty_like(weights)


def _softmax_setup(ctx, inputs, output):
    ctx.save_for_backward(output)
    ctx.temperature = inputs[1]


def _softmax_backward_rule(ctx, grad_weights):
    (weights,) = ctx.saved_tensors
    return wiring_softmax_backward(weights, grad_weights.contiguous(), ctx.temperature), None


wiring_softmax.register_autograd(_softmax_backward_rule, setup_context=_softmax_setup)
