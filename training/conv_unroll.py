"""A discretized conv stack (:class:`LogicTreeConv`, :class:`OrPool`) unrolled into IR gates: every gate of
every tree at every position, and every OR of every pooling window, as 2-input LUTs in the IR's conventions
(``compiler.ir``: node 0 is constant 0; a table's bit m is the gate's value at corner m, fan-in 0 the least
significant bit, the tables ``LogicLayer.truth_tables`` gives and ``export.to_graph`` writes).

Padding reads node 0, the IR's constant 0: a gate at the border reads it like any other fan-in, and the
compiler's constant propagation folds it away. Nothing here makes a node for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .conv import OR_TABLE, LogicTreeConv, OrPool

CONSTANT_0 = 0  # the IR's node 0


@dataclass(frozen=True)
class Unrolled:
    """The gates a conv stack appends after the graph's nodes ``< first_gate``.

    ``fanins int64[n, 2]`` and ``tables uint64[n]`` are gates ``first_gate .. first_gate + n - 1`` in order
    (topological: each reads smaller ids); ``outputs int64[C * H * W]`` are the node ids of the stack's output
    bits in the order ``torch.flatten(1)`` gives a ``[B, C, H, W]`` output (channel, then row, then column);
    ``shape`` is ``(C, H, W)``.
    """

    first_gate: int
    fanins: np.ndarray
    tables: np.ndarray
    outputs: np.ndarray
    shape: tuple[int, int, int]

    @property
    def next_node(self) -> int:
        """The id the next gate after the stack gets."""
        return self.first_gate + len(self.tables)


class _Gates:
    """Gates appended in order; ``add`` returns their node ids."""

    def __init__(self, first_gate: int):
        self.first_gate = self.next_node = first_gate
        self.fanins: list[np.ndarray] = []
        self.tables: list[np.ndarray] = []

    def add(self, fanins: np.ndarray, tables: np.ndarray) -> np.ndarray:
        """``fanins int[..., 2]``, ``tables uint64[...]`` (same leading shape) -> node ids of that shape."""
        ids = self.next_node + np.arange(tables.size, dtype=np.int64).reshape(tables.shape)
        self.fanins.append(fanins.reshape(-1, 2).astype(np.int64))
        self.tables.append(tables.reshape(-1).astype(np.uint64))
        self.next_node += tables.size
        return ids


def unroll(layers: Sequence[nn.Module], inputs: np.ndarray, first_gate: int) -> Unrolled:
    """Unroll ``layers`` (``LogicTreeConv`` and ``OrPool``, in order, discretized as their ``discrete``
    computes) over input bits whose node ids are ``inputs int[C, H, W]`` (for bit ``(c, y, x)``), appending
    gates from node id ``first_gate`` on (every id in ``inputs`` must be smaller)."""
    nodes = np.asarray(inputs, dtype=np.int64)
    if nodes.ndim != 3:
        raise ValueError(f"inputs must be node ids [channels, height, width], got shape {nodes.shape}")
    gates = _Gates(first_gate)
    for layer in layers:
        if isinstance(layer, LogicTreeConv):
            nodes = _unroll_conv(layer, nodes, gates)
        elif isinstance(layer, OrPool):
            nodes = _unroll_pool(layer, nodes, gates)
        else:
            raise TypeError(f"cannot unroll a {type(layer).__name__}: only LogicTreeConv and OrPool")
    fanins = np.concatenate(gates.fanins) if gates.fanins else np.zeros((0, 2), dtype=np.int64)
    tables = np.concatenate(gates.tables) if gates.tables else np.zeros(0, dtype=np.uint64)
    shape = (int(nodes.shape[0]), int(nodes.shape[1]), int(nodes.shape[2]))
    return Unrolled(first_gate, fanins, tables, nodes.reshape(-1), shape)


def _unroll_conv(conv: LogicTreeConv, nodes: np.ndarray, gates: _Gates) -> np.ndarray:
    """Each level's gates at every position, gate-major (gate g at position l is ``g * L + l``)."""
    channels, height, width = nodes.shape
    if channels != conv.in_channels:
        raise ValueError(f"the conv expects {conv.in_channels} channels, the stack gives {channels}")
    out_h, out_w = conv.output_size(height, width)
    padded = np.append(nodes.reshape(-1), CONSTANT_0)  # field_index points past the end for padding
    values = padded[conv.field_index(height, width)]  # [F, L]: the node each field entry reads at each position
    with torch.no_grad():
        for level in conv.levels:
            wiring = level.selected_wiring().cpu().numpy()
            tables = level.truth_tables().cpu().numpy().astype(np.int64).view(np.uint64)
            fanins = np.stack([values[wiring[:, 0]], values[wiring[:, 1]]], axis=-1)  # [gates, L, 2]
            values = gates.add(fanins, np.broadcast_to(tables[:, None], fanins.shape[:2]))
    return values.reshape(conv.out_channels, out_h, out_w)


def _unroll_pool(pool: OrPool, nodes: np.ndarray, gates: _Gates) -> np.ndarray:
    """A balanced tree of 2-input ORs per window (k * k - 1 gates, depth ceil(log2(k * k)))."""
    k = pool.kernel_size
    channels, height, width = nodes.shape
    out_h, out_w = pool.output_size(height, width)
    windows = nodes[:, : out_h * k, : out_w * k].reshape(channels, out_h, k, out_w, k).transpose(0, 1, 3, 2, 4)
    terms = list(windows.reshape(channels, out_h, out_w, k * k).transpose(3, 0, 1, 2))  # k * k of [C, H', W']
    while len(terms) > 1:
        paired = [
            gates.add(np.stack([a, b], axis=-1), np.full(a.shape, OR_TABLE, dtype=np.uint64))
            for a, b in zip(terms[0::2], terms[1::2])
        ]
        terms = paired + terms[len(paired) * 2 :]  # an odd one out waits for the next round
    return terms[0]
