"""Logic gate layers (OP and IWP, n inputs, fixed or learned wiring), GroupSum, and the whole network.

Everything that decides what the discretized network computes is saved with the model: the fixed wiring
(a buffer; the 2022 library kept it as a plain attribute and reloaded models computed something else), or
for learned wiring the candidate pools (a buffer) and their logits (parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from lgn import kernels
from lgn.compiler.truth import DIFFLOGIC_TABLES
from lgn.kernels import functional as F

from .config import ESTIMATORS, INITS, PARAMETRIZATIONS, RHOS
from .wiring import check_given_wiring, draw_pools, layer_wiring

if TYPE_CHECKING:
    from .conv_stack import ConvStack

RESIDUAL_SHIFT = {"sin01": 1.2, "sigmoid": 3.0}  # IWP: corner values near 0.03/0.97 and 0.05/0.95
OP_RESIDUAL_LOGIT = 5.0  # OP-RI: logit of the chosen gate (P(A) = 0.908 at 5 with 15 zeros)
GATE_A, GATE_AND, GATE_OR = 3, 1, 7  # difflogic ids
START_LOGIT = 2.0  # learned wiring: the starting candidate's logit (the others near 0)


class LogicLayer(nn.Module):
    """``out_features`` gates of ``arity`` inputs each, reading ``in_features`` values.

    Parametrizations: ``"iwp"`` (2^arity corner parameters, any arity 1..6, ``rho`` = sin01 or sigmoid)
    and ``"op"`` (16 gate logits, arity 2). Wiring: a random permutation of ``arity * out`` slots modulo
    ``in`` (every input used when ``arity * out >= in``); fixed with ``candidates=0``, else each slot learns
    a choice among ``candidates`` inputs (the starting one and others drawn at random, half of them nearby
    where ``positions`` of image inputs are given; every input when ``candidates >= in_features``).
    ``wiring`` (``int[out, arity]``) and ``pool`` (``int[out * arity, candidates]``, candidate 0 = the slot's
    wiring) replace the random draws where given (the convolution's trees have a wiring of their own).

    ``gate_estimator``, ``wiring_estimator`` and ``temperature`` (set by the trainer) choose how the
    training forward treats the gates and the wiring: ``soft`` relaxations, or hard choices with
    straight-through gradients (``ste``, ``gumbel``). Evaluation (``model.eval()``) runs the same network
    without noise.
    """

    wiring: torch.Tensor  # int64 [out, arity]: the fixed wiring, or the starting one of learned wiring
    pool: torch.Tensor  # int64 [out * arity, candidates] (learned wiring with candidate pools)
    op_tables: torch.Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        arity: int = 2,
        parametrization: str = "iwp",
        rho: str = "sin01",
        init: str = "residual",
        seed: int = 0,
        implementation: str = "auto",
        candidates: int = 0,
        positions: np.ndarray | None = None,
        wiring: np.ndarray | None = None,
        pool: np.ndarray | None = None,
    ):
        super().__init__()
        _check_layer(in_features, out_features, arity, parametrization, rho, init, candidates)
        check_given_wiring(in_features, out_features, arity, candidates, wiring, pool)
        self.implementation = kernels.check_implementation(implementation)
        self.in_features, self.out_features, self.arity = in_features, out_features, arity
        self.parametrization, self.rho, self.init = parametrization, rho, init
        self.gate_estimator, self.wiring_estimator, self.temperature = "soft", "soft", 1.0
        self._kernel_cache: dict = {}
        rng = np.random.default_rng(seed)
        if wiring is None:  # drawn first: the seeds of every layer without a given wiring stay as they were
            wiring = layer_wiring(rng, in_features, out_features, arity)
        self.register_buffer("wiring", torch.as_tensor(wiring, dtype=torch.int64))
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        if parametrization == "iwp":
            self.weight = nn.Parameter(self._iwp_init(generator))
        else:
            self.weight = nn.Parameter(self._op_init(generator))
            tables = torch.tensor([int(t) for t in DIFFLOGIC_TABLES], dtype=torch.int32)
            self.register_buffer("op_tables", tables, persistent=False)
        self.candidates = min(candidates, in_features)
        self.full_pool = candidates >= in_features
        self.wiring_logits: nn.Parameter | None = None
        if candidates:
            self._learned_wiring_init(rng, wiring, positions, generator, pool)

    # ---- initialisation ------------------------------------------------------------------------------
    def _iwp_init(self, generator: torch.Generator) -> torch.Tensor:
        n, out = self.arity, self.out_features
        noise = 0.25 * torch.randn(out, 1 << n, generator=generator)
        if self.init == "gaussian":
            return noise
        shift = RESIDUAL_SHIFT[self.rho]
        if self.init == "residual":
            signs = F.corner_signs(n, "a").expand(out, -1)
        elif self.init == "and-or":
            pick_or = torch.rand(out, generator=generator) < 0.5
            signs = torch.where(pick_or[:, None], F.corner_signs(n, "or"), F.corner_signs(n, "and"))
        else:  # uniform over all 2^(2^n) functions
            signs = torch.where(torch.rand(out, 1 << n, generator=generator) < 0.5, 1.0, -1.0)
        return signs * shift + noise

    def _op_init(self, generator: torch.Generator) -> torch.Tensor:
        out = self.out_features
        if self.init == "gaussian":
            return torch.randn(out, 16, generator=generator)
        logits = torch.zeros(out, 16)
        if self.init == "residual":
            chosen = torch.full((out,), GATE_A)
        elif self.init == "and-or":
            chosen = torch.where(torch.rand(out, generator=generator) < 0.5, GATE_OR, GATE_AND)
        else:
            chosen = torch.randint(0, 16, (out,), generator=generator)
        logits[torch.arange(out), chosen] = OP_RESIDUAL_LOGIT
        return logits

    def _learned_wiring_init(self, rng, wiring: np.ndarray, positions, generator: torch.Generator, pool=None) -> None:
        """Logits over each slot's candidates: the starting input a little ahead (so the first discrete
        network is the random wiring), the others near 0."""
        slots = wiring.size
        width = self.in_features if self.full_pool else self.candidates
        logits = 0.01 * torch.randn(slots, width, generator=generator)
        if self.full_pool:
            logits[torch.arange(slots), torch.as_tensor(wiring.reshape(-1))] += START_LOGIT
        else:
            pools = draw_pools(rng, wiring, self.in_features, self.candidates, positions) if pool is None else pool
            self.register_buffer("pool", torch.as_tensor(pools, dtype=torch.int64))
            logits[:, 0] += START_LOGIT
        self.wiring_logits = nn.Parameter(logits)

    # ---- the discrete network -------------------------------------------------------------------------
    @property
    def learned(self) -> bool:
        return self.wiring_logits is not None

    def selected_wiring(self) -> torch.Tensor:
        """``int64[out, arity]``: the inputs the discretized gates read (learned: each slot's best candidate)."""
        if self.wiring_logits is None:
            return self.wiring
        with torch.no_grad():
            best = self.wiring_logits.argmax(dim=-1)
            chosen = best if self.full_pool else self.pool.gather(1, best.unsqueeze(1)).squeeze(1)
        return chosen.view(self.out_features, self.arity)

    def truth_tables(self) -> torch.Tensor:
        """``int64[out]``: the discretized gates (bit m = value at corner m)."""
        with torch.no_grad():
            if self.parametrization == "iwp":
                return F.discretize_iwp(self.weight, self.rho)
            return F.discretize_op(self.weight)

    # ---- the relaxed network -------------------------------------------------------------------------
    def _estimators(self) -> tuple[str, str]:
        """(gates, wiring): the trainer's choice; in evaluation the same network without noise (gumbel
        becomes ste), so the relaxed accuracy is that of the network being trained."""
        if self.training:
            return self.gate_estimator, self.wiring_estimator
        return tuple("ste" if e == "gumbel" else e for e in (self.gate_estimator, self.wiring_estimator))  # type: ignore[return-value]

    def corners(self) -> torch.Tensor:
        """``[out, 2^arity]`` corner values for the forward pass (per the estimator while training)."""
        estimator = self._estimators()[0]
        if self.parametrization == "iwp":
            return F.iwp_corners(self.weight, self.rho, estimator, self.temperature)
        if estimator == "soft" and self.implementation != "torch" and self.weight.is_cuda:
            return kernels.op_corners(self.weight, self.op_tables)
        return F.op_corners_estimated(self.weight, estimator, self.temperature)

    def wiring_weights(self) -> torch.Tensor:
        """``[slots, candidates]`` (learned wiring): each slot's weights over its candidates."""
        assert self.wiring_logits is not None
        return F.choice_weights(self.wiring_logits, self._estimators()[1], self.temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, in]`` -> ``[batch, out]`` relaxed outputs."""
        if kernels.use_kernels(self.implementation, x):
            return self.forward_features(x.t().contiguous()).t()
        if self.wiring_logits is None:
            inputs = F.gather_inputs(x, self.wiring)
        else:
            pool = None if self.full_pool else self.pool
            slots = F.select_inputs(x, self.wiring_weights(), pool, hard=self._estimators()[1] != "soft")
            inputs = list(slots.view(x.shape[0], self.out_features, self.arity).unbind(-1))
        return F.interpolate(self.corners(), inputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature-major ``[in, batch]`` -> ``[out, batch]`` through the operators."""
        corners = self.corners()
        if self.wiring_logits is None:
            return kernels.relaxed_gates(x, self._kernel_wiring(self.wiring, x.device), corners)
        estimator = self._estimators()[1]
        if estimator != "soft" and not self.full_pool:  # a hard choice: no mixtures are made
            logits: torch.Tensor = self.wiring_logits
            if estimator == "gumbel":
                logits = logits + F.gumbel_noise(logits.shape, device=logits.device)
            return kernels.chosen_gates(x, self._kernel_pool(x.device), logits, self.temperature, corners)
        if self.full_pool:
            slots = F.select_inputs(x.t(), self.wiring_weights(), None, estimator != "soft").t().contiguous()
        else:  # soft: every candidate mixed in
            weights = kernels.wiring_softmax(self.wiring_logits, self.temperature)
            slots = kernels.mix_candidates(x, self._kernel_pool(x.device), weights.to(x.dtype))
        return kernels.relaxed_gates(slots.to(x.dtype), self._identity_wiring(x.device), corners)

    @torch.compiler.disable  # cache lookups, not math: torch.compile runs them eagerly
    def _kernel_wiring(self, wiring: torch.Tensor, device: torch.device) -> kernels.KernelWiring:
        """The fixed wiring as the operators take it (int32 + consumer lists), rebuilt when it changes
        (a loaded state dict) or moves."""
        key = (wiring.data_ptr(), wiring._version, str(device))
        cached = self._kernel_cache.get("wiring")
        if cached is None or cached[0] != key:
            self._kernel_cache["wiring"] = cached = (key, kernels.prepare_wiring(wiring, self.in_features, device))
        return cached[1]

    @torch.compiler.disable
    def _identity_wiring(self, device: torch.device) -> kernels.KernelWiring:
        """Learned wiring: gate g reads slots g * arity .. g * arity + arity - 1 of the candidate mixtures."""
        key = str(device)
        cached = self._kernel_cache.get("identity")
        if cached is None or cached[0] != key:
            slots = self.out_features * self.arity
            identity = torch.arange(slots).view(self.out_features, self.arity)
            self._kernel_cache["identity"] = cached = (key, kernels.prepare_wiring(identity, slots, device))
        return cached[1]

    @torch.compiler.disable
    def _kernel_pool(self, device: torch.device) -> kernels.KernelPool:
        key = (self.pool.data_ptr(), self.pool._version, str(device))
        cached = self._kernel_cache.get("pool")
        if cached is None or cached[0] != key:
            self._kernel_cache["pool"] = cached = (key, kernels.prepare_pool(self.pool, self.in_features, device))
        return cached[1]

    def kernel_wiring(self, device: torch.device) -> kernels.KernelWiring:
        """The discrete wiring as the packed-bit operator takes it."""
        return kernels.prepare_wiring(self.selected_wiring(), self.in_features, device)

    def extra_repr(self) -> str:
        wiring = "fixed" if not self.learned else f"learned over {'every input' if self.full_pool else self.candidates}"
        return (
            f"{self.in_features} -> {self.out_features}, arity={self.arity}, parametrization={self.parametrization}, "
            f"rho={self.rho}, init={self.init}, wiring={wiring}"
        )


def _check_layer(in_features, out_features, arity, parametrization, rho, init, candidates) -> None:
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}, got {parametrization!r}")
    if parametrization == "op" and arity != 2:
        raise ValueError("the original parametrization (OP) has 16 gates of 2 inputs: use arity 2")
    if not 1 <= arity <= 6:
        raise ValueError(f"arity must be 1..6, got {arity}")
    if rho not in RHOS:
        raise ValueError(f"rho must be one of {RHOS}, got {rho!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if in_features < 1 or out_features < 1:
        raise ValueError("layers need at least one input and one output")
    if candidates < 0:
        raise ValueError(f"candidates must be >= 0 (0: fixed wiring), got {candidates}")


class GroupSum(nn.Module):
    """Sum contiguous groups of outputs into class logits, divided by the temperature ``tau``."""

    def __init__(self, classes: int, tau: float = 1.0):
        super().__init__()
        self.classes, self.tau = classes, float(tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_sum(x, self.classes, self.tau)


class LogicNet(nn.Module):
    """LogicLayers of ``widths`` gates (or ``layers`` x ``width``) over ``in_features`` input bits, then
    GroupSum over the last layer. ``candidates``: per layer, 0 for fixed wiring or the size of each slot's
    candidate pool (learned wiring); ``positions``: pixel coordinates of the input bits, for pools that mix
    nearby and random inputs in the first layer. ``conv`` (blocks) and ``image`` (colors, height, width,
    thresholds): conv blocks before the FC layers (:mod:`.conv_stack`), whose flattened bits the first reads."""

    layers: list[LogicLayer]  # an nn.ModuleList at run time
    conv: ConvStack | None

    def __init__(
        self,
        in_features: int,
        classes: int,
        layers: int = 4,
        width: int = 1000,
        arity: int = 2,
        parametrization: str = "iwp",
        rho: str = "sin01",
        init: str = "residual",
        tau: float = 10.0,
        seed: int = 0,
        implementation: str = "auto",
        widths: Sequence[int] | None = None,
        candidates: Sequence[int] | None = None,
        positions: np.ndarray | None = None,
        conv: Sequence[dict] | None = None,
        image: Sequence[int] | None = None,
    ):
        super().__init__()
        widths = list(widths) if widths is not None else [width] * layers
        candidates = list(candidates) if candidates is not None else [0] * len(widths)
        if not widths:
            raise ValueError("a network needs at least one layer")
        if len(candidates) != len(widths):
            raise ValueError(f"candidates gives {len(candidates)} layers, widths {len(widths)}")
        if widths[-1] % classes:
            raise ValueError(f"the last layer's width ({widths[-1]}) must be a multiple of the classes ({classes})")
        self.config = dict(in_features=in_features, classes=classes, widths=widths, arity=arity,
                           parametrization=parametrization, rho=rho, init=init, tau=tau, seed=seed,
                           candidates=candidates)  # fmt: skip
        self.arity = arity
        self.conv = None
        if conv:  # conv blocks first (training/conv_stack.py); the FC layers read their flattened bits
            from .conv_stack import ConvStack  # imported here: conv.py builds on this module's LogicLayer

            self.config.update(conv=[dict(block) for block in conv], image=list(image or ()))
            self.conv = ConvStack(image or (), conv, parametrization, rho, init, seed, implementation)
            if self.conv.in_features != in_features:
                raise ValueError(f"the image {list(image or ())} holds {self.conv.in_features} bits, not {in_features}")
            positions = None
        sizes = [in_features if self.conv is None else self.conv.out_features] + widths
        self.layers = nn.ModuleList(  # type: ignore[assignment]  # typed above as the list it holds
            LogicLayer(sizes[i], sizes[i + 1], arity, parametrization, rho, init, seed * 1000 + i, implementation,
                       candidates[i], positions if i == 0 else None)
            for i in range(len(widths))
        )  # fmt: skip
        self.group_sum = GroupSum(classes, tau)
        self.implementation = kernels.check_implementation(implementation)

    def set_implementation(self, implementation: str) -> LogicNet:
        self.implementation = kernels.check_implementation(implementation)
        for layer in self.layers:
            layer.implementation = implementation
        if self.conv is not None:
            self.conv.set_implementation(implementation)
        return self

    def set_estimator(self, gates: str, wiring: str, temperature: float) -> None:
        """How the training forward treats the gates and the wiring (see :class:`LogicLayer`)."""
        for estimator in (gates, wiring):
            if estimator not in ESTIMATORS:
                raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        for layer in self.layers:
            layer.gate_estimator, layer.wiring_estimator, layer.temperature = gates, wiring, float(temperature)
        if self.conv is not None:
            self.conv.set_estimator(gates, wiring, temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of the relaxed network for input probabilities (or bits) ``x [batch, in]``."""
        if kernels.use_kernels(self.implementation, x):
            # Feature-major end to end: one transpose in, GroupSum reads the last layer's rows.
            h = x.t().contiguous()
            if self.conv is not None:
                h = self.conv.forward_features(h)
            for layer in self.layers:
                h = layer.forward_features(h)
            if h.dtype != torch.float64:  # bfloat16 activations: sum the groups in float32
                h = h.float()
            return (h.reshape(self.group_sum.classes, -1, h.shape[1]).sum(1) / self.group_sum.tau).t()
        if self.conv is not None:
            x = self.conv(x)
        for layer in self.layers:
            x = layer(x)
        return self.group_sum(x)

    @torch.no_grad()
    def discrete_scores(self, bits: torch.Tensor) -> torch.Tensor:
        """``int64[batch, classes]``: GroupSum popcounts of the discretized network."""
        classes = self.group_sum.classes
        if self.conv is not None:
            bits = self.conv.discrete(bits)
        if self.implementation != "torch":
            # 64 samples per int64 word: the packed kernel on a GPU, torch bitwise ops elsewhere.
            words = kernels.pack_bits(bits)
            for layer in self.layers:
                words = kernels.packed_layer(words, layer.kernel_wiring(bits.device), layer.truth_tables())
            x = kernels.unpack_bits(words, bits.shape[0])
        else:
            x = bits.to(torch.int64)
            for layer in self.layers:
                x = F.hard_layer(x, layer.selected_wiring(), layer.truth_tables())
        return x.reshape(x.shape[0], classes, -1).sum(-1)

    @torch.no_grad()
    def discrete_predict(self, bits: torch.Tensor) -> torch.Tensor:
        """Argmax of the popcounts; ties go to the lowest class (torch.argmax returns the first)."""
        return self.discrete_scores(bits).argmax(dim=-1)
