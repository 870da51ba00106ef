"""The convolutional front of a :class:`~lgn.training.layers.LogicNet`: its input bits seen as images, conv
blocks (a :class:`~lgn.training.conv.LogicTreeConv`, then an optional :class:`~lgn.training.conv.OrPool`),
and the result flattened for the fully connected layers.

The input bits are the thermometer encoder's of an image dataset: ``k`` thresholds per raw feature, feature
``f`` giving bits ``f * k .. f * k + k - 1``, and the raw features ``(colors, height, width)`` in row-major
order (MNIST's one plane, CIFAR's three). The stack reads them as ``colors * k`` channels, channel
``c * k + j`` being threshold ``j`` of color ``c``: every channel is one threshold of one color over the whole
image, so a tree's leaves mix thresholds and positions as a conv's weights mix channels and positions.

A block is a dict of :data:`BLOCK_KEYS`: ``channels`` (trees), ``kernel`` (window side), ``depth`` (tree
levels), ``stride``, ``padding``, ``groups`` (as torch's conv) and ``pool`` (OR pooling window side; 1 or 0:
none).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .conv import LogicTreeConv, OrPool

BLOCK_KEYS = ("channels", "kernel", "depth", "stride", "padding", "groups", "pool")
IMAGE_KEYS = ("colors", "height", "width", "thresholds")
CONV_SEED_OFFSET = 900  # conv block i draws from seed * 1000 + 900 + i; the FC layers take seed * 1000 + i


MAX_CHANNELS, MAX_KERNEL, MAX_TREE_DEPTH, MAX_BLOCKS = 4096, 15, 8, 16


def parse_conv(spec: str, pool: int) -> list[dict]:
    """``--conv`` text -> blocks: comma-separated ``CHANNELS:KERNEL:DEPTH[:GROUPS]`` (e.g. ``32:3:3,64:3:3``),
    each with stride 1, padding ``KERNEL // 2`` (the image keeps its size for odd kernels) and ``pool`` x
    ``pool`` OR pooling after it (1: none). A malformed or out-of-range block is a one-line ``ValueError``."""
    blocks = []
    parts = spec.split(",")
    if not spec.strip() or len(parts) > MAX_BLOCKS:
        raise ValueError(f"conv must be 1 to {MAX_BLOCKS} blocks CHANNELS:KERNEL:DEPTH[:GROUPS], got {spec!r}")
    if not 1 <= pool <= 8:
        raise ValueError(f"conv_pool must be between 1 (none) and 8, got {pool}")
    for part in parts:
        fields = part.strip().split(":")
        if len(fields) not in (3, 4) or not all(f.isascii() and f.isdigit() for f in fields):
            raise ValueError(f"conv block {part!r} must be CHANNELS:KERNEL:DEPTH[:GROUPS], e.g. 32:3:3")
        channels, kernel, depth, groups = (int(f) for f in fields + ["1"] * (4 - len(fields)))
        for name, value, high in (("channels", channels, MAX_CHANNELS), ("kernel", kernel, MAX_KERNEL),
                                  ("depth", depth, MAX_TREE_DEPTH), ("groups", groups, channels)):  # fmt: skip
            if not 1 <= value <= high:
                raise ValueError(f"conv block {part!r}: {name} must be between 1 and {high}, got {value}")
        if channels % groups:
            raise ValueError(f"conv block {part!r}: {groups} groups do not divide {channels} channels")
        blocks.append(dict(channels=channels, kernel=kernel, depth=depth, stride=1, padding=kernel // 2,
                           groups=groups, pool=pool))  # fmt: skip
    return blocks


def image_of(feature: np.ndarray, n_features: int, colors: int) -> list[int]:
    """``[colors, height, width, thresholds]`` of an encoder whose bits are ``thresholds`` per raw feature in
    feature order (``feature`` = each bit's raw feature) over square images of ``colors`` planes; anything
    else is a one-line ``ValueError`` (a conv reads images, not tables or cropped images)."""
    pixels, spare = divmod(n_features, colors)
    side = math.isqrt(pixels)
    if spare or side * side != pixels:
        raise ValueError(f"conv needs square images: {n_features} features are not {colors} square planes")
    thresholds, extra = divmod(len(feature), n_features)
    if extra or not np.array_equal(feature, np.repeat(np.arange(n_features), thresholds)):
        raise ValueError("conv needs the same thresholds for every pixel, in pixel order (no crop, no table)")
    return [colors, side, side, thresholds]


def stack_shapes(image: Sequence[int], blocks: Sequence[dict]) -> list[tuple[int, int, int]]:
    """``(channels, height, width)`` after each block, from ``image`` = (colors, height, width, thresholds);
    a block that does not fit its input is a ``ValueError`` naming it. Pure arithmetic: nothing is built, so a
    checkpoint's config can be checked before any tensor is allocated."""
    colors, height, width, thresholds = image
    shapes, channels = [], colors * thresholds
    for i, block in enumerate(blocks):
        k, s, p = block["kernel"], block["stride"], block["padding"]
        if height + 2 * p < k or width + 2 * p < k:
            raise ValueError(f"conv block {i + 1}: a {k}x{k} window does not fit its {height}x{width} input")
        height, width = (height + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1
        pool = block["pool"]
        if pool > 1:
            if height < pool or width < pool:
                raise ValueError(f"conv block {i + 1}: a {pool}x{pool} pool does not fit its {height}x{width} output")
            height, width = height // pool, width // pool
        channels = block["channels"]
        shapes.append((channels, height, width))
    return shapes


def block_gates(image: Sequence[int], blocks: Sequence[dict]) -> int:
    """Gates the unrolled stack has before simplification: every tree gate at every output position of its
    conv, and ``pool^2 - 1`` two-input ORs per pooled bit."""
    total, (_, height, width, _) = 0, image
    for block, (channels, out_h, out_w) in zip(blocks, stack_shapes(image, blocks)):
        k, s, p, pool = block["kernel"], block["stride"], block["padding"], max(block["pool"], 1)
        conv_positions = ((height + 2 * p - k) // s + 1) * ((width + 2 * p - k) // s + 1)
        total += channels * ((1 << block["depth"]) - 1) * conv_positions + channels * out_h * out_w * (pool * pool - 1)
        height, width = out_h, out_w
    return total


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
                modules.append(OrPool(block["pool"]))
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
