"""The convolutional front of a :class:`~lgn.training.layers.LogicNet`: its input bits seen as images, conv
blocks (a :class:`~lgn.training.conv.LogicTreeConv`, then an optional :class:`~lgn.training.conv.OrPool`),
and the result flattened for the fully connected layers.

The input bits are the thermometer encoder's of an image dataset: ``k`` thresholds per raw feature, feature
``f`` giving bits ``f * k .. f * k + k - 1``, and the raw features ``(colors, height, width)`` in row-major
order (MNIST's one plane, CIFAR's three). The stack reads them as ``colors * k`` channels, channel
``c * k + j`` being threshold ``j`` of color ``c``: every channel is one threshold of one color over the whole
image, so a tree's leaves mix thresholds and positions as a conv's weights mix channels and positions.

The blocks and the image are :mod:`.conv_spec`'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .conv import LogicTreeConv, OrPool
from .conv_spec import stack_shapes

CONV_SEED_OFFSET = 900  # conv block i draws from seed * 1000 + 900 + i; the FC layers take seed * 1000 + i
# The pools' relaxation in training: the probabilistic OR, 1 - prod(1 - x) over the window. On MNIST
# (16:3:3,32:3:3 + 2,000 + 2,000, 1,000 steps, one seed) it gave 92.0% relaxed and 91.4% discretized on the
# test split, the maximum 90.6% and 90.3%. Both are exactly OR on bits: the discrete network does not
# depend on it.
POOL_RELAXATION = "or"


class ConvStack(nn.Module):
    """Conv blocks over the input bits of ``image`` (see the module docstring), with the parametrization, init
    and implementation of the network around them. ``out_features``: the bits it hands the FC layers."""

    stack: list[nn.Module]  # an nn.ModuleList at run time: LogicTreeConv, OrPool, ... in order

    def __init__(
        self,
        image: Sequence[int],
        blocks: Sequence[dict],
        parametrization: str = "iwp",
        rho: str = "sin01",
        init: str = "residual",
        seed: int = 0,
        implementation: str = "auto",
    ):
        super().__init__()
        self.image = tuple(int(v) for v in image)
        shapes = stack_shapes(self.image, blocks)
        colors, _, _, thresholds = self.image
        modules: list[nn.Module] = []
        channels = colors * thresholds
        for i, block in enumerate(blocks):
            modules.append(
                LogicTreeConv(
                    channels,
                    block["channels"],
                    block["kernel"],
                    block["depth"],
                    block["stride"],
                    block["padding"],
                    block["groups"],
                    parametrization,
                    rho,
                    init,
                    seed * 1000 + CONV_SEED_OFFSET + i,
                    implementation,
                )  # fmt: skip
            )
            if block["pool"] > 1:
                modules.append(OrPool(block["pool"], POOL_RELAXATION))
            channels = block["channels"]
        self.stack = nn.ModuleList(modules)  # type: ignore[assignment]  # typed above as the list it holds
        self.out_shape = shapes[-1]
        self.out_features = math.prod(self.out_shape)

    @property
    def in_features(self) -> int:
        return math.prod(self.image)

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_features]`` -> ``[B, colors * k, H, W]`` (channel ``c * k + j``: threshold j of color c)."""
        colors, height, width, k = self.image
        return x.reshape(-1, colors, height, width, k).permute(0, 1, 4, 2, 3).reshape(-1, colors * k, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_features]`` probabilities -> ``[B, out_features]`` relaxed, flattened as (C, H, W)."""
        h = self._images(x)
        for module in self.stack:
            h = module(h)
        return h.flatten(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature-major ``[in_features, B]`` -> ``[out_features, B]`` (the gate operators' layout)."""
        colors, height, width, k = self.image
        h = x.reshape(colors, height, width, k, -1).permute(0, 3, 1, 2, 4).reshape(colors * k, height, width, -1)
        for module in self.stack:
            h = module.forward_features(h)  # type: ignore[operator]
        return h.reshape(self.out_features, -1)

    @torch.no_grad()
    def discrete(self, bits: torch.Tensor) -> torch.Tensor:
        """``[B, in_features]`` 0/1 -> ``int64[B, out_features]``: the discretized stack."""
        h = self._images(bits.to(torch.int64))
        for module in self.stack:
            h = module.discrete(h)  # type: ignore[operator]
        return h.flatten(1)

    def input_nodes(self, first_input: int) -> np.ndarray:
        """``int64[colors * k, H, W]``: the IR node of each input bit as the stack reads it, input bit ``i``
        being node ``first_input + i``."""
        colors, height, width, k = self.image
        bits = np.arange(self.in_features, dtype=np.int64).reshape(colors, height, width, k)
        return first_input + bits.transpose(0, 3, 1, 2).reshape(colors * k, height, width)

    def convs(self) -> list[LogicTreeConv]:
        return [m for m in self.stack if isinstance(m, LogicTreeConv)]

    def set_estimator(self, gates: str, wiring: str, temperature: float) -> None:
        for conv in self.convs():
            conv.set_estimator(gates, wiring, temperature)

    def set_implementation(self, implementation: str) -> None:
        for conv in self.convs():
            conv.set_implementation(implementation)
