"""The pure-torch math of logic gate layers: readable, differentiable by autograd, and the oracle the
CUDA kernels are tested against.

A gate with n inputs is a table of 2^n corner values. Corner m is the assignment with
m = sum_k x_k 2^k (fan-in 0 is the least significant bit, as in the IR). Relaxed, the gate's output is
the multilinear interpolation of its corner values at the input probabilities:

    g(x) = sum_m w_m prod_k (x_k if bit k of m else 1 - x_k)

- IWP: w = rho(Omega), 2^n parameters per gate, discretized by rounding each corner (w_m > 0.5).
- OP (n = 2): w_m = sum_i softmax(logits)_i * T[i, m], where T[i, m] is difflogic gate i's value at
  corner m; discretized by the argmax gate. This is the same expectation the 2022 paper computes
  gate by gate (under independent Bernoulli inputs), written through the corners.
"""

from __future__ import annotations

import torch

from lgn.compiler.truth import DIFFLOGIC_TABLES

RHOS = ("sin01", "sigmoid")


def rho(omega: torch.Tensor, kind: str) -> torch.Tensor:
    """Map raw IWP parameters to corner values in [0, 1]."""
    if kind == "sin01":
        return 0.5 + 0.5 * torch.sin(omega)
    if kind == "sigmoid":
        return torch.sigmoid(omega)
    raise ValueError(f"unknown rho {kind!r}; choose one of {RHOS}")


def op_corner_matrix(dtype=torch.float32, device=None) -> torch.Tensor:
    """``[16, 4]``: T[i, m] = value of difflogic gate i at corner m."""
    tables = torch.tensor([int(t) for t in DIFFLOGIC_TABLES], device=device)
    corners = torch.arange(4, device=device)
    return ((tables[:, None] >> corners[None, :]) & 1).to(dtype)


def op_corners(logits: torch.Tensor) -> torch.Tensor:
    """OP: ``[out, 16]`` gate logits -> ``[out, 4]`` expected corner values."""
    return torch.softmax(logits, dim=-1) @ op_corner_matrix(logits.dtype, logits.device)


def gather_inputs(x: torch.Tensor, wiring: torch.Tensor) -> list[torch.Tensor]:
    """``x [batch, in]``, ``wiring [out, n]`` -> n tensors ``[batch, out]``: what each fan-in slot reads.

    ``index_select`` rather than advanced indexing: its backward is an ``index_add`` (several times
    faster on the CPU than the accumulating ``index_put`` that ``x[:, wiring]`` needs).
    """
    return [torch.index_select(x, 1, wiring[:, k]) for k in range(wiring.shape[1])]


def interpolate(corners: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
    """Multilinear interpolation: ``corners [out, 2^n]`` at ``inputs`` (n tensors ``[batch, out]``).

    Folds one input at a time: corners m and m + 1 (m even) differ in x_0 only, so mixing them by x_0
    leaves a table over x_1..x_{n-1}, and so on. The first fold works on the unbatched parameters; later
    folds split pairs with ``unbind`` (whose backward stacks, instead of zero-filling like slicing).
    """
    n = len(inputs)
    if corners.shape[-1] != 1 << n:
        raise ValueError(f"{corners.shape[-1]} corners do not match {n} inputs")
    pairs = corners.reshape(corners.shape[0], -1, 2)
    low, high = pairs[..., 0], pairs[..., 1]  # [out, 2^(n-1)], parameters only
    values = low + (high - low) * inputs[0].unsqueeze(-1)  # [batch, out, 2^(n-1)]
    for x in inputs[1:]:
        low, high = values.reshape(*values.shape[:-1], -1, 2).unbind(-1)
        values = low + (high - low) * x.unsqueeze(-1)
    return values.squeeze(-1)


def discretize_iwp(omega: torch.Tensor, kind: str) -> torch.Tensor:
    """``[out, 2^n]`` IWP parameters -> ``int64[out]`` truth tables (bit m = corner m above 0.5)."""
    bits = (rho(omega, kind) > 0.5).to(torch.int64)
    weights = torch.ones(bits.shape[-1], dtype=torch.int64, device=bits.device) << torch.arange(
        bits.shape[-1], device=bits.device
    )
    return (bits * weights).sum(-1)


def discretize_op(logits: torch.Tensor) -> torch.Tensor:
    """``[out, 16]`` OP logits -> ``int64[out]`` 2-input truth tables of the argmax gates."""
    tables = torch.tensor([int(t) for t in DIFFLOGIC_TABLES], device=logits.device)
    return tables[logits.argmax(dim=-1)]


def hard_layer(bits: torch.Tensor, wiring: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """Discretized layer: ``bits [batch, in]`` (0/1 integers), tables ``int64[out]`` -> ``[batch, out]``."""
    index = torch.zeros(bits.shape[0], wiring.shape[0], dtype=torch.int64, device=bits.device)
    for k in range(wiring.shape[1]):  # the corner each gate sees: sum_k x_k 2^k
        index |= torch.index_select(bits, 1, wiring[:, k]).to(torch.int64) << k
    return (tables.unsqueeze(0) >> index) & 1


def group_sum(x: torch.Tensor, classes: int, tau: float) -> torch.Tensor:
    """``[batch, N]`` -> ``[batch, classes]``: contiguous groups of N / classes summed, divided by tau."""
    return x.reshape(x.shape[0], classes, -1).sum(-1) / tau


def corner_signs(n: int, pattern: str) -> torch.Tensor:
    """±1 per corner for a named function of n inputs: 'a' (pass-through of fan-in 0), 'and', 'or'."""
    m = torch.arange(1 << n)
    if pattern == "a":
        on = (m & 1) == 1
    elif pattern == "and":
        on = m == (1 << n) - 1
    elif pattern == "or":
        on = m != 0
    else:
        raise ValueError(pattern)
    return torch.where(on, 1.0, -1.0)
