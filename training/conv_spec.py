"""The ``--conv`` architecture as data, without torch: the blocks' spec parsed and checked, the image an
encoder's bits form, and the shapes and gate counts a stack has, so that a configuration or a checkpoint is
checked before any network is built (the layers themselves: :mod:`.conv_stack`).

A block is a dict of :data:`BLOCK_KEYS`: ``channels`` (trees), ``kernel`` (window side), ``depth`` (tree
levels), ``stride``, ``padding``, ``groups`` (as torch's conv) and ``pool`` (OR pooling window side; 1 or 0:
none). An image is ``[colors, height, width, thresholds]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BLOCK_KEYS = ("channels", "kernel", "depth", "stride", "padding", "groups", "pool")
IMAGE_KEYS = ("colors", "height", "width", "thresholds")


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


def conv_size(height: int, width: int, block: dict) -> tuple[int, int]:
    """A block's conv output ``(H', W')`` for an ``H x W`` input, before pooling, as torch's conv computes it."""
    k, s, p = block["kernel"], block["stride"], block["padding"]
    return (height + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1


def stack_shapes(image: Sequence[int], blocks: Sequence[dict]) -> list[tuple[int, int, int]]:
    """``(channels, height, width)`` after each block, from ``image`` = (colors, height, width, thresholds);
    a block that does not fit its input is a ``ValueError`` naming it. Pure arithmetic: nothing is built, so a
    checkpoint's config can be checked before any tensor is allocated."""
    colors, height, width, thresholds = image
    shapes, channels = [], colors * thresholds
    for i, block in enumerate(blocks):
        k, p = block["kernel"], block["padding"]
        if height + 2 * p < k or width + 2 * p < k:
            raise ValueError(f"conv block {i + 1}: a {k}x{k} window does not fit its {height}x{width} input")
        height, width = conv_size(height, width, block)
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
        pool = max(block["pool"], 1)
        conv_positions = math.prod(conv_size(height, width, block))
        total += channels * ((1 << block["depth"]) - 1) * conv_positions + channels * out_h * out_w * (pool * pool - 1)
        height, width = out_h, out_w
    return total


MAX_COLORS, MAX_SIDE, MAX_IMAGE_THRESHOLDS = 16, 4096, 255
MAX_STACK_GATES = 1 << 28  # the unrolled stack's gates: the IR holds int32 node ids, and memory is finite
_STORED_LIMITS = {
    "channels": (1, MAX_CHANNELS), "kernel": (1, MAX_KERNEL), "depth": (1, MAX_TREE_DEPTH), "stride": (1, MAX_KERNEL),
    "padding": (0, MAX_KERNEL), "groups": (1, MAX_CHANNELS), "pool": (0, 8),
}  # fmt: skip


def check_stored(blocks: object, image: object, in_features: int) -> None:
    """A stored architecture (a checkpoint's ``conv`` and ``image``) that this module could have written: the
    keys, integer types and ranges :func:`parse_conv` allows, an image of ``in_features`` bits, a stack that
    fits it and unrolls to at most :data:`MAX_STACK_GATES` gates. A one-line ``ValueError`` otherwise; checked
    by arithmetic alone, before anything is allocated."""
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= MAX_BLOCKS:
        raise ValueError(f"conv must be a list of 1 to {MAX_BLOCKS} blocks")
    if not isinstance(image, list) or len(image) != 4 or not all(_is_int(v) and v >= 1 for v in image):
        raise ValueError("image must be 4 positive integers (colors, height, width, thresholds)")
    for name, value, high in zip(IMAGE_KEYS, image, (MAX_COLORS, MAX_SIDE, MAX_SIDE, MAX_IMAGE_THRESHOLDS)):
        if value > high:
            raise ValueError(f"image {name} must be at most {high}, got {value}")
    if math.prod(image) != in_features:
        raise ValueError(f"the image {image} holds {math.prod(image)} bits, the model reads {in_features}")
    channels = image[0] * image[3]
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or set(block) != set(BLOCK_KEYS) or not all(map(_is_int, block.values())):
            raise ValueError(f"conv block {i + 1} must have exactly the integer keys {', '.join(BLOCK_KEYS)}")
        for key, (low, high) in _STORED_LIMITS.items():
            if not low <= block[key] <= high:
                raise ValueError(f"conv block {i + 1}: {key} must be between {low} and {high}, got {block[key]}")
        if channels % block["groups"] or block["channels"] % block["groups"]:
            raise ValueError(f"conv block {i + 1}: {block['groups']} groups do not divide its channels")
        channels = block["channels"]
    stack_shapes(image, blocks)
    if block_gates(image, blocks) > MAX_STACK_GATES:
        raise ValueError(f"the conv stack unrolls to more than {MAX_STACK_GATES:,} gates")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
