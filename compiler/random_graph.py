"""Random layered networks shaped like trained DLGNs: ``lgn random``, the tests and the benchmarks."""

from __future__ import annotations

import numpy as np

from . import truth
from .errors import ParameterError
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


def random_wiring(rng: np.random.Generator, n_in: int, n_out: int, arity: int) -> np.ndarray:
    """``int[n_out, arity]`` indices into the previous layer: a random permutation of the ``arity * n_out``
    slots modulo ``n_in`` (every input is read when ``arity * n_out >= n_in``; a gate may read one input
    twice, as trained networks' gates sometimes do)."""
    return (rng.permutation(arity * n_out) % n_in).reshape(n_out, arity)


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
        raise ParameterError("inputs, layers and width must be at least 1", "inputs", "layers", "width")
    if not 1 <= arity <= truth.MAX_ARITY:
        raise ParameterError(f"arity must be 1..{truth.MAX_ARITY}, got {arity}", "arity")
    if classes < 1 or width % classes:
        raise ParameterError(f"width ({width}) must be a positive multiple of classes ({classes})", "width", "classes")
    if not 0.0 <= pass_through <= 1.0:
        raise ParameterError(f"pass_through must be a fraction in [0, 1], got {pass_through}", "pass_through")
    rng = np.random.default_rng(seed)
    fanins, tables = [], []
    prev_start, prev_count = FIRST_INPUT, n_inputs
    next_node = FIRST_INPUT + n_inputs
    for _ in range(layers):
        fanins.append(prev_start + random_wiring(rng, prev_count, width, arity))
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
