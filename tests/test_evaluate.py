"""The reference evaluator against a naive one, packing, padding, ties and the encoder."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lgn.compiler import evaluate
from lgn.compiler.errors import InputError
from lgn.compiler.ir import Encoder, GateGraph
from lgn.compiler.verify import test_vectors as make_vectors

from .reference import naive_outputs, naive_scores
from .strategies import gate_graphs, padding_probe_graph


@given(gate_graphs())
def test_evaluator_matches_naive_exhaustively(graph):
    bits, exhaustive = make_vectors(graph.n_inputs)
    assert exhaustive
    outs = evaluate.output_bits(graph, bits)
    scores = evaluate.scores(graph, bits)
    for i, row in enumerate(bits):
        assert outs[i].astype(int).tolist() == naive_outputs(graph, row)
        assert scores[i].tolist() == naive_scores(graph, row)
    assert evaluate.predict(graph, bits).tolist() == np.argmax(scores, axis=1).tolist()


@given(st.integers(0, 300), st.integers(1, 70), st.integers(0, 2**32 - 1))
def test_pack_unpack_round_trip_any_batch_size(n_samples, n_inputs, seed):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n_samples, n_inputs)).astype(bool)
    packed = evaluate.pack_bits(bits)
    assert packed.shape == (n_inputs, (n_samples + 63) // 64)
    assert np.array_equal(evaluate.unpack_bits(packed, n_samples), bits)
    assert np.array_equal(evaluate.pack_bits(bits.astype(np.uint8)), packed)


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 127, 200])
def test_padding_never_leaks(n):
    graph = padding_probe_graph()
    ones = np.ones((n, 1), dtype=np.uint8)
    scores = evaluate.scores(graph, ones)
    assert scores.shape == (n, 2)
    assert (scores == [0, 1]).all()  # padding samples would score [3, 1] if they leaked
    assert evaluate.output_bits(graph, ones).shape == (n, 4)


def test_ties_go_to_lowest_class():
    graph = GateGraph.build(
        n_inputs=2, fanins=np.zeros((0, 2)), tables=[], outputs=[2, 3, 2, 3], class_offsets=[0, 1, 2, 3, 4]
    )
    bits = np.array([[0, 0], [1, 1], [0, 1], [1, 0]])
    assert evaluate.predict(graph, bits).tolist() == [0, 0, 1, 0]


def test_encoder_thresholds():
    enc = Encoder(2, np.array([0, 0, 1]), np.array([127.5, 63.75, 0.0]))
    graph = GateGraph.build(n_inputs=3, fanins=np.zeros((0, 2)), tables=[], outputs=[2, 3, 4], encoder=enc)
    raw = np.array([[128, 0], [127, 1], [64, 0]], dtype=np.uint8)
    assert evaluate.encode(graph, raw).astype(int).tolist() == [[1, 1, 0], [0, 1, 1], [0, 1, 0]]


def test_bad_inputs_are_refused_clearly():
    graph = padding_probe_graph()
    with pytest.raises(InputError, match=r"shape \[samples, 1\]"):
        evaluate.scores(graph, np.zeros((3, 2), dtype=bool))
    with pytest.raises(InputError, match="0 or 1"):
        evaluate.scores(graph, np.full((3, 1), 255, dtype=np.uint8))
    with pytest.raises(InputError, match="dtype"):
        evaluate.scores(graph, np.zeros((3, 1), dtype=np.float32))
    with pytest.raises(InputError, match="no encoder"):
        evaluate.encode(graph, np.zeros((3, 1)))


def test_large_batch_is_chunked_consistently(monkeypatch):
    rng = np.random.default_rng(1)
    from lgn.compiler.random_graph import random_layered

    graph = random_layered(20, 3, 40, classes=4, seed=3)
    bits = rng.integers(0, 2, size=(1000, 20)).astype(bool)
    whole = evaluate.scores(graph, bits)
    monkeypatch.setattr(evaluate, "_CHUNK_BYTES", 8 * graph.n_nodes)  # one word (64 samples) per chunk
    assert np.array_equal(evaluate.scores(graph, bits), whole)
    assert [naive_scores(graph, row) for row in bits[:50]] == whole[:50].tolist()


# ---- class probabilities -------------------------------------------------------------------------------
@given(
    st.integers(1, 40),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.01, 0.3, 1.0, 3.0, 10.0, 100.0, 1e4]),
    st.integers(1, 10**6),
)
def test_probabilities_sum_to_one_and_agree_with_the_predicted_class(n, classes, seed, tau, width):
    """Rows sum to 1; the argmax (ties to the lowest class, numpy's rule) is argmax_lowest's class, ties in
    the scores included: equal scores give bit-identical probabilities (different ones may both round to 0,
    never to the highest's)."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, min(width, 4) if seed % 2 else width, size=(n, classes))  # many ties, or wide
    p = evaluate.probabilities(scores, tau)
    assert p.dtype == np.float64 and p.shape == (n, classes)
    assert np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.array_equal(np.argmax(p, axis=1), evaluate.argmax_lowest(scores))
    tied = scores[:, :, None] == scores[:, None, :]
    assert np.all((p[:, :, None] == p[:, None, :])[tied])
    assert np.allclose(evaluate.probabilities(scores + 12345, tau), p, rtol=0, atol=1e-15)  # shift-invariant


def test_probabilities_are_softmax_of_scores_over_tau():
    scores = np.array([[0, 10, 20], [5, 5, 5], [10**9, 0, 10**9]])
    p = evaluate.probabilities(scores, 10.0)
    e = np.exp(np.array([0.0, 1.0, 2.0]))
    assert np.allclose(p[0], e / e.sum()) and np.allclose(p[1], 1 / 3)
    assert p[2].tolist() == [0.5, 0.0, 0.5]  # no overflow; the tie stays a tie
    assert evaluate.probabilities(np.zeros((0, 4), np.int64), 1.0).shape == (0, 4)


@pytest.mark.parametrize(
    "scores, tau, message",
    [
        (np.zeros((2, 3)), 0.0, "tau must be a positive finite number"),
        (np.zeros((2, 3)), float("inf"), "tau must be a positive finite number"),
        (np.zeros((2, 3)), -1, "tau must be a positive finite number"),
        (np.zeros(3), 1.0, "2-D array"),
        (np.zeros((2, 0)), 1.0, "at least one class"),
        (np.array([["a"]]), 1.0, "2-D array of numbers"),
    ],
)
def test_probabilities_refuse_what_is_not_scores_and_a_temperature(scores, tau, message):
    with pytest.raises(InputError, match=message):
        evaluate.probabilities(scores, tau)
