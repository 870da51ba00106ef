"""CUDA kernels for logic gate layers, registered as PyTorch custom operators.

- ``ops``: the operators ``lgn::gate_forward`` (relaxed gates, OP and IWP, arity 1..6, with autograd),
  ``lgn::op_corners`` (OP's softmax expectation per corner, with autograd) and ``lgn::packed_layer``
  (the discretized layer on bit-packed samples). CUDA tensors run the kernels in ``csrc/``; every other
  device runs the pure-torch reference.
- ``wiring_ops``: the learned-wiring operators ``lgn::mix_forward`` (candidate mixtures, the soft
  estimator), ``lgn::chosen_gates`` (a hard choice among candidates: the gates read the chosen inputs and the
  wiring logits get the straight-through gradient, no mixtures made) and ``lgn::wiring_softmax``.
- ``build``: compiles the kernels on first use; ``python -m lgn.kernels --check`` compiles them with nvcc
  for sm_80 and sm_90 without a GPU.
- ``emulation``: the kernels' per-thread code (``csrc/lgn_gate_math.cuh``) built for the host and run
  over every thread index, so their arithmetic and indexing are tested without a GPU.

Layers choose with ``implementation``: ``"auto"`` (the operators on a GPU, and on the CPU for float32 and
float64 activations, where vectorised C++ runs them for every arity and for candidate mixtures;
``functional`` otherwise), ``"torch"`` (always ``functional``), ``"kernels"`` (always these operators).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

IMPLEMENTATIONS = ("auto", "torch", "kernels")


def check_implementation(name: str) -> str:
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {name!r}")
    return name


def use_kernels(implementation: str, tensor: Tensor) -> bool:
    """Whether a layer with this ``implementation`` setting runs the operators on ``tensor``: always for
    ``"kernels"``; for ``"auto"`` on a GPU, and on the CPU where the fast C++ operators apply (float32 and
    float64, any arity, when they could be built)."""
    if implementation != "auto":
        return implementation == "kernels"
    if tensor.is_cuda:
        return True
    from . import host

    return tensor.dtype in (torch.float32, torch.float64) and host.cpu_library() is not None


def consumer_lists(wiring: Tensor, in_features: int) -> tuple[Tensor, Tensor]:
    """CSR of who reads each input feature: ``offsets int32 [in + 1]``, ``entries int32 [gates * n]``
    with ``entries[offsets[f]:offsets[f + 1]]`` = ascending ``g * n + k`` for every fan-in k of gate g
    reading f. A gate reading f on two fan-ins appears twice, so both derivatives are summed."""
    if wiring.device.type == "cpu" and wiring.numel() < 2**31:
        from .cpu import cpu_consumer_lists
        from .host import cpu_library

        if (library := cpu_library()) is not None:
            return cpu_consumer_lists(library, wiring, in_features)
    flat = wiring.reshape(-1).to(torch.int64)
    entries = torch.argsort(flat, stable=True)
    offsets = torch.zeros(in_features + 1, dtype=torch.int64, device=wiring.device)
    offsets[1:] = torch.cumsum(torch.bincount(flat, minlength=in_features), 0)
    return offsets.to(torch.int32), entries.to(torch.int32)


@dataclass(frozen=True)
class KernelWiring:
    """A layer's wiring as the kernels take it, on one device."""

    wiring: Tensor  # int32 [gates, n]
    consumer_offsets: Tensor
    consumer_entries: Tensor


def prepare_wiring(wiring: Tensor, in_features: int, device: torch.device) -> KernelWiring:
    """Validate the index range once (the kernels trust it) and build the consumer lists."""
    if wiring.dim() != 2 or not 1 <= wiring.shape[1] <= 6:
        raise ValueError(f"wiring must be [gates, arity] with arity 1..6, got {tuple(wiring.shape)}")
    if wiring.numel() and (int(wiring.min()) < 0 or int(wiring.max()) >= in_features):
        raise ValueError(f"wiring reads outside its {in_features} inputs")
    if wiring.numel() >= 2**31:
        raise ValueError("too many gate inputs for the kernels' int32 indices")
    wiring32 = wiring.to(device=device, dtype=torch.int32).contiguous()
    offsets, entries = consumer_lists(wiring32, in_features)
    return KernelWiring(wiring32, offsets, entries)


@dataclass(frozen=True)
class KernelPool:
    """A layer's candidate pools (learned wiring) as the operators take them, on one device."""

    pool: Tensor  # int32 [slots, candidates]
    consumer_offsets: Tensor
    consumer_entries: Tensor


