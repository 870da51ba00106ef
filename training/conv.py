"""Convolutional logic layers: logic-gate trees applied at every position (one set of gate parameters per
output channel, so a gate's gradient is the sum over positions) and OR pooling; their discrete forward on
bits; and their unrolling into IR gates, every position of every tree a gate.

Layout. Both layers take ``[batch, channels, height, width]`` like torch's conv (``forward``, ``discrete``)
and, for a stack that stays channel-major, ``[channels, height, width, batch]`` (``forward_features``, the
layout the gate operators take: a feature per row, samples along it).

A tree's leaves are *field entries*: ``e = c * k * k + dy * k + dx`` for input channel ``c`` (absolute, not
within its group) and offset ``(dy, dx)`` in the ``k x k`` window, the order of ``torch.nn.functional.unfold``.
Level 0 of the tree is a :class:`LogicLayer` reading the field entries the trees use (``field``); the later
levels pair consecutive gates ``(2i, 2i + 1)``, so tree ``o`` owns gates ``o * 2^(d-1-l) ..`` of level ``l``
and its output is gate ``o`` of the last level. Positions are folded into the batch, which is what makes the
existing operators, estimators and inits apply unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lgn import kernels
from lgn.kernels import functional as F

from .layers import LogicLayer

OR_TABLE = 0b1110  # 2-input OR: 0 at corner 0 (both inputs 0), 1 elsewhere
POOL_RELAXATIONS = ("or", "max")
MAX_DEPTH = 10


class LogicTreeConv(nn.Module):
    """``out_channels`` logic-gate trees of ``depth`` levels (``2^depth`` leaves, ``2^depth - 1`` 2-input gates)
    over ``kernel_size x kernel_size`` windows of ``in_channels`` bits or probabilities.

    ``stride`` and ``padding`` as in ``torch.nn.Conv2d`` (padding reads 0); ``groups``: tree ``o`` reads the
    channels of group ``o // (out_channels / groups)`` only. Leaves: fixed and seeded; a tree's leaves are
    distinct where its field (channels x window) holds enough entries, and spread over the window's positions
    (every position once before any twice). ``tree_channels`` > 0 restricts each tree to that many channels of
    its group (drawn at random). ``candidates`` > 0: each leaf learns a choice among that many entries of its
    tree's field (its drawn leaf, candidate 0, where it starts, and others at random), through
    :class:`LogicLayer`'s learned wiring. ``parametrization``, ``rho``, ``init``, ``implementation`` and the
    estimators (``set_estimator``) are those of :class:`LogicLayer`.
    """

    field: torch.Tensor  # int64[F]: the field entries level 0 reads, ascending
    levels: list[LogicLayer]  # an nn.ModuleList at run time

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        depth: int = 3,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        parametrization: str = "iwp",
        rho: str = "sin01",
        init: str = "residual",
        seed: int = 0,
        implementation: str = "auto",
        candidates: int = 0,
        tree_channels: int = 0,
    ):
        super().__init__()
        _check_conv(in_channels, out_channels, kernel_size, depth, stride, padding, groups, candidates, tree_channels)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.depth, self.stride, self.padding, self.groups = depth, stride, padding, groups
        self.tree_channels = tree_channels
        self.implementation = kernels.check_implementation(implementation)
        rng = np.random.default_rng(seed)
        leaves = draw_leaves(rng, in_channels, out_channels, kernel_size, depth, groups, tree_channels)
        group_field = (in_channels // groups) * kernel_size**2
        width = min(candidates, group_field)
        pools = _leaf_pools(rng, leaves, group_field, width, out_channels // groups) if width else leaves[..., None]
        field, remapped = np.unique(pools, return_inverse=True)
        remapped = remapped.reshape(pools.shape)
        self.register_buffer("field", torch.as_tensor(field, dtype=torch.int64))
        # A pool as wide as the field is the whole field: the layer then mixes all its inputs, pool-free.
        own_pool = remapped.reshape(-1, width) if 0 < width < len(field) else None
        seeds = rng.integers(2**62, size=depth)
        settings = dict(parametrization=parametrization, rho=rho, init=init, implementation=implementation)
        first = LogicLayer(
            len(field),
            out_channels << (depth - 1),
            seed=int(seeds[0]),
            candidates=width,
            wiring=remapped[..., 0].reshape(-1, 2),
            pool=own_pool,
            **settings,  # type: ignore[arg-type]
        )
        pairs = [
            LogicLayer(
                out_channels << (depth - level),
                out_channels << (depth - level - 1),
                seed=int(seeds[level]),
                wiring=np.arange(out_channels << (depth - level)).reshape(-1, 2),
                **settings,  # type: ignore[arg-type]
            )
            for level in range(1, depth)
        ]
        self.levels = nn.ModuleList([first, *pairs])  # type: ignore[assignment]  # typed above as the list it holds
        self._index_cache: dict = {}

    # ---- shapes and wiring --------------------------------------------------------------------------------
    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W')`` for an ``H x W`` input, as ``torch.nn.Conv2d`` computes it; a window that does not fit
        even once is a ``ValueError``."""
        k, s, p = self.kernel_size, self.stride, self.padding
        out = ((height + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1)
        if height + 2 * p < k or width + 2 * p < k:
            raise ValueError(f"a {k}x{k} window does not fit a {height}x{width} input with padding {p}")
        return out

    def leaves(self) -> torch.Tensor:
        """``int64[out_channels, 2^depth]``: the field entries the discretized trees read (learned leaves: each
        leaf's best candidate), leaf ``2i`` and ``2i + 1`` feeding gate ``i`` of level 0."""
        return self.field[self.levels[0].selected_wiring().reshape(self.out_channels, -1)]

    def field_index(self, height: int, width: int) -> np.ndarray:
        """``int64[F, H' * W']``: for field entry ``field[f]`` at output position ``l`` (row-major), the index
        of the bit it reads in the input flattened as ``(C, H, W)``, or ``C * H * W`` (one past the last)
        where the window hangs over the padding."""
        k = self.kernel_size
        out_h, out_w = self.output_size(height, width)
        field = self.field.cpu().numpy()
        channel, dy, dx = field // (k * k), field % (k * k) // k, field % k
        y = dy[:, None, None] + (np.arange(out_h) * self.stride - self.padding)[None, :, None]
        x = dx[:, None, None] + (np.arange(out_w) * self.stride - self.padding)[None, None, :]
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        index = (channel[:, None, None] * height + y) * width + x
        return np.where(inside, index, self.in_channels * height * width).reshape(len(field), -1)

    @torch.compiler.disable  # a cache lookup: torch.compile runs it eagerly
    def _index(self, height: int, width: int, device: torch.device, position_major: bool) -> torch.Tensor:
        """:meth:`field_index` flattened for ``index_select``: ``[F, L]`` order, or ``[L, F]``
        (``position_major``, batch-major forward: each position's entries contiguous)."""
        key = (height, width, str(device), position_major, self.field._version)
        if key not in self._index_cache:
            index = self.field_index(height, width)
            index = index.T if position_major else index
            self._index_cache[key] = torch.as_tensor(np.ascontiguousarray(index).reshape(-1), device=device)
        return self._index_cache[key]

    # ---- the relaxed network ----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` probabilities (or bits) -> ``[B, C_out, H', W']`` relaxed tree outputs."""
        batch, channels, height, width = self._check_input(x)
        out_h, out_w = self.output_size(height, width)
        if kernels.use_kernels(self.implementation, x):  # channel-major through the operators
            h = self.forward_features(x.permute(1, 2, 3, 0))
            return h.permute(3, 0, 1, 2)
        flat = torch.cat([x.reshape(batch, -1), x.new_zeros(batch, 1)], 1)  # the last column: padding
        h = flat.index_select(1, self._index(height, width, x.device, True)).view(batch * out_h * out_w, -1)
        for level in self.levels:
            h = level(h)
        return h.view(batch, out_h, out_w, self.out_channels).permute(0, 3, 1, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Channel-major ``[C_in, H, W, B]`` -> ``[C_out, H', W', B]`` through the levels' ``forward_features``
        (the operators' layout: the samples of every position side by side)."""
        channels, height, width, batch = x.shape
        if channels != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {channels}")
        out_h, out_w = self.output_size(height, width)
        flat = x.new_zeros(channels * height * width + 1, batch)  # the last row: padding
        flat[:-1].view(channels, height, width, batch).copy_(x)  # one copy, whatever x's strides
        h = flat.index_select(0, self._index(height, width, x.device, False)).view(len(self.field), -1)
        for level in self.levels:
            h = level.forward_features(h)
        return h.view(self.out_channels, out_h, out_w, batch)

    def _check_input(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected [batch, {self.in_channels}, height, width], got {tuple(x.shape)}")
        return tuple(x.shape)  # type: ignore[return-value]

    # ---- the discrete network ---------------------------------------------------------------------------
    @torch.no_grad()
    def discrete(self, bits: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` 0/1 -> ``int64[B, C_out, H', W']``: the discretized trees (each gate its truth
        table, each leaf its selected entry), what :func:`unroll` puts in the IR."""
        batch, _, height, width = self._check_input(bits)
        out_h, out_w = self.output_size(height, width)
        flat = torch.cat([bits.reshape(batch, -1).to(torch.int64), bits.new_zeros(batch, 1, dtype=torch.int64)], 1)
        h = flat.index_select(1, self._index(height, width, bits.device, True)).view(batch * out_h * out_w, -1)
        for level in self.levels:
            h = F.hard_layer(h, level.selected_wiring(), level.truth_tables())
        return h.view(batch, out_h, out_w, self.out_channels).permute(0, 3, 1, 2)

    def set_estimator(self, gates: str, wiring: str, temperature: float) -> None:
        """The trainer's estimators for every level (see :class:`LogicLayer`)."""
        for level in self.levels:
            level.gate_estimator, level.wiring_estimator, level.temperature = gates, wiring, float(temperature)

    def set_implementation(self, implementation: str) -> None:
        self.implementation = kernels.check_implementation(implementation)
        for level in self.levels:
            level.implementation = implementation

    def extra_repr(self) -> str:
        first = self.levels[0]
        return (
            f"{self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size}, depth={self.depth}, "
            f"stride={self.stride}, padding={self.padding}, groups={self.groups}, tree_channels={self.tree_channels}, "
            f"candidates={first.candidates}, parametrization={first.parametrization}, init={first.init}"
        )


def _check_conv(in_channels, out_channels, kernel_size, depth, stride, padding, groups, candidates, tree_channels):
    if min(in_channels, out_channels, kernel_size, stride, groups) < 1 or padding < 0:
        raise ValueError("channels, kernel size, stride and groups must be >= 1 and padding >= 0")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups ({groups}) must divide the input ({in_channels}) and output ({out_channels}) channels"
        )
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"tree depth must be 1..{MAX_DEPTH}, got {depth}")
    if candidates < 0 or not 0 <= tree_channels <= in_channels // groups:
        raise ValueError(f"candidates must be >= 0 and tree_channels 0..{in_channels // groups} (the group's channels)")


def draw_leaves(
    rng: np.random.Generator,
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    depth: int,
    groups: int = 1,
    tree_channels: int = 0,
) -> np.ndarray:
    """``int64[out_channels, 2^depth]`` field entries (module docstring), for tree ``o`` within the channels of
    its group (``tree_channels`` > 0: a random subset of that many).

    Positions come from successive random permutations of the window, so a tree covers every position once
    before any twice; the j-th visit of a position takes the j-th channel of that position's own random
    channel order. Leaves are therefore distinct whenever ``2^depth`` <= channels x window.
    """
    per_group, window, n = in_channels // groups, kernel_size * kernel_size, 1 << depth
    leaves = np.empty((out_channels, n), dtype=np.int64)
    for tree in range(out_channels):
        first_channel = tree // (out_channels // groups) * per_group
        channels = np.arange(first_channel, first_channel + per_group)
        if tree_channels:
            channels = np.sort(rng.choice(channels, size=tree_channels, replace=False))
        cycles = -(-n // window)
        position = np.concatenate([rng.permutation(window) for _ in range(cycles)])[:n]
        order = np.stack([rng.permutation(len(channels)) for _ in range(window)])  # [window, channels]
        visit = np.arange(n) // window
        leaves[tree] = channels[order[position, visit % len(channels)]] * window + position
    return leaves


def _leaf_pools(rng: np.random.Generator, leaves: np.ndarray, group_field: int, width: int, trees_per_group: int):
    """``int64[out, 2^depth, width]``: each leaf's candidates, its drawn leaf first, the others distinct random
    entries of its tree's group field (the ``group_field`` entries from its group's first channel; all the
    group's channels, even where ``tree_channels`` narrowed the drawn leaves)."""
    pools = np.empty((*leaves.shape, width), dtype=np.int64)
    for tree in range(leaves.shape[0]):
        base = tree // trees_per_group * group_field  # group g's entries are contiguous: channels g*C_g.. x window
        for slot, leaf in enumerate(leaves[tree].tolist()):
            others = np.delete(np.arange(base, base + group_field), leaf - base)
            pools[tree, slot, 0] = leaf
            pools[tree, slot, 1:] = rng.choice(others, size=width - 1, replace=False)
    return pools


class OrPool(nn.Module):
    """``kernel_size x kernel_size`` OR pooling with stride ``kernel_size``: a bit is 1 when any bit of its
    window is. Rows and columns past the last whole window are dropped (``max_pool2d``'s floor, ceil_mode
    False), so an ``H x W`` input gives ``H // k x W // k``.

    Relaxed (``relaxation``): ``"or"``, the probability that some input is 1 for independent inputs,
    ``1 - prod(1 - x)``; or ``"max"`` (the maximum t-conorm; it does not saturate as a window fills up, and its
    gradient goes to the largest input only, split between ties). Both are exactly OR on 0/1 inputs.
    """

    def __init__(self, kernel_size: int = 2, relaxation: str = "or"):
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"pooling kernel size must be >= 1, got {kernel_size}")
        if relaxation not in POOL_RELAXATIONS:
            raise ValueError(f"relaxation must be one of {POOL_RELAXATIONS}, got {relaxation!r}")
        self.kernel_size, self.relaxation = kernel_size, relaxation

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H // k, W // k)``; an input smaller than one window is a ``ValueError``."""
        k = self.kernel_size
        if height < k or width < k:
            raise ValueError(f"a {k}x{k} pooling window does not fit a {height}x{width} input")
        return height // k, width // k

    def _windows(self, x: torch.Tensor, dim: int) -> list[torch.Tensor]:
        """The ``k * k`` inputs of every window: ``x`` with its dims ``dim, dim + 1`` (H, W) cropped to whole
        windows, as ``k * k`` strided views ``[..., H', W', ...]`` (no copies: ``unbind``'s backward stacks)."""
        k = self.kernel_size
        out_h, out_w = self.output_size(x.shape[dim], x.shape[dim + 1])
        x = x.narrow(dim, 0, out_h * k).narrow(dim + 1, 0, out_w * k)
        x = x.reshape(*x.shape[:dim], out_h, k, out_w, k, *x.shape[dim + 2 :])
        return [view for row in x.unbind(dim + 1) for view in row.unbind(dim + 2)]

    def _pool(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        windows = self._windows(x, dim)
        if self.relaxation == "max":
            result = windows[0]
            for view in windows[1:]:
                result = torch.maximum(result, view)
            return result
        # Products of complements one input at a time: exact in autograd where an input is 1 (a zero
        # complement), with no division; on the views, 2.7x faster than a product over a copied window axis.
        miss = 1 - windows[0]
        for view in windows[1:]:
            miss = miss * (1 - view)
        return 1 - miss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, C, H // k, W // k]`` relaxed ORs of the windows."""
        if x.dim() != 4:
            raise ValueError(f"expected [batch, channels, height, width], got {tuple(x.shape)}")
        return self._pool(x, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Channel-major ``[C, H, W, B]`` -> ``[C, H // k, W // k, B]``."""
        return self._pool(x, 1)

    @torch.no_grad()
    def discrete(self, bits: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` 0/1 -> ``int64[B, C, H // k, W // k]``: the OR of each window."""
        windows = self._windows(bits.to(torch.int64), 2)
        result = windows[0]
        for view in windows[1:]:
            result = result | view
        return result

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, relaxation={self.relaxation}"
