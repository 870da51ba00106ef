"""The gate-graph IR: a flat, topologically ordered network of k-input LUTs (k <= 6).

Node ids: 0 is constant 0, 1 is constant 1, ``2 .. 2 + n_inputs - 1`` are the primary inputs, then one
node per gate in order. Gate ``i`` is node ``first_gate + i``; its fan-ins are node ids smaller than its
own. ``fanins`` is ``int32[n_gates, arity]``, ``tables`` is ``uint64[n_gates]`` (bit order: see
:mod:`compiler.truth`); unused slots point at node 0 and the table does not depend on them.

The outputs are node ids with a negation flag each, split into contiguous class groups by
``class_offsets`` (``int32[n_classes + 1]``): class c owns outputs ``class_offsets[c]:class_offsets[c+1]``
and its GroupSum score is the number of its outputs that are 1 (after negation).

Every array is read-only; build graphs with :meth:`GateGraph.build`, which validates them.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property

import numpy as np

from .errors import GraphError
from .names import Names
from .truth import MAX_ARITY, table_mask

FIRST_INPUT = 2
# What every backend can hold (docs/ir.md): node ids are int32 in the C library and the kernels; an input
# or feature count also sizes Verilog ports and arrays that are allocated before any gate is read.
MAX_INPUTS = 1 << 24
MAX_FEATURES = 1 << 24
MAX_NODES = (1 << 31) - 1


@dataclasses.dataclass(frozen=True, eq=False)
class Encoder:
    """Thermometer encoder metadata: input bit i is ``raw[feature[i]] > threshold[i]``.

    Thresholds are in the units of the raw features the user passes (e.g. 0..255 pixels).
    """

    n_features: int
    feature: np.ndarray  # int32[n_inputs]
    threshold: np.ndarray  # float64[n_inputs]


@dataclasses.dataclass(frozen=True, eq=False)
class GateGraph:
    """A validated, immutable gate graph. See the module docstring for the layout."""

    n_inputs: int
    fanins: np.ndarray
    tables: np.ndarray
    outputs: np.ndarray
    output_negated: np.ndarray
    class_offsets: np.ndarray
    encoder: Encoder | None = None
    names: Names | None = None  # what the features and classes are called; never changes what is computed

    @staticmethod
    def build(
        n_inputs: int,
        fanins,
        tables,
        outputs,
        output_negated=None,
        class_offsets=None,
        encoder: Encoder | None = None,
        names: Names | None = None,
    ) -> GateGraph:
        """Convert to the IR's dtypes, freeze, validate and return a graph.

        ``output_negated`` defaults to all False; ``class_offsets`` to one class holding every output.
        Raises :class:`GraphError` naming the first broken invariant.
        """
        try:
            n_inputs = _as_count(n_inputs, "n_inputs", MAX_INPUTS)
            fanins = _frozen(np.asarray(fanins), np.int32, "fanins")
            if fanins.ndim == 1 and fanins.size == 0:
                fanins = _frozen(fanins.reshape(0, 2), np.int32, "fanins")
            tables = _frozen(np.asarray(tables), np.uint64, "tables")
            outputs = _frozen(np.asarray(outputs), np.int32, "outputs")
            if output_negated is None:
                output_negated = np.zeros(len(outputs), dtype=bool)
            output_negated = _frozen(np.asarray(output_negated), bool, "output_negated")
            if class_offsets is None:
                class_offsets = [0, len(outputs)]
            class_offsets = _frozen(np.asarray(class_offsets), np.int32, "class_offsets")
            if encoder is not None:
                encoder = Encoder(
                    _as_count(encoder.n_features, "encoder n_features", MAX_FEATURES),
                    _frozen(np.asarray(encoder.feature), np.int32, "encoder feature"),
                    _frozen(np.asarray(encoder.threshold), np.float64, "encoder threshold"),
                )
        except (TypeError, ValueError, OverflowError) as exc:
            raise GraphError(f"cannot build a gate graph: {exc}") from None
        graph = GateGraph(n_inputs, fanins, tables, outputs, output_negated, class_offsets, encoder, names)
        graph.validate()
        return graph

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def n_gates(self) -> int:
        return int(self.fanins.shape[0])

    @property
    def arity(self) -> int:
        """Fan-in slots per gate (the K of the fan-in matrix)."""
        return int(self.fanins.shape[1])

    @property
    def first_gate(self) -> int:
        """Node id of gate 0."""
        return FIRST_INPUT + self.n_inputs

    @property
    def n_nodes(self) -> int:
        return self.first_gate + self.n_gates

    @property
    def n_outputs(self) -> int:
        return int(self.outputs.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.class_offsets.shape[0]) - 1

    @property
    def class_sizes(self) -> np.ndarray:
        return np.diff(self.class_offsets)

    @cached_property
    def levels(self) -> np.ndarray:
        """``int32[n_gates]``: 1 + the longest path from a constant or input (inputs are level 0)."""
        return gate_levels(self.fanins, self.first_gate)

    @property
    def depth(self) -> int:
        return int(self.levels.max()) if self.n_gates else 0

    @cached_property
    def level_batches(self) -> list[np.ndarray]:
        """Gate indices grouped by level, in level order; no gate reads another of its own batch."""
        return batches_by_level(self.levels)

    def replace(self, **changes) -> GateGraph:
        """A new validated graph with some fields changed."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.update(changes)
        return GateGraph.build(**fields)

    def same_as(self, other: GateGraph) -> bool:
        """Structural equality: the same arrays, bit for bit."""
        mine, theirs = self.encoder, other.encoder
        if (mine is None) != (theirs is None):
            return False
        if (
            mine is not None
            and theirs is not None
            and (
                mine.n_features != theirs.n_features
                or not np.array_equal(mine.feature, theirs.feature)
                or not np.array_equal(mine.threshold, theirs.threshold)
            )
        ):
            return False
        return (
            self.names == other.names
            and self.n_inputs == other.n_inputs
            and self.fanins.shape == other.fanins.shape
            and np.array_equal(self.fanins, other.fanins)
            and np.array_equal(self.tables, other.tables)
            and np.array_equal(self.outputs, other.outputs)
            and np.array_equal(self.output_negated, other.output_negated)
            and np.array_equal(self.class_offsets, other.class_offsets)
        )

    # ---- invariants --------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`GraphError` unless every invariant of the IR holds (docs/ir.md)."""
        _check_gates(self)
        _check_outputs(self)
        if self.encoder is not None:
            _check_encoder(self)
        if self.names is not None:
            if not isinstance(self.names, Names):
                raise GraphError(f"names must be a Names, got {type(self.names).__name__}")
            if self.names.features and self.encoder is None:
                raise GraphError("feature names need an encoder (they name its raw features)")
            self.names.check(self.encoder.n_features if self.encoder else None, self.n_classes)


