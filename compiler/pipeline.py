"""The pass runner: composes passes, validates after each, records statistics, optionally checks
equivalence before/after, and iterates the local rewrites to a fixed point."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from . import passes, truth
from .errors import LgnError, ParameterError
from .ir import GateGraph
from .lutmap import merge_luts
from .verify import compare_graphs

Pass = Callable[[GateGraph], GateGraph]

# Every pass on its own (tests check each one's contract).
ALL_PASSES: tuple[Pass, ...] = (
    passes.propagate_constants,
    passes.reduce_support,
    passes.collapse_wires,
    passes.absorb_inverters,
    passes.rewrite_locally,
    passes.hash_structure,
    passes.eliminate_dead,
)
# One round of simplification: the four local rewrites fused into one sweep, then merging of
# duplicate gates, then removal of what no output reads.
ROUND: tuple[Pass, ...] = (passes.rewrite_locally, passes.hash_structure, passes.eliminate_dead)


@dataclasses.dataclass(frozen=True)
class PassStat:
    name: str
    gates_in: int
    gates_out: int
    seconds: float


class EquivalenceError(LgnError):
    """A pass changed what the graph computes (a bug in the pass; the message names it)."""


def run_passes(
    graph: GateGraph, steps: Sequence[Pass], check: bool = False, stats: list[PassStat] | None = None
) -> GateGraph:
    """Apply ``steps`` in order. Each result is validated; with ``check`` each is also compared with
    its input by the evaluator (exhaustively for <= 16 inputs). Statistics are appended to ``stats``."""
    for step in steps:
        start = time.perf_counter()
        result = step(graph)
        seconds = time.perf_counter() - start
        result.validate()
        name = getattr(step, "__name__", repr(step))
        if stats is not None:
            stats.append(PassStat(name, graph.n_gates, result.n_gates, seconds))
        if result.n_gates > graph.n_gates:
            raise EquivalenceError(f"pass {name} grew the graph from {graph.n_gates} to {result.n_gates} gates")
        if check:
            report = compare_graphs(graph, result, n_random=2_000)
            if not report.ok:
                raise EquivalenceError(f"pass {name} changed the outputs: {report.summary()}")
        graph = result
    return graph


def simplify(
    graph: GateGraph,
    lut: int | None = None,
    check: bool = False,
    stats: list[PassStat] | None = None,
    max_rounds: int = 20,
) -> GateGraph:
    """Run rounds of :data:`ROUND` to a fixed point; with ``lut``, merge into LUTs of <= ``lut`` inputs
    and repeat both until neither changes anything. The result computes exactly the same output bits
    (negation flags included) as ``graph``, and simplifying it again returns it unchanged.
    """
    if lut is not None and not 1 <= lut <= truth.MAX_ARITY:
        raise ParameterError(f"lut must be between 1 and {truth.MAX_ARITY}, got {lut}", "lut")
    while True:
        graph = _rounds_to_fixed_point(graph, check, stats, max_rounds)
        if lut is None:
            return graph
        merged = run_passes(graph, [_lut_pass(lut)], check=check, stats=stats)
        if merged is graph:
            return graph
        # Merged cones can collapse (reconvergent logic can make a LUT constant or a wire): go again.
        graph = merged


def _lut_pass(k: int) -> Pass:
    def merge(graph: GateGraph) -> GateGraph:
        return merge_luts(graph, k)

    merge.__name__ = f"merge_luts(K={k})"
    return merge


def _rounds_to_fixed_point(graph: GateGraph, check: bool, stats: list[PassStat] | None, max_rounds: int) -> GateGraph:
    """A round whose structural hashing merges nothing ends the loop: the local rewrite had already
    settled every gate, hashing without merges only reorders fan-ins, and dropping dead gates opens
    no new rewrite."""
    for _ in range(max_rounds):
        round_stats: list[PassStat] = []
        graph = run_passes(graph, ROUND, check=check, stats=round_stats)
        if stats is not None:
            stats.extend(round_stats)
        hashing = round_stats[1]
        if hashing.gates_in == hashing.gates_out:
            break
    return graph


def support_sizes(graph: GateGraph) -> np.ndarray:
    """``int[n_gates]``: how many variables each gate's table depends on."""
    k = graph.arity
    sizes = np.zeros(graph.n_gates, dtype=np.int64)
    for slot in range(k):
        sizes += truth.depends_on(graph.tables, slot, k)
    return sizes


def pass_through_count(graph: GateGraph) -> int:
    """Gates that are a wire or an inverter of one fan-in (the literature leaves these out of counts)."""
    return int((support_sizes(graph) == 1).sum())
