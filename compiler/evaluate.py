"""The reference evaluator: the one oracle every pass and backend is checked against.

Bit-sliced: bit j of word w of a node's value row is the node's value for sample 64 w + j. Gates are
evaluated a level at a time; a k-input LUT is a tree of 2^k - 1 multiplexers over its table bits
(Shannon expansion on fan-in 0 first, so bit m of the table is f at m = sum_k x_k 2^k).
Padding samples (beyond the batch) are computed but never reported.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .ir import FIRST_INPUT, GateGraph

ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
# Value rows are held for every node at once; chunk samples so that stays near this many bytes.
_CHUNK_BYTES = 128 << 20


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """``[N, n]`` sample-major 0/1 array (bool or integer) -> ``uint64[n, ceil(N / 64)]`` bit slices."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise InputError(f"input bits must be a 2-D array [samples, inputs], got shape {bits.shape}")
    if bits.dtype != bool:
        if bits.dtype.kind not in "iu":
            raise InputError(f"input bits must be bool or integer 0/1, got dtype {bits.dtype}")
        if bits.size and (bits.min() < 0 or bits.max() > 1):
            raise InputError("input bits must be 0 or 1 (raw features go through encode() with the graph's thresholds)")
    n_samples, n = bits.shape
    n_words = (n_samples + 63) // 64
    padded = np.zeros((n, n_words * 64), dtype=np.uint8)
    padded[:, :n_samples] = bits.T
    packed = np.packbits(padded, axis=1, bitorder="little")
    return packed.view("<u8").astype(np.uint64, copy=False).reshape(n, n_words)


def unpack_bits(words: np.ndarray, n_samples: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``uint64[n, W]`` -> ``bool[n_samples, n]``."""
    as_bytes = np.ascontiguousarray(words, dtype="<u8").view(np.uint8).reshape(words.shape[0], -1)
    bits = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :n_samples]
    return bits.T.astype(bool)


def evaluate_packed(graph: GateGraph, inputs: np.ndarray) -> np.ndarray:
    """Every node's value: ``uint64[n_nodes, W]`` from packed inputs ``uint64[n_inputs, W]``."""
    n_words = inputs.shape[1]
    values = np.empty((graph.n_nodes, n_words), dtype=np.uint64)
    values[0] = 0
    values[1] = ALL_ONES
    values[FIRST_INPUT : graph.first_gate] = inputs
    for gates in graph.level_batches:
        values[graph.first_gate + gates] = _lut_level(values, graph.fanins[gates], graph.tables[gates], graph.arity)
    return values


def _lut_level(values: np.ndarray, fanins: np.ndarray, tables: np.ndarray, arity: int) -> np.ndarray:
    """Multiplexer tree: level k selects between pairs of candidates on fan-in k's value."""
    # Candidates start as the table bits, each spread over a whole word (all ones or all zeros).
    bit_index = np.arange(1 << arity, dtype=np.uint64)
    leaves = (((tables[:, None] >> bit_index) & np.uint64(1)) * ALL_ONES)[:, :, None]
    candidates = [leaves[:, m] for m in range(1 << arity)]
    for k in range(arity):
        x = values[fanins[:, k]]
        candidates = [lo ^ ((lo ^ hi) & x) for lo, hi in zip(candidates[0::2], candidates[1::2])]
    (result,) = candidates
    return np.broadcast_to(result, (len(tables), values.shape[1]))


def _check_bits(graph: GateGraph, bits: np.ndarray) -> np.ndarray:
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] != graph.n_inputs:
        raise InputError(f"expected input bits of shape [samples, {graph.n_inputs}], got {bits.shape}")
    return bits


