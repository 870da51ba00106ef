"""The fast CPU path of the operators: ctypes calls into ``csrc/lgn_cpu.cpp`` (gates of 1 to 6 inputs, candidate
mixtures), with every index checked first: the C++ loops trust them, so a bad one is a ValueError here,
never a crash there."""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor

CPU_DTYPES = {torch.float32: 0, torch.float64: 1}


def fast_cpu_applies(x: Tensor, corners: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in CPU_DTYPES and corners.dtype == x.dtype


def _address(t: Tensor | None) -> ctypes.c_void_p | None:
    return ctypes.c_void_p(t.data_ptr()) if t is not None else None


def _check_consumers(features: int, n: int, offsets: Tensor, entries: Tensor) -> None:
    if offsets.shape != (features + 1,) or entries.shape != (n,):
        raise ValueError("consumer lists do not match the wiring (see kernels.consumer_lists)")
    if int(offsets[0]) != 0 or int(offsets[-1]) != n or bool((offsets[1:] < offsets[:-1]).any()):
        raise ValueError("consumer offsets must rise from 0 to the number of gate inputs")
    if n and (int(entries.min()) < 0 or int(entries.max()) >= n):
        raise ValueError("consumer entries must index gate inputs")


def _check_indices(x: Tensor, wiring: Tensor, corners: Tensor, offsets=None, entries=None) -> None:
    """The C++ loops trust every index; a bad one must be an error here, not a crash there."""
    gates, arity = wiring.shape
    if x.dim() != 2 or corners.shape != (gates, 1 << arity) or not 1 <= arity <= 6:
        raise ValueError(
            f"x must be [in, batch], wiring [gates, 1..6] and corners [{gates}, {1 << arity}]; got "
            f"{tuple(x.shape)}, {tuple(wiring.shape)}, {tuple(corners.shape)}"
        )
    if wiring.numel() and (int(wiring.min()) < 0 or int(wiring.max()) >= x.shape[0]):
        raise ValueError(f"wiring reads outside the {x.shape[0]} input features")
    if offsets is not None:
        _check_consumers(x.shape[0], wiring.numel(), offsets, entries)


def _int32(t: Tensor) -> Tensor:
    return t.to(torch.int32).contiguous()


def cpu_forward(library, x: Tensor, wiring: Tensor, corners: Tensor) -> Tensor:
    """``gate_forward`` on the CPU (vectorised C++), any arity 1..6."""
    _check_indices(x, wiring, corners)
    x, corners, wiring = x.contiguous(), corners.contiguous(), _int32(wiring)
    y = torch.empty(wiring.shape[0], x.shape[1], dtype=x.dtype)
    library.lgn_cpu_forward(
        CPU_DTYPES[x.dtype], wiring.shape[1], _address(x), ctypes.c_int64(x.shape[1]), _address(wiring),
        ctypes.c_int64(wiring.shape[0]), _address(corners), _address(y), torch.get_num_threads(),
    )  # fmt: skip
    return y


def cpu_backward(library, grad_y, x, wiring, corners, offsets, entries, need_input_grad: bool, need_corners=True):
    """``gate_backward`` on the CPU (vectorised C++), any arity 1..6; the corners' gradient is None unless
    ``need_corners``."""
    _check_indices(x, wiring, corners, offsets, entries)
    if grad_y.shape != (wiring.shape[0], x.shape[1]):
        raise ValueError(f"grad_y must be [gates, batch] = [{wiring.shape[0]}, {x.shape[1]}]")
    grad_y, x, corners, wiring = grad_y.contiguous(), x.contiguous(), corners.contiguous(), _int32(wiring)
    offsets, entries = _int32(offsets), _int32(entries)
    grad_x = torch.empty_like(x) if need_input_grad else torch.zeros_like(x)
    grad_corners = torch.empty_like(corners) if need_corners else None
    library.lgn_cpu_backward(
        CPU_DTYPES[x.dtype], wiring.shape[1], _address(grad_y), _address(x), ctypes.c_int64(x.shape[1]),
        ctypes.c_int64(x.shape[0]), _address(wiring), ctypes.c_int64(wiring.shape[0]), _address(corners),
        _address(offsets), _address(entries), _address(grad_x) if need_input_grad else None, _address(grad_corners),
        torch.get_num_threads(),
    )  # fmt: skip
    return grad_x, grad_corners


def _check_pool(x: Tensor, pool: Tensor, weight: Tensor, offsets=None, entries=None) -> None:
    if x.dim() != 2 or pool.dim() != 2 or weight.shape != pool.shape:
        raise ValueError(
            f"x must be [in, batch] and pool and weight [slots, candidates]; got {tuple(x.shape)}, "
            f"{tuple(pool.shape)}, {tuple(weight.shape)}"
        )
    if pool.numel() and (int(pool.min()) < 0 or int(pool.max()) >= x.shape[0]):
        raise ValueError(f"candidate pools read outside the {x.shape[0]} input features")
    if offsets is not None:
        _check_consumers(x.shape[0], pool.numel(), offsets, entries)


def cpu_mix_forward(library, x: Tensor, pool: Tensor, weight: Tensor) -> Tensor:
    """``mix_forward`` on the CPU (vectorised C++)."""
    _check_pool(x, pool, weight)
    x, pool, weight = x.contiguous(), _int32(pool), weight.to(x.dtype).contiguous()
    out = torch.empty(pool.shape[0], x.shape[1], dtype=x.dtype)
    library.lgn_cpu_mix_forward(
        CPU_DTYPES[x.dtype], _address(x), ctypes.c_int64(x.shape[1]), _address(pool), _address(weight),
        ctypes.c_int64(pool.shape[0]), ctypes.c_int64(pool.shape[1]), _address(out), torch.get_num_threads(),
    )  # fmt: skip
    return out


def cpu_mix_backward(library, grad_slots, x, pool, weight, offsets, entries, need_input_grad: bool):
    """``mix_backward`` on the CPU (vectorised C++)."""
    _check_pool(x, pool, weight, offsets, entries)
    if grad_slots.shape != (pool.shape[0], x.shape[1]):
        raise ValueError(f"grad_slots must be [slots, batch] = [{pool.shape[0]}, {x.shape[1]}]")
    grad_slots, x, pool = grad_slots.to(x.dtype).contiguous(), x.contiguous(), _int32(pool)
    weight, offsets, entries = weight.to(x.dtype).contiguous(), _int32(offsets), _int32(entries)
    grad_x = torch.empty_like(x) if need_input_grad else torch.zeros_like(x)
    grad_weight = torch.empty(pool.shape, dtype=x.dtype)
    library.lgn_cpu_mix_backward(
        CPU_DTYPES[x.dtype], _address(grad_slots), _address(x), ctypes.c_int64(x.shape[1]), ctypes.c_int64(x.shape[0]),
        _address(pool), _address(weight), ctypes.c_int64(pool.shape[0]), ctypes.c_int64(pool.shape[1]),
        _address(offsets), _address(entries), _address(grad_x) if need_input_grad else None, _address(grad_weight),
        torch.get_num_threads(),
    )  # fmt: skip
    return grad_x, grad_weight


def cpu_choice_grads(library, grad_y, x, wiring, corners, pool, logits, temperature: float, with_corners=False):
    """``(grad_logits, grad_corners)`` of a hard choice on the CPU (vectorised C++): the wiring logits'
    gradient, and the corners' from the same pass over each gate when ``with_corners`` (else None)."""
    _check_indices(x, wiring, corners)
    _check_pool(x, pool, logits)
    if pool.shape[0] != wiring.numel() or grad_y.shape != (wiring.shape[0], x.shape[1]):
        raise ValueError(
            f"pool and logits need one row per gate input ({wiring.numel()}) and grad_y must be [gates, batch] = "
            f"[{wiring.shape[0]}, {x.shape[1]}]; got {tuple(pool.shape)} and {tuple(grad_y.shape)}"
        )
    _check_temperature(temperature)
    grad_y, x, corners, wiring = grad_y.contiguous(), x.contiguous(), corners.contiguous(), _int32(wiring)
    pool, same_dtype = _int32(pool), logits.to(x.dtype).contiguous()
    grad_logits = torch.empty_like(same_dtype)
    grad_corners = torch.empty_like(corners) if with_corners else None
    library.lgn_cpu_choice_grads(
        CPU_DTYPES[x.dtype], wiring.shape[1], _address(grad_y), _address(x), ctypes.c_int64(x.shape[1]),
        _address(wiring), ctypes.c_int64(wiring.shape[0]), _address(corners), _address(pool),
        ctypes.c_int64(pool.shape[1]), _address(same_dtype), ctypes.c_double(temperature), _address(grad_logits),
        _address(grad_corners), torch.get_num_threads(),
    )  # fmt: skip
    return grad_logits.to(logits.dtype), grad_corners


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"the temperature must be positive, got {temperature}")


