"""LUT merging: fold gates into their consumers while the merged support stays <= K.

A cut-based LUT mapper. Every mapped LUT is a cone of original gates with at most K leaves; its table
comes from simulating the cone. A gate folded into the cones of all its consumers disappears (it is
duplicated into each). The mapping is chosen as ABC's ``if`` does: priority cuts (a few per gate)
ranked by depth then area flow, a cover from the outputs, then rounds of exact-area recovery that
never make the mapping deeper.

Unlike the other passes this one walks the graph gate by gate in Python (cut enumeration does not
vectorise well); it is off by default and meant for FPGA targets (K = 6).
"""

from __future__ import annotations

import numpy as np

from .errors import LgnError
from .ir import GateGraph
from .truth import MAX_ARITY, VAR_MASKS

CUTS_PER_NODE = 8
AREA_RECOVERY_ROUNDS = 3
_ALL = (1 << 64) - 1
_VAR_WORDS = [int(v) for v in VAR_MASKS]


def merge_luts(graph: GateGraph, k: int = 6) -> GateGraph:
    """Map ``graph`` into LUTs of at most ``k`` inputs, again and again while the count falls.

    Returns ``graph`` itself when mapping does not lower the gate count, so the pass never adds gates
    and is idempotent. Raises :class:`LgnError` if some gate reads more than ``k`` distinct nodes
    (merging never splits a gate).
    """
    if not 1 <= k <= MAX_ARITY:
        raise LgnError(f"LUT size must be 1..{MAX_ARITY}, got {k}")
    best = graph
    while True:  # each round removes at least one gate, so this ends
        mapped = _map_once(best, k)
        if mapped.n_gates >= best.n_gates:
            break
        best = mapped
    return best


def _map_once(graph: GateGraph, k: int) -> GateGraph:
    first = graph.first_gate
    fanins = graph.fanins.tolist()
    cuts = _enumerate_cuts(graph, fanins, k)
    best_cut = [c[0] if c else None for c in cuts]
    for _ in range(AREA_RECOVERY_ROUNDS):
        refs = _cover(graph, best_cut)
        required = _required_times(graph, best_cut, refs)
        _recover_area(graph, cuts, best_cut, refs, required)
    refs = _cover(graph, best_cut)
    chosen = [n for n in range(first, graph.n_nodes) if refs[n] > 0]
    return _build(graph, fanins, best_cut, chosen, k)


def _enumerate_cuts(graph: GateGraph, fanins: list[list[int]], k: int) -> list[list[frozenset]]:
    """Priority cuts: for each gate, the best few K-feasible cuts, the first of least depth (LUT
    levels), ties broken by area flow.

    Depth first is deliberate: on wide random and trained nets, mapping for depth and then recovering
    area under that depth gives fewer LUTs than mapping for area flow alone (it duplicates shared
    gates into both consumers instead of keeping them as roots), as ABC's ``if`` does.
    """
    first = graph.first_gate
    fanout = np.bincount(graph.fanins.ravel(), minlength=graph.n_nodes)
    fanout += np.bincount(graph.outputs, minlength=graph.n_nodes)
    fanout = fanout.tolist()
    flow = [0.0] * graph.n_nodes  # area flow of each node's best cut
    depth = [0] * graph.n_nodes
    cuts: list[list[frozenset]] = [[] for _ in range(graph.n_nodes)]
    limit = 4 * CUTS_PER_NODE
    for gate, row in enumerate(fanins):
        node = first + gate
        merged: set[frozenset] = {frozenset()}
        for s in sorted({s for s in row if s >= 2}):
            options = [frozenset((s,))] + cuts[s]
            grown = set()
            for a in merged:
                for b in options:
                    c = a | b
                    if len(c) <= k:
                        grown.add(c)
            merged = grown if len(grown) <= limit else set(sorted(grown, key=lambda c: (len(c), sorted(c)))[:limit])
        if not merged:
            width = len({s for s in row if s >= 2})
            raise LgnError(
                f"gate {gate} (node {node}) reads {width} distinct nodes, more than the LUT size {k}; "
                "LUT merging does not split gates"
            )
        scored = sorted(
            (
                1 + max((depth[leaf] for leaf in cut), default=0),
                1.0 + sum(flow[leaf] for leaf in cut),
                len(cut),
                sorted(cut),
                cut,
            )
            for cut in merged
        )
        cuts[node] = [c[4] for c in scored[:CUTS_PER_NODE]]
        depth[node] = scored[0][0]
        flow[node] = scored[0][1] / max(1, fanout[node])
    return cuts


def _cover(graph: GateGraph, best_cut: list) -> list[int]:
    """Reference counts of the mapping that the outputs need: refs[n] > 0 means n is a LUT root."""
    first = graph.first_gate
    refs = [0] * graph.n_nodes
    for out in graph.outputs.tolist():
        refs[out] += 1
    for node in range(graph.n_nodes - 1, first - 1, -1):
        if refs[node]:
            for leaf in best_cut[node]:
                refs[leaf] += 1
    return refs


