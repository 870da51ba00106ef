"""Random layered networks shaped like trained DLGNs, for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from . import truth
from .errors import LgnError
from .ir import FIRST_INPUT, GateGraph


def random_tables(rng: np.random.Generator, n: int, arity: int) -> np.ndarray:
    """``n`` random tables over ``arity`` variables that depend on every variable (non-degenerate)."""
    tables = np.zeros(n, dtype=np.uint64)
    todo = np.arange(n)
    width = 1 << arity
    while todo.size:
        bits = rng.integers(0, 2, size=(todo.size, width), dtype=np.uint64)
        t = (bits << np.arange(width, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
        ok = np.ones(todo.size, dtype=bool)
        for k in range(arity):
            ok &= truth.depends_on(t, k, arity)
        tables[todo[ok]] = t[ok]
        todo = todo[~ok]
    return tables


def layer_wiring(rng: np.random.Generator, n_in: int, n_out: int, arity: int) -> np.ndarray:
    """``int[n_out, arity]`` indices into the previous layer: a random permutation of the
    ``arity * n_out`` slots modulo ``n_in``, so every input is used when ``arity * n_out >= n_in``.

    Where the layer is wide enough, a gate that drew the same input twice trades one of those slots
    with a random other gate; trades keep the multiset of slots, so no input loses its reader.
    """
    wiring = (rng.permutation(arity * n_out) % n_in).reshape(n_out, arity)
    if n_in < 2 * arity or arity == 1:
        return wiring
    for _ in range(64):
        ordered = np.sort(wiring, axis=1)
        bad = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if bad.size == 0:
            break
        for gate in bad.tolist():
            row = wiring[gate]
            repeats = [k for k in range(arity) if row[k] in row[:k]]
            if not repeats:  # an earlier trade in this round already fixed it
                continue
            slot = repeats[0]
            other, other_slot = int(rng.integers(n_out)), int(rng.integers(arity))
            a, b = row[slot], wiring[other, other_slot]
            if other != gate and b not in row and a not in np.delete(wiring[other], other_slot):
                wiring[gate, slot], wiring[other, other_slot] = b, a
    return wiring


def random_layered(
    n_inputs: int,
    layers: int,
    width: int,
    arity: int = 2,
    classes: int = 10,
    pass_through: float = 0.0,
    seed: int = 0,
) -> GateGraph:
    """A random ``layers x width`` network of ``arity``-input gates over ``n_inputs`` inputs.

    A fraction ``pass_through`` of the gates are wires or inverters of one fan-in (as trained nets
    have many); the others are random non-degenerate functions of all their fan-ins. The last layer
    is split into ``classes`` equal groups for GroupSum, so ``width`` must be a multiple of ``classes``.
    """
    if n_inputs < 1 or layers < 1 or width < 1:
        raise LgnError("--inputs, --layers and --width must be at least 1")
    if not 1 <= arity <= truth.MAX_ARITY:
        raise LgnError(f"--arity must be 1..{truth.MAX_ARITY}, got {arity}")
    if classes < 1 or width % classes:
        raise LgnError(f"--width ({width}) must be a positive multiple of --classes ({classes})")
    if not 0.0 <= pass_through <= 1.0:
        raise LgnError(f"--pass-through must be a fraction in [0, 1], got {pass_through}")
    rng = np.random.default_rng(seed)
    fanins, tables = [], []
    prev_start, prev_count = FIRST_INPUT, n_inputs
    next_node = FIRST_INPUT + n_inputs
    for _ in range(layers):
        fanins.append(prev_start + layer_wiring(rng, prev_count, width, arity))
        t = random_tables(rng, width, arity)
        wires = rng.random(width) < pass_through
        negate = rng.random(width) < 0.5
        wire_tables = np.where(
            negate, ~truth.projection(0, arity) & truth.table_mask(arity), truth.projection(0, arity)
        )
        tables.append(np.where(wires, wire_tables, t))
        prev_start, prev_count = next_node, width
        next_node += width
    outputs = np.arange(prev_start, prev_start + width)
    return GateGraph.build(
        n_inputs=n_inputs,
        fanins=np.concatenate(fanins),
        tables=np.concatenate(tables),
        outputs=outputs,
        class_offsets=np.arange(0, width + 1, width // classes),
    )