def cpu_softmax(library, logits: Tensor, temperature: float) -> Tensor:
    """``wiring_softmax`` on the CPU: softmax over the last axis of ``[rows, candidates]`` at ``temperature``."""
    _check_temperature(temperature)
    logits = logits.contiguous()
    weights = torch.empty_like(logits)
    library.lgn_cpu_softmax(
        CPU_DTYPES[logits.dtype], _address(logits), ctypes.c_int64(logits.numel() // max(1, logits.shape[-1])),
        ctypes.c_int64(logits.shape[-1]), ctypes.c_double(temperature), _address(weights), torch.get_num_threads(),
    )  # fmt: skip
    return weights


def cpu_softmax_backward(library, weights: Tensor, grad_weights: Tensor, temperature: float) -> Tensor:
    _check_temperature(temperature)
    if grad_weights.shape != weights.shape:
        raise ValueError(f"grad_weights must be {tuple(weights.shape)}, got {tuple(grad_weights.shape)}")
    weights, grad_weights = weights.contiguous(), grad_weights.to(weights.dtype).contiguous()
    grad_logits = torch.empty_like(weights)
    library.lgn_cpu_softmax_backward(
        CPU_DTYPES[weights.dtype], _address(weights), _address(grad_weights),
        ctypes.c_int64(weights.numel() // max(1, weights.shape[-1])), ctypes.c_int64(weights.shape[-1]),
        ctypes.c_double(temperature), _address(grad_logits), torch.get_num_threads(),
    )  # fmt: skip
    return grad_logits


def cpu_consumer_lists(library, wiring: Tensor, in_features: int) -> tuple[Tensor, Tensor]:
    """``kernels.consumer_lists`` by a counting sort in C++ (the same lists, without a sort)."""
    flat = _int32(wiring.reshape(-1))
    offsets = torch.empty(in_features + 1, dtype=torch.int32)
    entries = torch.empty(flat.numel(), dtype=torch.int32)
    if library.lgn_cpu_consumers(_address(flat), ctypes.c_int64(flat.numel()), ctypes.c_int64(in_features),
                                 _address(offsets), _address(entries)):  # fmt: skip
        raise ValueError(f"wiring reads outside its {in_features} inputs")
    return offsets, entries


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit


def reuse_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MB for reuse instead of handing them back to the
    kernel. A training step on the CPU allocates activations and gradients of several MB each (a learned-
    wiring layer of 8,000 two-input gates: 8 MB of candidate mixtures at batch 128); glibc serves each with a
    fresh ``mmap``, and the first write to every page of it faults: 2-3 ms per 8 MB on the development
    machine, a quarter of a learned-wiring step. Process-wide and idempotent; the trainer calls it. False
    where the C library is not glibc (nothing changes there)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False
