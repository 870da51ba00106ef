"""Logic gate layers (OP and IWP, n inputs), GroupSum, and the whole network.

The wiring of every layer is a buffer, so it is saved and restored with the weights (the 2022 library
kept it as a plain attribute and reloaded models computed something else).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lgn import kernels
from lgn.compiler.truth import DIFFLOGIC_TABLES
from lgn.kernels import functional as F

from .config import INITS, PARAMETRIZATIONS, RHOS
from .wiring import layer_wiring

RESIDUAL_SHIFT = {"sin01": 1.2, "sigmoid": 3.0}  # IWP: corner values near 0.03/0.97 and 0.05/0.95
OP_RESIDUAL_LOGIT = 5.0  # OP-RI: logit of the chosen gate (P(A) = 0.908 at 5 with 15 zeros)
GATE_A, GATE_AND, GATE_OR = 3, 1, 7  # difflogic ids


class LogicLayer(nn.Module):
    """``out_features`` gates of ``arity`` inputs each, reading ``in_features`` values.

    Parametrizations: ``"iwp"`` (2^arity corner parameters, any arity 1..6, ``rho`` = sin01 or sigmoid)
    and ``"op"`` (16 gate logits, arity 2). Wiring: a random permutation of ``arity * out`` slots modulo
    ``in`` (every input used when ``arity * out >= in``), fixed and saved as a buffer.
    """

    wiring: torch.Tensor  # int64 [out, arity], a buffer: saved with the model
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
    ):
        super().__init__()
        self.implementation = kernels.check_implementation(implementation)
        self._kernel_wiring_cache: tuple | None = None
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
        self.in_features, self.out_features, self.arity = in_features, out_features, arity
        self.parametrization, self.rho, self.init = parametrization, rho, init
        rng = np.random.default_rng(seed)
        wiring = layer_wiring(rng, in_features, out_features, arity)
        self.register_buffer("wiring", torch.as_tensor(wiring, dtype=torch.int64))
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        if parametrization == "iwp":
            self.weight = nn.Parameter(self._iwp_init(generator))
        else:
            self.weight = nn.Parameter(self._op_init(generator))
            tables = torch.tensor([int(t) for t in DIFFLOGIC_TABLES], dtype=torch.int32)
            self.register_buffer("op_tables", tables, persistent=False)

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

    def corners(self) -> torch.Tensor:
        """``[out, 2^arity]`` relaxed corner values in [0, 1]."""
        if self.parametrization == "iwp":
            return F.rho(self.weight, self.rho)
        return F.op_corners(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[batch, in]`` -> ``[batch, out]`` relaxed outputs."""
        if kernels.use_kernels(self.implementation, x, self.arity):
            return self.forward_features(x.t().contiguous()).t()
        return F.interpolate(self.corners(), F.gather_inputs(x, self.wiring))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature-major ``[in, batch]`` -> ``[out, batch]`` through the kernel operators."""
        if self.parametrization == "iwp":
            corners = F.rho(self.weight, self.rho)
        else:
            corners = kernels.op_corners(self.weight, self.op_tables)
        return kernels.relaxed_gates(x, self.kernel_wiring(x.device), corners)

    @torch.compiler.disable  # a cache lookup, not math: torch.compile runs it eagerly
    def kernel_wiring(self, device: torch.device) -> kernels.KernelWiring:
        """The wiring as the kernels take it (int32 + consumer lists), rebuilt when the wiring buffer
        changes (a loaded state dict) or moves."""
        key = (self.wiring.data_ptr(), self.wiring._version, str(device))
        if self._kernel_wiring_cache is None or self._kernel_wiring_cache[0] != key:
            self._kernel_wiring_cache = (key, kernels.prepare_wiring(self.wiring, self.in_features, device))
        return self._kernel_wiring_cache[1]

    def truth_tables(self) -> torch.Tensor:
        """``int64[out]``: the discretized gates (bit m = value at corner m)."""
        with torch.no_grad():
            if self.parametrization == "iwp":
                return F.discretize_iwp(self.weight, self.rho)
            return F.discretize_op(self.weight)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features} -> {self.out_features}, arity={self.arity}, "
            f"parametrization={self.parametrization}, rho={self.rho}, init={self.init}"
        )


class GroupSum(nn.Module):
    """Sum contiguous groups of outputs into class logits, divided by the temperature ``tau``."""

    def __init__(self, classes: int, tau: float = 1.0):
        super().__init__()
        self.classes, self.tau = classes, float(tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_sum(x, self.classes, self.tau)


class LogicNet(nn.Module):
    """``layers`` LogicLayers of ``width`` gates over ``in_features`` input bits, then GroupSum."""

    layers: list[LogicLayer]  # an nn.ModuleList at run time

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
    ):
        super().__init__()
        if width % classes:
            raise ValueError(f"width ({width}) must be a multiple of the number of classes ({classes})")
        if layers < 1:
            raise ValueError("a network needs at least one layer")
        self.config = dict(
            in_features=in_features,
            classes=classes,
            layers=layers,
            width=width,
            arity=arity,
            parametrization=parametrization,
            rho=rho,
            init=init,
            tau=tau,
            seed=seed,
        )
        self.arity = arity
        sizes = [in_features] + [width] * layers
        self.layers = nn.ModuleList(  # type: ignore[assignment]  # typed below as the list it holds
            LogicLayer(sizes[i], sizes[i + 1], arity, parametrization, rho, init, seed * 1000 + i, implementation)
            for i in range(layers)
        )
        self.group_sum = GroupSum(classes, tau)
        self.implementation = kernels.check_implementation(implementation)

    def set_implementation(self, implementation: str) -> LogicNet:
        self.implementation = kernels.check_implementation(implementation)
        for layer in self.layers:
            layer.implementation = implementation
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of the relaxed network for input probabilities (or bits) ``x [batch, in]``."""
        if kernels.use_kernels(self.implementation, x, self.arity):
            # Feature-major end to end: one transpose in, GroupSum reads the last layer's rows.
            h = x.t().contiguous()
            for layer in self.layers:
                h = layer.forward_features(h)
            if h.dtype != torch.float64:  # bfloat16 activations: sum the groups in float32
                h = h.float()
            return (h.reshape(self.group_sum.classes, -1, h.shape[1]).sum(1) / self.group_sum.tau).t()
        for layer in self.layers:
            x = layer(x)
        return self.group_sum(x)

    @torch.no_grad()
    def discrete_scores(self, bits: torch.Tensor) -> torch.Tensor:
        """``int64[batch, classes]``: GroupSum popcounts of the discretized network."""
        classes = self.group_sum.classes
        if self.implementation != "torch":
            # 64 samples per int64 word: the packed kernel on a GPU, torch bitwise ops elsewhere.
            words = kernels.pack_bits(bits)
            for layer in self.layers:
                words = kernels.packed_layer(words, layer.kernel_wiring(bits.device), layer.truth_tables())
            x = kernels.unpack_bits(words, bits.shape[0])
        else:
            x = bits.to(torch.int64)
            for layer in self.layers:
                x = F.hard_layer(x, layer.wiring, layer.truth_tables())
        return x.reshape(x.shape[0], classes, -1).sum(-1)

    @torch.no_grad()
    def discrete_predict(self, bits: torch.Tensor) -> torch.Tensor:
        """Argmax of the popcounts; ties go to the lowest class (torch.argmax returns the first)."""
        return self.discrete_scores(bits).argmax(dim=-1)