def prepare_pool(pool: Tensor, in_features: int, device: torch.device) -> KernelPool:
    """Validate the candidate indices once and build who-reads-each-feature lists over the flattened pool."""
    if pool.dim() != 2:
        raise ValueError(f"pool must be [slots, candidates], got {tuple(pool.shape)}")
    if pool.numel() and (int(pool.min()) < 0 or int(pool.max()) >= in_features):
        raise ValueError(f"candidate pools read outside their {in_features} inputs")
    if pool.numel() >= 2**31:
        raise ValueError("too many candidates for the operators' int32 indices")
    pool32 = pool.to(device=device, dtype=torch.int32).contiguous()
    offsets, entries = consumer_lists(pool32, in_features)
    return KernelPool(pool32, offsets, entries)


def mix_candidates(x: Tensor, prepared: KernelPool, weight: Tensor) -> Tensor:
    """``x [in, batch]`` -> ``[slots, batch]``: each slot the ``weight``-mixture of its candidates
    (``lgn::mix_forward``, differentiable in x and weight)."""
    from . import wiring_ops

    return wiring_ops.mix_forward(x, prepared.pool, weight, prepared.consumer_offsets, prepared.consumer_entries)


def chosen_gates(x: Tensor, prepared: KernelPool, logits: Tensor, temperature: float, corners: Tensor) -> Tensor:
    """Learned wiring with a hard choice (straight-through): ``x [in, batch]`` -> ``[gates, batch]``, gate
    input s reading the candidate of ``prepared.pool[s]`` with the largest of ``logits[s]`` (the first on a
    tie); the logits get the gradient of their softmax mixture at ``temperature`` through that choice
    (``lgn::chosen_gates``). Equal to ``relaxed_gates`` over ``mix_candidates`` with one-hot weights, without
    making the ``[gates * n, batch]`` mixtures."""
    from . import wiring_ops

    slots, arity = prepared.pool.shape[0], corners.shape[1].bit_length() - 1
    chosen = logits.detach().max(dim=-1, keepdim=True).indices.to(prepared.pool.device)
    wiring = prepared.pool.gather(1, chosen).view(slots // arity, arity)
    offsets, entries = consumer_lists(wiring, x.shape[0])
    accumulator = torch.float64 if x.dtype == torch.float64 else torch.float32
    return wiring_ops.chosen_gates(
        x, wiring, corners.to(accumulator), offsets, entries, prepared.pool, logits, float(temperature)
    )


def wiring_softmax(logits: Tensor, temperature: float) -> Tensor:
    """``softmax(logits / temperature)`` over each slot's candidates (``lgn::wiring_softmax``, differentiable)."""
    from . import wiring_ops

    return wiring_ops.wiring_softmax(logits, float(temperature))


def relaxed_gates(x: Tensor, prepared: KernelWiring, corners: Tensor) -> Tensor:
    """``x [in, batch]`` -> ``[gates, batch]`` through ``lgn::gate_forward`` (differentiable in x and
    corners). Corners are float64 for float64 activations, float32 otherwise."""
    from . import ops

    accumulator = torch.float64 if x.dtype == torch.float64 else torch.float32
    return ops.gate_forward(
        x, prepared.wiring, corners.to(accumulator), prepared.consumer_offsets, prepared.consumer_entries
    )


def op_corners(logits: Tensor, tables: Tensor) -> Tensor:
    from . import ops

    return ops.op_corners(logits, tables)


def pack_bits(bits: Tensor) -> Tensor:
    """``[batch, features]`` of 0/1 -> ``int64 [features, ceil(batch / 64)]``, sample 64 w + j at bit j
    of word w; padding samples are 0."""
    batch, features = bits.shape
    words = -(-batch // 64)
    padded = torch.zeros(features, words * 64, dtype=torch.int64, device=bits.device)
    padded[:, :batch] = bits.t().to(torch.int64) & 1
    weights = torch.ones(64, dtype=torch.int64, device=bits.device) << torch.arange(64, device=bits.device)
    return (padded.reshape(features, words, 64) * weights).sum(-1)


def unpack_bits(words: Tensor, batch: int) -> Tensor:
    """Inverse of ``pack_bits``: ``int64 [features, words]`` -> ``int64 [batch, features]`` of 0/1."""
    shifts = torch.arange(64, device=words.device)
    bits = (words.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(words.shape[0], -1)[:, :batch].t()


def packed_layer(bits: Tensor, prepared: KernelWiring, tables: Tensor) -> Tensor:
    from . import ops

    return ops.packed_layer(bits, prepared.wiring, tables.to(torch.int64))