def _reference(node: int, best_cut: list, refs: list[int], first: int) -> int:
    """Add the LUTs that implementing ``node`` with its cut newly needs; return how many."""
    added, stack = 0, [node]
    while stack:
        added += 1
        for leaf in best_cut[stack.pop()]:
            if leaf >= first:
                refs[leaf] += 1
                if refs[leaf] == 1:
                    stack.append(leaf)
    return added


def _dereference(node: int, best_cut: list, refs: list[int], first: int) -> int:
    """Undo :func:`_reference`; return how many LUTs it frees."""
    freed, stack = 0, [node]
    while stack:
        freed += 1
        for leaf in best_cut[stack.pop()]:
            if leaf >= first:
                refs[leaf] -= 1
                if refs[leaf] == 0:
                    stack.append(leaf)
    return freed


def _required_times(graph: GateGraph, best_cut: list, refs: list[int]) -> list[int]:
    """Latest LUT level each node may sit at without making the mapping deeper than it is."""
    first = graph.first_gate
    arrival = [0] * graph.n_nodes
    for node in range(first, graph.n_nodes):
        if best_cut[node] is not None:
            arrival[node] = 1 + max((arrival[leaf] for leaf in best_cut[node]), default=0)
    target = max((arrival[o] for o in graph.outputs.tolist()), default=0)
    required = [target] * graph.n_nodes
    for node in range(graph.n_nodes - 1, first - 1, -1):
        if refs[node]:
            for leaf in best_cut[node]:
                required[leaf] = min(required[leaf], required[node] - 1)
    return required


def _recover_area(graph: GateGraph, cuts: list, best_cut: list, refs: list[int], required: list[int]) -> None:
    """Exact local area: give each gate the cut that adds the fewest LUTs given the rest of the
    mapping, among the cuts that keep it within its required level."""
    first = graph.first_gate
    arrival = [0] * graph.n_nodes
    for node in range(first, graph.n_nodes):
        options = cuts[node]
        if len(options) >= 2:
            used = refs[node] > 0
            if used:
                _dereference(node, best_cut, refs, first)
            best_key, best = None, best_cut[node]
            for cut in options:
                level = 1 + max((arrival[leaf] for leaf in cut), default=0)
                if level > required[node]:
                    continue
                best_cut[node] = cut
                area = _reference(node, best_cut, refs, first)
                _dereference(node, best_cut, refs, first)
                if best_key is None or (area, level) < best_key:
                    best_key, best = (area, level), cut
            best_cut[node] = best
            if used:
                _reference(node, best_cut, refs, first)
        arrival[node] = 1 + max((arrival[leaf] for leaf in best_cut[node]), default=0)


def _build(graph: GateGraph, fanins: list[list[int]], best_cut: list, chosen: list[int], k: int) -> GateGraph:
    first = graph.first_gate
    new_id = {n: n for n in range(first)}
    for i, n in enumerate(chosen):
        new_id[n] = first + i
    tables, rows = [], []
    for n in chosen:
        leaves = sorted(best_cut[n])
        tables.append(_cone_table(graph, fanins, n, leaves) & ((1 << (1 << k)) - 1 if k < 6 else _ALL))
        rows.append([new_id[leaf] for leaf in leaves] + [0] * (k - len(leaves)))
    return graph.replace(
        fanins=np.asarray(rows, dtype=np.int64).reshape(-1, k),
        tables=np.asarray(tables, dtype=np.uint64),
        outputs=np.asarray([new_id[o] for o in graph.outputs.tolist()], dtype=np.int64),
    )


def _cone_table(graph: GateGraph, fanins: list[list[int]], root: int, leaves: list[int]) -> int:
    """The truth table of ``root`` as a function of ``leaves`` (leaf i is variable i)."""
    first, arity = graph.first_gate, graph.arity
    value = {0: 0, 1: _ALL}
    value.update({leaf: _VAR_WORDS[i] for i, leaf in enumerate(leaves)})
    cone, stack = set(), [root]
    while stack:
        n = stack.pop()
        if n in value or n in cone:
            continue
        cone.add(n)
        stack.extend(fanins[n - first])
    for n in sorted(cone):
        value[n] = _lut_words(int(graph.tables[n - first]), arity, [value[s] for s in fanins[n - first]])
    return value[root]


def _lut_words(table: int, arity: int, inputs: list[int]) -> int:
    """Bit-parallel LUT on Python ints: the multiplexer tree of the evaluator, one 64-bit word."""
    candidates = [_ALL if (table >> m) & 1 else 0 for m in range(1 << arity)]
    for x in inputs:
        candidates = [lo ^ ((lo ^ hi) & x) for lo, hi in zip(candidates[0::2], candidates[1::2])]
    return candidates[0]


__all__ = ["merge_luts"]