def _output_words(graph: GateGraph, bits: np.ndarray):
    """Yield ``(start, count, words)`` per chunk of samples: ``words`` is ``uint64[n_outputs, W]``, the
    outputs after their negation flags, bit-sliced. Chunks bound the memory the node values take."""
    bits = _check_bits(graph, bits)
    per_chunk = 64 * max(1, _CHUNK_BYTES // (8 * graph.n_nodes))  # samples: 64 per word of each node
    flips = np.where(graph.output_negated, ALL_ONES, np.uint64(0))[:, None]
    for start in range(0, bits.shape[0], per_chunk):
        chunk = bits[start : start + per_chunk]
        values = evaluate_packed(graph, pack_bits(chunk))
        yield start, len(chunk), values[graph.outputs] ^ flips


def output_bits(graph: GateGraph, bits: np.ndarray) -> np.ndarray:
    """``bool[N, n_outputs]``: each output after its negation flag, for 0/1 inputs ``[N, n_inputs]``."""
    result = np.empty((len(bits), graph.n_outputs), dtype=bool)
    for start, count, words in _output_words(graph, bits):
        result[start : start + count] = unpack_bits(words, count)
    return result


def scores(graph: GateGraph, bits: np.ndarray) -> np.ndarray:
    """``int64[N, n_classes]``: GroupSum scores, the number of 1 outputs in each class group."""
    result = np.empty((len(bits), graph.n_classes), dtype=np.int64)
    for start, count, words in _output_words(graph, bits):
        as_bytes = np.ascontiguousarray(words, dtype="<u8").view(np.uint8).reshape(len(words), -1)
        per_output = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :count]
        for c, (lo, hi) in enumerate(zip(graph.class_offsets[:-1], graph.class_offsets[1:])):
            result[start : start + count, c] = per_output[lo:hi].sum(axis=0, dtype=np.int64)
    return result


def predict(graph: GateGraph, bits: np.ndarray) -> np.ndarray:
    """``int64[N]``: the class with the highest score; ties go to the lowest class index."""
    return argmax_lowest(scores(graph, bits))


def argmax_lowest(class_scores: np.ndarray) -> np.ndarray:
    """Row-wise argmax with the tie rule every backend follows: the lowest index wins."""
    return np.argmax(class_scores, axis=1).astype(np.int64)


def encode(graph: GateGraph, features: np.ndarray) -> np.ndarray:
    """Raw features ``[N, n_features]`` -> input bits ``bool[N, n_inputs]`` through the graph's encoder."""
    if graph.encoder is None:
        raise InputError("this graph has no encoder metadata: pass input bits, not raw features")
    features = np.asarray(features)
    e = graph.encoder
    if features.ndim != 2 or features.shape[1] != e.n_features:
        raise InputError(f"expected raw features of shape [samples, {e.n_features}], got {features.shape}")
    if features.dtype.kind not in "iuf":
        raise InputError(f"raw features must be numeric, got dtype {features.dtype}")
    # Fancy indexing along axis 1 yields a column-major result; hand back the sample-major layout.
    return np.ascontiguousarray(features[:, e.feature] > e.threshold)


def probabilities(scores: np.ndarray, tau: float) -> np.ndarray:
    """``float64[N, n_classes]``: class probabilities softmax(scores / tau), each row summing to 1, from GroupSum
    ``scores`` ``[N, n_classes]`` and the temperature ``tau`` the network was trained with.

    Computed stably (each row's highest score is subtracted first, so its term is exactly 1 and nothing
    overflows); equal scores get equal probabilities, so the row-wise argmax, ties to the lowest class, is the
    class :func:`argmax_lowest` gives.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.dtype.kind not in "iuf":
        raise InputError(f"scores must be a 2-D array of numbers [samples, classes], got {scores.dtype} {scores.shape}")
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.integer, np.floating)) or not 0 < tau < np.inf:
        raise InputError(f"tau must be a positive finite number, got {tau!r}")
    if scores.shape[1] == 0:
        raise InputError("scores must have at least one class")
    shifted = scores.astype(np.float64) - scores.max(axis=1, keepdims=True)
    terms = np.exp(shifted / float(tau))
    return terms / terms.sum(axis=1, keepdims=True)
