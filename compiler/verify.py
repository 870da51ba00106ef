"""Equivalence checks against the reference evaluator."""

from __future__ import annotations

import dataclasses

import numpy as np

from . import evaluate
from .errors import GraphError
from .ir import GateGraph

EXHAUSTIVE_LIMIT = 16


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The result of comparing two implementations on the same input vectors."""

    vectors: int
    mismatches: int
    exhaustive: bool
    first_mismatch: int | None = None  # index into the vectors, when any

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def summary(self) -> str:
        return f"{self.vectors} vectors, {self.mismatches} mismatches"


def test_vectors(n_inputs: int, n_random: int = 10_000, seed: int = 0) -> tuple[np.ndarray, bool]:
    """Input bits to compare on, and whether they are exhaustive.

    Every assignment when ``n_inputs <= 16``; otherwise the structured vectors (all zeros, all ones,
    each one-hot and each one-cold) followed by ``n_random`` uniformly random ones.
    """
    if n_inputs <= EXHAUSTIVE_LIMIT:
        m = np.arange(1 << n_inputs, dtype=np.int64)
        return ((m[:, None] >> np.arange(n_inputs)) & 1).astype(bool), True
    eye = np.eye(n_inputs, dtype=bool)
    structured = np.concatenate([np.zeros((1, n_inputs), bool), np.ones((1, n_inputs), bool), eye, ~eye])
    rng = np.random.default_rng(seed)
    random = rng.integers(0, 2, size=(n_random, n_inputs), dtype=np.uint8).astype(bool)
    return np.concatenate([structured, random]), False


def compare_graphs(a: GateGraph, b: GateGraph, n_random: int = 10_000, seed: int = 0) -> Comparison:
    """Compare every output bit, every GroupSum score and every class of ``a`` and ``b``."""
    if a.n_inputs != b.n_inputs or a.n_classes != b.n_classes:
        raise GraphError(
            f"graphs are not comparable: {a.n_inputs} vs {b.n_inputs} inputs, {a.n_classes} vs {b.n_classes} classes"
        )
    bits, exhaustive = test_vectors(a.n_inputs, n_random, seed)
    return compare_on(a, b, bits, exhaustive)


def compare_on(a: GateGraph, b: GateGraph, bits: np.ndarray, exhaustive: bool = False) -> Comparison:
    """Compare ``a`` and ``b`` on the given input bits (outputs when their counts agree, and scores)."""
    out_a, out_b = evaluate.output_bits(a, bits), evaluate.output_bits(b, bits)
    bad = np.zeros(len(bits), dtype=bool)
    if out_a.shape == out_b.shape:
        bad |= (out_a != out_b).any(axis=1)
    score_a = np.add.reduceat(out_a.astype(np.int64), a.class_offsets[:-1], axis=1) if len(bits) else None
    score_b = np.add.reduceat(out_b.astype(np.int64), b.class_offsets[:-1], axis=1) if len(bits) else None
    if len(bits):
        bad |= (score_a != score_b).any(axis=1)
    first = int(np.flatnonzero(bad)[0]) if bad.any() else None
    return Comparison(len(bits), int(bad.sum()), exhaustive, first)


def compare_compiled(graph: GateGraph, compiled, bits: np.ndarray, exhaustive: bool = False) -> Comparison:
    """Compare a compiled backend (``outputs``, ``scores``, ``predict`` on input bits) with the evaluator:
    a vector mismatches if any output bit, any score or the class differs."""
    if len(bits) == 0:
        return Comparison(0, 0, exhaustive)
    bad = (compiled.outputs(bits).astype(bool) != evaluate.output_bits(graph, bits)).any(axis=1)
    reference = evaluate.scores(graph, bits)
    bad |= (compiled.scores(bits) != reference).any(axis=1)
    bad |= compiled.predict(bits) != evaluate.argmax_lowest(reference)
    first = int(np.flatnonzero(bad)[0]) if bad.any() else None
    return Comparison(len(bits), int(bad.sum()), exhaustive, first)
