"""One way to ask "do these two implementations agree": :class:`Answers` in, :class:`Comparison` out.

Every implementation answers a batch of input vectors with its GroupSum scores, its classes and, where it
can, every output bit; :func:`compare` holds one against the other. A vector mismatches when any score,
the class or any output bit differs. The verifiers here run the evaluator (the oracle) against a second
graph (:func:`verify_graphs`) and against a compiled C library (:func:`verify_c`); the Verilog verifier is
``hdl_sim.simulate`` and the trained-model verifier ``lgn.training.export.verify_model``; all of them
return a :class:`Comparison`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import evaluate
from .errors import GraphError
from .ir import GateGraph

EXHAUSTIVE_LIMIT = 16


@dataclasses.dataclass(frozen=True)
class Answers:
    """What an implementation says about N input vectors."""

    scores: np.ndarray | None  # int [N, n_classes]; None for an implementation that gives the class only
    classes: np.ndarray  # int [N]
    outputs: np.ndarray | None = None  # bool [N, n_outputs], where the implementation exposes them


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """The first vector on which two implementations disagree."""

    index: int
    expected_scores: tuple[int, ...]
    got_scores: tuple[int, ...]
    expected_class: int
    got_class: int

    def describe(self) -> str:
        return (
            f"first mismatch at vector {self.index}: scores {list(self.got_scores)} (class {self.got_class}), "
            f"expected {list(self.expected_scores)} (class {self.expected_class})"
        )


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The result of comparing two implementations on the same input vectors."""

    vectors: int
    mismatching: np.ndarray  # int64 indices of the vectors that differ, ascending
    exhaustive: bool = False
    first: Mismatch | None = None
    expected: Answers | None = None  # the reference's answers (None for sums of comparisons)
    got: Answers | None = None  # the implementation's answers

    @property
    def mismatches(self) -> int:
        return int(self.mismatching.size)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    @property
    def first_mismatch(self) -> int | None:
        return self.first.index if self.first is not None else None

    def summary(self) -> str:
        return f"{self.vectors} vectors, {self.mismatches} mismatches"

    def __add__(self, other: Comparison) -> Comparison:
        """Two runs over different vectors, as one (indices of ``other`` shift past this one's vectors)."""
        shifted = other.mismatching + self.vectors
        first = self.first
        if first is None and other.first is not None:
            first = dataclasses.replace(other.first, index=other.first.index + self.vectors)
        return Comparison(
            self.vectors + other.vectors,
            np.concatenate([self.mismatching, shifted]),
            self.exhaustive and other.exhaustive,
            first,
        )


def compare(expected: Answers, got: Answers, exhaustive: bool = False) -> Comparison:
    """Hold ``got`` against ``expected``: every score, the class, and the output bits when both have them.

    A result that holds fewer (or more) vectors than expected counts every missing vector as a mismatch.
    """
    n = len(expected.classes)
    bad = np.zeros(n, dtype=bool)
    m = min(n, len(got.classes))
    bad[m:] = True
    if m and expected.scores is not None and got.scores is not None:
        es, gs = np.asarray(expected.scores)[:m], np.asarray(got.scores)[:m]
        if es.shape == gs.shape:
            bad[:m] |= (es != gs).any(axis=1)
        else:
            bad[:m] = True
    if m:
        bad[:m] |= np.asarray(expected.classes)[:m] != np.asarray(got.classes)[:m]
        if expected.outputs is not None and got.outputs is not None:
            eo, go = np.asarray(expected.outputs, dtype=bool)[:m], np.asarray(got.outputs, dtype=bool)[:m]
            if eo.shape == go.shape:
                bad[:m] |= (eo != go).any(axis=1)
    mismatching = np.flatnonzero(bad).astype(np.int64)
    first = None
    if mismatching.size:
        i = int(mismatching[0])
        have = i < m
        first = Mismatch(
            i,
            tuple(int(v) for v in np.asarray(expected.scores)[i]) if expected.scores is not None else (),
            tuple(int(v) for v in np.asarray(got.scores)[i]) if have and got.scores is not None else (),
            int(expected.classes[i]),
            int(got.classes[i]) if have else -1,
        )
    return Comparison(n, mismatching, exhaustive, first, expected, got)


def evaluator_answers(graph: GateGraph, bits: np.ndarray, with_outputs: bool = True) -> Answers:
    """The oracle's answers: the reference evaluator on input bits ``[N, n_inputs]``."""
    outputs = evaluate.output_bits(graph, bits) if with_outputs else None
    if outputs is not None and len(bits):
        sums = np.add.reduceat(outputs.astype(np.int64), graph.class_offsets[:-1], axis=1)
    else:
        sums = evaluate.scores(graph, bits)
    return Answers(sums, evaluate.argmax_lowest(sums), outputs)


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


test_vectors.__test__ = False  # type: ignore[attr-defined]  # a helper named test_*, not a pytest test


def verify_graphs(reference: GateGraph, other: GateGraph, bits: np.ndarray, exhaustive: bool = False) -> Comparison:
    """``other`` against ``reference`` under the evaluator: output bits (when their counts agree), scores and
    classes."""
    if reference.n_inputs != other.n_inputs or reference.n_classes != other.n_classes:
        raise GraphError(
            f"graphs are not comparable: {reference.n_inputs} vs {other.n_inputs} inputs, "
            f"{reference.n_classes} vs {other.n_classes} classes"
        )
    return compare(evaluator_answers(reference, bits), evaluator_answers(other, bits), exhaustive)


def compare_graphs(a: GateGraph, b: GateGraph, n_random: int = 10_000, seed: int = 0) -> Comparison:
    """:func:`verify_graphs` on :func:`test_vectors` (exhaustive for at most 16 inputs)."""
    bits, exhaustive = test_vectors(a.n_inputs, n_random, seed)
    return verify_graphs(a, b, bits, exhaustive)


def verify_c(graph: GateGraph, compiled, bits: np.ndarray, exhaustive: bool = False) -> Comparison:
    """A compiled C library (``outputs``, ``scores``, ``predict`` on input bits) against the evaluator."""
    got = Answers(compiled.scores(bits), compiled.predict(bits), compiled.outputs(bits).astype(bool))
    return compare(evaluator_answers(graph, bits), got, exhaustive)


def verify_c_features(graph: GateGraph, compiled, raw: np.ndarray) -> Comparison:
    """The library's raw-feature entry points (the encoder's thresholds applied in C) against the evaluator
    on the same features encoded by :func:`lgn.compiler.evaluate.encode`."""
    got = Answers(compiled.scores_features(raw), compiled.predict_features(raw))
    return compare(evaluator_answers(graph, evaluate.encode(graph, raw), with_outputs=False), got)
