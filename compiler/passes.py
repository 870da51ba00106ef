"""Simplification passes: pure functions GateGraph -> GateGraph that keep every output bit.

Each pass is idempotent and never adds gates. The local rewrites (constants, support, wires,
inverters) share one engine: a sweep over the levels of the graph that first re-points each gate's
fan-ins at the literals its fan-ins were replaced by (a literal is ``2 * node + negated``; a negated
fan-in is absorbed by flipping that variable of the table), then applies the pass's rule to the whole
level at once, and finally drops replaced gates and renumbers. Outputs follow replacements through
their negation flags, so no constant offset or inverter is ever lost.
"""

from __future__ import annotations

import numpy as np

from . import truth
from .ir import GateGraph


def _remap_literals(lits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Literals -> (nodes, negated), with NOT const0 written as const1 and NOT const1 as const0."""
    nodes, negated = lits >> 1, (lits & 1).astype(bool)
    constant = nodes <= 1
    nodes = np.where(constant, nodes ^ negated, nodes)
    return nodes, negated & ~constant


def _sweep(graph: GateGraph, rule) -> GateGraph:
    """Apply ``rule`` to every level in order, then drop the gates it replaced."""
    k, first = graph.arity, graph.first_gate
    literal = np.arange(graph.n_nodes, dtype=np.int64) * 2
    fanins = graph.fanins.astype(np.int64)
    tables = graph.tables.copy()
    level = np.zeros(graph.n_nodes, dtype=np.int32)
    for gates in graph.level_batches:
        f, t = _absorb_negations(literal[fanins[gates]], tables[gates], k)
        f, t, replacement = rule(f, t, k)
        fanins[gates], tables[gates] = f, t
        # Replacements point at earlier nodes, so levels found in this order are exact.
        level[first + gates] = level[f].max(axis=1) + 1
        replaced = replacement >= 0
        literal[first + gates[replaced]] = replacement[replaced]
    return _compact(graph, fanins, tables, literal, level[first:])


def _absorb_negations(lits: np.ndarray, t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Fan-in literals -> fan-in nodes, with each negated fan-in folded into the table."""
    f, neg = _remap_literals(lits)
    for slot in range(k):
        if neg[:, slot].any():
            t = np.where(neg[:, slot], truth.negate_var(t, slot, k), t)
    return f, t


def _compact(
    graph: GateGraph, fanins: np.ndarray, tables: np.ndarray, literal: np.ndarray, levels: np.ndarray
) -> GateGraph:
    """Keep the gates whose literal is still themselves; renumber fan-ins and outputs.

    ``levels`` are the exact levels of the rewritten gates; the result keeps them (no recomputation).
    """
    first = graph.first_gate
    gate_nodes = np.arange(first, graph.n_nodes)
    keep = literal[gate_nodes] == 2 * gate_nodes
    new_id = np.arange(graph.n_nodes, dtype=np.int64)
    new_id[first:] = first + np.cumsum(keep) - 1
    out_nodes, out_neg = _remap_literals(literal[graph.outputs])
    result = graph.replace(
        fanins=new_id[fanins[keep]],
        tables=tables[keep],
        outputs=new_id[out_nodes],
        output_negated=graph.output_negated ^ out_neg,
    )
    result.__dict__["levels"] = levels[keep]  # seeds the cached property
    return result


def _constant_literal(tables: np.ndarray, k: int) -> np.ndarray:
    """Literal 0 (const 0) or 2 (const 1) where a table is constant, else -1."""
    out = np.full(tables.shape, -1, dtype=np.int64)
    out[tables == 0] = 0
    out[tables == truth.table_mask(k)] = 2
    return out


def _constants_rule(f, t, k):
    for slot in range(k):
        t = np.where(f[:, slot] == 1, truth.cofactor(t, slot, 1, k), t)
        t = np.where(f[:, slot] == 0, truth.cofactor(t, slot, 0, k), t)
        f[:, slot] = np.where(f[:, slot] == 1, 0, f[:, slot])
    return f, t, _constant_literal(t, k)


def _support_rule(f, t, k):
    for i in range(k):
        for j in range(i + 1, k):
            same = (f[:, i] == f[:, j]) & (f[:, j] != 0)
            t = np.where(same, truth.merge_vars(t, i, j, k), t)
            f[:, j] = np.where(same, 0, f[:, j])
    for slot in range(k):
        unused = ~truth.depends_on(t, slot, k)
        t = np.where(unused, truth.cofactor(t, slot, 0, k), t)
        f[:, slot] = np.where(unused, 0, f[:, slot])
    return f, t, np.full(len(t), -1, dtype=np.int64)


def _local_rule(f, t, k):
    f, t, _ = _constants_rule(f, t, k)
    f, t, _ = _support_rule(f, t, k)  # merging repeated fan-ins can make a table constant (XOR(a, a))
    constant = _constant_literal(t, k)
    _, _, wire = _single_input_rule(f, t, k, negated=False)
    _, _, inverter = _single_input_rule(f, t, k, negated=True)
    return f, t, np.maximum(np.maximum(constant, wire), inverter)


def _single_input_rule(f, t, k, *, negated: bool):
    replacement = np.full(len(t), -1, dtype=np.int64)
    for slot in range(k):
        pattern = truth.projection(slot, k)
        if negated:
            pattern = ~pattern & truth.table_mask(k)
        hit = (t == pattern) & (replacement < 0)
        replacement[hit] = 2 * f[hit, slot] + int(negated)
    return f, t, replacement


def propagate_constants(graph: GateGraph) -> GateGraph:
    """Cofactor every fan-in that is a constant into the table; replace constant gates by constants."""
    return _sweep(graph, _constants_rule)


def reduce_support(graph: GateGraph) -> GateGraph:
    """Merge repeated fan-ins and point fan-ins the table ignores at constant 0 (unused slots)."""
    return _sweep(graph, _support_rule)


def collapse_wires(graph: GateGraph) -> GateGraph:
    """Replace buffers (f = x_k) by their fan-in."""
    return _sweep(graph, lambda f, t, k: _single_input_rule(f, t, k, negated=False))


def absorb_inverters(graph: GateGraph) -> GateGraph:
    """Replace inverters (f = NOT x_k) by their fan-in; consumers flip that variable, outputs their flag."""
    return _sweep(graph, lambda f, t, k: _single_input_rule(f, t, k, negated=True))


def rewrite_locally(graph: GateGraph) -> GateGraph:
    """All four local rewrites (constants, support, wires, inverters) in one sweep.

    A gate is rewritten after its fan-ins have settled, so one sweep reaches the fixed point of all
    four; the pass runner uses this instead of running them one by one.
    """
    return _sweep(graph, _local_rule)


def _sort_fanins(f: np.ndarray, t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Canonical fan-in order: used slots ascending by node id, unused (node 0) slots last."""
    key = np.where(f == 0, np.iinfo(np.int64).max, f)
    for rnd in range(k):  # odd-even transposition sort: k rounds sort k slots
        for i in range(rnd % 2, k - 1, 2):
            swap = key[:, i] > key[:, i + 1]
            if swap.any():
                t = np.where(swap, truth.swap_vars(t, i, i + 1, k), t)
                f[swap, i], f[swap, i + 1] = f[swap, i + 1], f[swap, i].copy()
                key[swap, i], key[swap, i + 1] = key[swap, i + 1], key[swap, i].copy()
    return f, t


def hash_structure(graph: GateGraph) -> GateGraph:
    """Sort fan-ins canonically and merge gates that compute the same function (or its complement)
    of the same fan-ins; the first (lowest id) of each group stays.

    Gates that are equal after canonicalisation have equal levels, and merging never moves a gate
    to another level, so one sweep over the exact levels finds every duplicate.
    """
    k, first = graph.arity, graph.first_gate
    mask = truth.table_mask(k)
    literal = np.arange(graph.n_nodes, dtype=np.int64) * 2
    fanins = graph.fanins.astype(np.int64)
    tables = graph.tables.copy()
    for gates in graph.level_batches:
        f, t = _absorb_negations(literal[fanins[gates]], tables[gates], k)
        f, t = _sort_fanins(f, t, k)
        fanins[gates], tables[gates] = f, t
        phase = (t & np.uint64(1)).astype(bool)  # complement pairs share a key: f(0..0) = 0 form
        canonical = np.where(phase, ~t & mask, t)
        order = np.lexsort((canonical, *f.T[::-1]))
        keys = np.column_stack([f[order], canonical[order].view(np.int64)])
        starts = np.ones(len(order), dtype=bool)
        starts[1:] = (keys[1:] != keys[:-1]).any(axis=1)
        group = np.cumsum(starts) - 1
        representative = order[starts][group]  # lexsort is stable: the lowest index leads its group
        dup = order[representative != order]
        rep = representative[representative != order]
        literal[first + gates[dup]] = 2 * (first + gates[rep]) + (phase[dup] != phase[rep])
    return _compact(graph, fanins, tables, literal, graph.levels)


def eliminate_dead(graph: GateGraph) -> GateGraph:
    """Drop gates that no output reaches."""
    first = graph.first_gate
    live = np.zeros(graph.n_nodes, dtype=bool)
    live[graph.outputs] = True
    for gates in reversed(graph.level_batches):
        used = gates[live[first + gates]]
        live[graph.fanins[used].ravel()] = True
    if live[first:].all():
        return graph
    literal = np.arange(graph.n_nodes, dtype=np.int64) * 2
    literal[first:][~live[first:]] = 0  # dead: any value that is not itself marks it for removal
    return _compact(graph, graph.fanins.astype(np.int64), graph.tables.copy(), literal, graph.levels)