def _as_count(value, name: str, limit: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= int(value) <= limit:
        raise ValueError(f"{name} must be between 0 and {limit}, got {value}")
    return int(value)


def _frozen(array: np.ndarray, dtype, name: str) -> np.ndarray:
    """``array`` converted exactly to ``dtype`` (no wrap-around, no float truncation), read-only."""
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    target = np.dtype(dtype)
    if target.kind in "iu" and array.size:
        if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
            raise ValueError(f"{name} must hold integers")
        if array.dtype.kind == "b":
            pass
        else:
            info = np.iinfo(target)
            lo, hi = array.min(), array.max()
            if (array.dtype.kind == "i" and lo < info.min) or hi > info.max:
                raise ValueError(f"{name} holds values outside {target} ({lo}..{hi})")
    if target.kind == "b" and array.dtype.kind != "b":
        if array.size and not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must hold booleans")
    out = np.ascontiguousarray(array, dtype=target).copy()
    out.setflags(write=False)
    return out


def _check_gates(g: GateGraph) -> None:
    f, t = g.fanins, g.tables
    if f.ndim != 2 or not 1 <= f.shape[1] <= MAX_ARITY:
        raise GraphError(f"fanins must have shape (n_gates, K) with 1 <= K <= 6, got {f.shape}")
    if t.ndim != 1 or t.shape[0] != f.shape[0]:
        raise GraphError(f"tables must have shape ({f.shape[0]},), got {t.shape}")
    if g.n_nodes > MAX_NODES:
        raise GraphError(f"{g.n_nodes} nodes exceed the {MAX_NODES} that 32-bit node ids can name")
    if not g.n_gates:
        return
    gate_nodes = np.arange(g.first_gate, g.n_nodes, dtype=np.int64)
    bad = (f < 0) | (f >= gate_nodes[:, None])
    if bad.any():
        i, k = (int(v) for v in np.argwhere(bad)[0])
        node, src = g.first_gate + i, int(f[i, k])
        why = "is negative" if src < 0 else "is not before it (fan-ins must precede the gate: no cycles)"
        raise GraphError(f"gate {i} (node {node}): fan-in {k} reads node {src}, which {why}")
    extra = t & ~table_mask(g.arity)
    if extra.any():
        i = int(np.flatnonzero(extra)[0])
        raise GraphError(f"gate {i} (node {g.first_gate + i}): truth table {int(t[i]):#x} has bits beyond 2^{g.arity}")


def _check_outputs(g: GateGraph) -> None:
    o, neg, off = g.outputs, g.output_negated, g.class_offsets
    if o.ndim != 1 or neg.shape != o.shape:
        raise GraphError(f"outputs {o.shape} and output_negated {neg.shape} must be equal-length vectors")
    if o.size and (o.min() < 0 or o.max() >= g.n_nodes):
        i = int(np.flatnonzero((o < 0) | (o >= g.n_nodes))[0])
        raise GraphError(f"output {i} reads node {int(o[i])}, outside 0..{g.n_nodes - 1}")
    if off.ndim != 1 or off.size < 2:
        raise GraphError("class_offsets must list at least one class group (n_classes + 1 offsets)")
    if off[0] != 0 or off[-1] != o.size:
        raise GraphError(
            f"class groups must cover the {o.size} outputs exactly: offsets run {int(off[0])}..{int(off[-1])}"
        )
    sizes = np.diff(off)
    if (sizes <= 0).any():
        c = int(np.flatnonzero(sizes <= 0)[0])
        raise GraphError(f"class group {c} is empty or reversed (offsets {int(off[c])}, {int(off[c + 1])})")


def _check_encoder(g: GateGraph) -> None:
    e = g.encoder
    assert e is not None  # callers check
    if e.feature.shape != (g.n_inputs,) or e.threshold.shape != (g.n_inputs,):
        raise GraphError(
            f"encoder must give a feature and a threshold for each of the {g.n_inputs} inputs, got "
            f"{e.feature.shape} and {e.threshold.shape}"
        )
    if g.n_inputs and (e.feature.min() < 0 or e.feature.max() >= e.n_features):
        i = int(np.flatnonzero((e.feature < 0) | (e.feature >= e.n_features))[0])
        raise GraphError(f"encoder: input {i} reads feature {int(e.feature[i])} of {e.n_features}")
    if not np.isfinite(e.threshold).all():
        i = int(np.flatnonzero(~np.isfinite(e.threshold))[0])
        raise GraphError(f"encoder: input {i} has a non-finite threshold")


def gate_levels(fanins: np.ndarray, first_gate: int) -> np.ndarray:
    """Longest-path level of every gate (constants and inputs are level 0).

    Vectorised rounds settle every gate whose fan-ins are all settled; a net of depth D costs D rounds.
    Very deep, narrow graphs fall back to one ordered pass (ids are topological, so it is exact).
    """
    n_gates = fanins.shape[0]
    level = np.zeros(first_gate + n_gates, dtype=np.int32)
    settled = np.zeros(first_gate + n_gates, dtype=bool)
    settled[:first_gate] = True
    pending = np.arange(n_gates)
    rounds = 0
    while pending.size:
        rounds += 1
        if rounds > 64 and pending.size * rounds > 4 * n_gates + 10_000:
            _levels_in_order(fanins, first_gate, level, pending)
            break
        src = fanins[pending]
        ready = settled[src].all(axis=1)
        done = pending[ready]
        level[first_gate + done] = level[src[ready]].max(axis=1) + 1
        settled[first_gate + done] = True
        pending = pending[~ready]
    return level[first_gate:].copy()


def _levels_in_order(fanins: np.ndarray, first_gate: int, level: np.ndarray, pending: np.ndarray) -> None:
    rows = fanins[pending].tolist()
    lv = level.tolist()
    for gate, row in zip(pending.tolist(), rows):
        lv[first_gate + gate] = max(lv[s] for s in row) + 1
    level[:] = lv


def batches_by_level(levels: np.ndarray) -> list[np.ndarray]:
    """Gate indices split by level, ascending; indices within a batch ascend."""
    if levels.size == 0:
        return []
    order = np.argsort(levels, kind="stable")
    counts = np.bincount(levels)[1:]
    return [b for b in np.split(order, np.cumsum(counts)[:-1]) if b.size]
