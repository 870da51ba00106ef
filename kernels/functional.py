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


# ---- hard-forward estimators -------------------------------------------------------------------------
# A hard estimator runs the forward pass on the discrete choice and takes the gradient through the
# relaxation: the value is exactly ``hard`` and the gradient goes to ``soft`` unchanged. "gumbel" perturbs
# the choice with noise drawn once per call (shared by the whole batch) before it is made; "soft" is the
# plain relaxation.
ESTIMATORS = ("soft", "ste", "gumbel")


class _StraightThrough(torch.autograd.Function):
    # Not ``hard + soft - soft.detach()``: that costs two passes and is not exactly ``hard`` in floating
    # point (1 + s - s can round away from 1), so the "discrete" forward would be off by an ulp.
    @staticmethod
    def forward(ctx, hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        return hard

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, grad


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """``hard``'s values exactly (``hard`` carries no gradient), with ``soft``'s gradient."""
    return _StraightThrough.apply(hard.detach(), soft)


def gumbel_noise(shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=device).clamp_(1e-10, 1 - 1e-7)
    return -torch.log(-torch.log(u))


def choice_weights(logits: torch.Tensor, estimator: str, temperature: float, noise: torch.Tensor | None = None):
    """Weights over the last axis of ``logits`` (candidates of a slot, or OP's 16 gates): the softmax at
    ``temperature`` (soft), or a one-hot of the argmax carrying the softmax's gradient (ste; gumbel with
    ``noise`` added to the logits first)."""
    if estimator == "gumbel":
        if noise is None:
            noise = gumbel_noise(logits.shape, device=logits.device)
        logits = logits + noise
    soft = torch.softmax(logits / temperature, dim=-1)
    if estimator == "soft":
        return soft
    # max(...).indices, not argmax: the same first maximum, several times faster on the CPU
    hard = torch.zeros_like(soft).scatter_(-1, logits.max(dim=-1, keepdim=True).indices, 1.0)
    return straight_through(hard, soft)


def iwp_corners(omega: torch.Tensor, kind: str, estimator: str, temperature: float = 1.0, noise=None):
    """IWP corner values for the forward pass: rho(omega) (soft), the rounded corners with rho's gradient
    (ste), or the corners rounded after logistic noise with a sigmoid relaxation at ``temperature``
    (gumbel: each corner is a Bernoulli choice)."""
    soft = rho(omega, kind)
    if estimator == "soft":
        return soft
    if estimator == "ste":
        return straight_through((soft > 0.5).to(soft.dtype), soft)
    if noise is None:
        u = torch.rand(omega.shape, device=omega.device).clamp_(1e-7, 1 - 1e-7)
        noise = torch.log(u) - torch.log1p(-u)  # logistic
    logit = torch.logit(soft.clamp(1e-6, 1 - 1e-6)) + noise
    return straight_through((logit > 0).to(soft.dtype), torch.sigmoid(logit / temperature))


def op_corners_estimated(logits: torch.Tensor, estimator: str, temperature: float = 1.0, noise=None):
    """OP corner values for the forward pass: the softmax expectation (soft), or the corners of the chosen
    gate (ste: the argmax; gumbel: after Gumbel noise) carrying the tempered softmax's gradient."""
    if estimator == "soft":
        return op_corners(logits)
    weights = choice_weights(logits, estimator, temperature, noise)
    return weights @ op_corner_matrix(logits.dtype, logits.device)


class _HardSelect(torch.autograd.Function):
    """The hard choice of one candidate per slot, with the straight-through gradient of a soft mixture.

    Forward: ``out[..., s] = x[..., index[s]]`` (a gather: the discrete network). Backward: ``x`` gets the
    gradient of the gather (the chosen input only); ``weights`` (the soft mixture the gradient flows
    through, ``[slots, candidates]`` over ``candidates``) gets ``d out / d weight[s, c] = x[..., candidate c]``,
    so every candidate is scored by how it would move the loss."""

    @staticmethod
    def forward(ctx, x, index, candidates, weights):  # x [B, in]; index [S]; candidates [S, K] or None (all)
        ctx.save_for_backward(x, index, candidates if candidates is not None else index)
        ctx.full = candidates is None
        return x.index_select(1, index)

    @staticmethod
    def backward(ctx, grad_out):  # grad_out [B, S]
        x, index, candidates = ctx.saved_tensors
        grad_x = torch.zeros_like(x).index_add_(1, index, grad_out) if ctx.needs_input_grad[0] else None
        if ctx.full:
            grad_weights = grad_out.t() @ x.to(grad_out.dtype)  # [S, in]
        else:
            grad_weights = torch.einsum("bs,bsk->sk", grad_out, x[:, candidates].to(grad_out.dtype))
        return grad_x, None, None, grad_weights


def select_inputs(x: torch.Tensor, weights: torch.Tensor, candidates: torch.Tensor | None, hard: bool) -> torch.Tensor:
    """``x [batch, in]`` -> ``[batch, slots]``: each slot's ``weights``-mixture of its candidates
    (``candidates [slots, K]`` indices into x, or every input when None). ``hard``: the weights' values are
    one-hot (a hard estimator), so the forward is a gather and the mixture only shapes the gradient."""
    if not hard:
        if candidates is None:
            return x.to(weights.dtype) @ weights.t()
        return (x[:, candidates].to(weights.dtype) * weights).sum(-1)
    chosen = weights.detach().argmax(dim=-1)
    index = chosen if candidates is None else candidates.gather(1, chosen.unsqueeze(1)).squeeze(1)
    return _HardSelect.apply(x, index, candidates, weights)
