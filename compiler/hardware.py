"""The whole classifier as one gate netlist, for hardware: the encoder's comparators, the gate network, a
compressor tree per class for GroupSum and a comparator tree for argmax, all as IR gates of at most K
inputs (K = 6 for LUT6 FPGAs, 4 for iCE40).

Lowering the head into the IR means the evaluator checks it (the oracle holds the netlist's score and class
bits against the graph's GroupSum and argmax), the passes simplify it and the LUT mapper packs it together
with the network's last layer, and the LUT-native Verilog emitter writes every LUT as the target's cell.

- GroupSum: column compression with generalized parallel counters over two adjacent columns, each output bit
  one LUT, the counters chosen by a bounded search for the fewest LUTs (compressor.py). A node that a class
  counts twice enters as one bit of weight 2; constant outputs fold into the tables (a per-class offset)
  when the netlist is simplified.
- argmax: a tree of comparators, MSB first; the right (higher-index) candidate wins only when strictly
  greater, so ties go to the lowest class.
- encoder: raw feature f arrives as the W input bits of its word (8 for bytes; a signed word of ``int:W`` or
  ``fixed:W.F`` with its sign bit flipped, so that it compares as an unsigned one); threshold bit ``x > t``
  splits into comparisons of its nibbles from the top, so comparisons of one feature share their nibble terms
  after hashing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from . import compressor, lut_pack, truth
from .errors import InputError, ParameterError
from .ir import FIRST_INPUT, GateGraph
from .raw_input import U8, RawFormat, encoder_format, raw_format

DUAL_OUTPUT = "whole design, LUT6_2 sites"  # part_sizes' key for the dual-output packed count

Literal = tuple[int, bool]  # (node id, negated)
ZERO: Literal = (0, False)
ONE: Literal = (1, False)


class NetlistBuilder:
    """Appends gates of at most ``k`` inputs to a netlist over ``n_inputs`` primary inputs."""

    def __init__(self, n_inputs: int, k: int):
        if not 2 <= k <= truth.MAX_ARITY:
            raise ParameterError(f"lut must be between 2 and {truth.MAX_ARITY}, got {k}", "lut")
        self.n_inputs, self.k = n_inputs, k
        self.fanins: list[list[int]] = []
        self.tables: list[int] = []

    @property
    def next_node(self) -> int:
        return FIRST_INPUT + self.n_inputs + len(self.tables)

    def function(self, literals: list[Literal], fn: Callable[[list[int]], int]) -> Literal:
        """A gate computing ``fn(values of literals)`` (negations folded into its table); its literal.
        Constant literals are folded too, so no gate reads a constant; a function of more than ``k`` live
        inputs becomes a tree of multiplexers over its cofactors."""
        live = [(i, lit) for i, lit in enumerate(literals) if lit[0] >= FIRST_INPUT]
        if len(live) > self.k:  # Shannon expansion on the last live input: two cofactors and a multiplexer
            i, split = live[-1]
            cofactors = []
            for value in (0, 1):
                fixed_lit = ONE if value ^ int(split[1]) else ZERO
                cofactors.append(self.function(literals[:i] + [fixed_lit] + literals[i + 1 :], fn))
            return self.function([(split[0], False), *cofactors], lambda v: v[2] if v[0] else v[1])
        fixed = [(lit[0] ^ int(lit[1])) if lit[0] < FIRST_INPUT else 0 for lit in literals]
        table = 0
        for m in range(1 << len(live)):
            values = list(fixed)
            for bit, (i, (_, negated)) in enumerate(live):
                values[i] = ((m >> bit) & 1) ^ int(negated)
            table |= (fn(values) & 1) << m
        full = (1 << (1 << len(live))) - 1
        if table in (0, full):
            return ONE if table else ZERO
        self.fanins.append([lit[0] for _, lit in live])
        self.tables.append(table)
        return (self.next_node - 1, False)

    def build(self, outputs: list[Literal]) -> GateGraph:
        """The netlist with ``outputs`` as one-bit outputs (each its own class group)."""
        k = self.k
        fanins = np.zeros((len(self.tables), k), dtype=np.int64)
        tables = np.zeros(len(self.tables), dtype=np.uint64)
        for g, (row, table) in enumerate(zip(self.fanins, self.tables)):
            fanins[g, : len(row)] = row
            tables[g] = widen(table, len(row), k)
        return GateGraph.build(
            n_inputs=self.n_inputs,
            fanins=fanins,
            tables=tables,
            outputs=[lit[0] for lit in outputs],
            output_negated=[lit[1] for lit in outputs],
            class_offsets=np.arange(len(outputs) + 1),
        )


def widen(table: int, arity: int, k: int) -> int:
    """A table over ``arity`` variables as one over ``k`` that ignores the extra ones."""
    width = 1 << arity
    return sum(table << (width * copy) for copy in range(1 << (k - arity)))


# ---- GroupSum: compressor trees ---------------------------------------------------------------------------


def group_sum(builder: NetlistBuilder, graph: GateGraph, node_literal: Callable[[int], Literal]) -> list[list[Literal]]:
    """Per class, its score's bits (LSB first, width of the largest class group's count)."""
    width = max(1, int(graph.class_sizes.max()).bit_length())
    scores = []
    for c in range(graph.n_classes):
        lo, hi = int(graph.class_offsets[c]), int(graph.class_offsets[c + 1])
        counts: dict[Literal, int] = {}
        for node, negated in zip(graph.outputs[lo:hi].tolist(), graph.output_negated[lo:hi].tolist()):
            node_lit = node_literal(node)
            lit = (node_lit[0], node_lit[1] ^ bool(negated))
            counts[lit] = counts.get(lit, 0) + 1
        bits: list[list[Literal]] = [[] for _ in range(width + 1)]
        for lit, times in counts.items():  # a node counted k times: one bit per 1 in k, of that weight
            for j in range(times.bit_length()):
                if (times >> j) & 1:
                    bits[j].append(lit)
        scores.append(count_columns(builder, bits, width))
    return scores


def count_columns(builder: NetlistBuilder, bits: list[list[Literal]], width: int) -> list[Literal]:
    """The sum of ``bits[c]`` (each a column of bits of weight 2^c) as ``width`` literals, LSB first: a
    compressor tree of counters of at most ``builder.k`` inputs (compressor.py)."""
    return compressor.count_columns(builder.function, bits, width, builder.k, ZERO)


# ---- argmax: a comparator tree -------------------------------------------------------------------------------


def _greater(builder: NetlistBuilder, a: list[Literal], b: list[Literal]) -> Literal:
    """b > a (unsigned, LSB first), scanned from the most significant bit."""
    gt, eq = ZERO, ONE
    for j in reversed(range(len(a))):
        gt = builder.function([gt, eq, a[j], b[j]], lambda v: v[0] | (v[1] & v[3] & (1 - v[2])))
        eq = builder.function([eq, a[j], b[j]], lambda v: v[0] & (1 - (v[1] ^ v[2])))
    return gt


def _select(builder: NetlistBuilder, pick_b: Literal, a: list[Literal], b: list[Literal]) -> list[Literal]:
    return [builder.function([pick_b, x, y], lambda v: v[2] if v[0] else v[1]) for x, y in zip(a, b)]


def argmax(builder: NetlistBuilder, scores: list[list[Literal]]) -> list[Literal]:
    """The class index bits (LSB first) of the highest score; ties to the lowest class."""
    width = max(1, (len(scores) - 1).bit_length())
    candidates = [(s, [ONE if (c >> j) & 1 else ZERO for j in range(width)]) for c, s in enumerate(scores)]
    while len(candidates) > 1:
        nxt = []
        for i in range(0, len(candidates), 2):
            if i + 1 == len(candidates):
                nxt.append(candidates[i])
                continue
            (sa, ia), (sb, ib) = candidates[i], candidates[i + 1]
            right = _greater(builder, sa, sb)
            nxt.append((_select(builder, right, sa, sb), _select(builder, right, ia, ib)))
        candidates = nxt
    return candidates[0][1]


# ---- the encoder on raw features -------------------------------------------------------------------------------


def _nibble_value(v: list[int]) -> int:
    return sum(bit << j for j, bit in enumerate(v))


def _above(builder: NetlistBuilder, feature_bits: list[Literal], t: int) -> Literal:
    """x > t for the unsigned feature word (bits LSB first, t from -1 to its largest value): the top nibble
    decides unless it equals t's, then the next one (for a byte: the high nibble, then the low one)."""
    if t < 0:
        return ONE
    if t >= (1 << len(feature_bits)) - 1:
        return ZERO
    nibbles = [feature_bits[j : j + 4] for j in range(0, len(feature_bits), 4)]
    return _above_nibbles(builder, nibbles, t)


def _above_nibbles(builder: NetlistBuilder, nibbles: list[list[Literal]], t: int) -> Literal:
    shift = 4 * (len(nibbles) - 1)
    top, top_t = nibbles[-1], t >> shift
    gt = builder.function(top, lambda v: int(_nibble_value(v) > top_t))
    if len(nibbles) == 1:
        return gt
    eq = builder.function(top, lambda v: int(_nibble_value(v) == top_t))
    rest = _above_nibbles(builder, nibbles[:-1], t & ((1 << shift) - 1))
    return builder.function([gt, eq, rest], lambda v: v[0] | (v[1] & v[2]))


def _feature_literals(fmt: RawFormat, feature: int) -> list[Literal]:
    """The input bits of raw feature ``feature``'s word (LSB first), a signed word's sign bit negated: then it
    compares as the unsigned word + 2^(W-1)."""
    w = fmt.width
    bits = [(FIRST_INPUT + w * feature + j, False) for j in range(w)]
    if fmt.signed:
        bits[-1] = (bits[-1][0], True)
    return bits


def encoder_bits(builder: NetlistBuilder, graph: GateGraph, fmt: RawFormat) -> list[Literal]:
    """The literal of each input bit of ``graph``: its raw feature's word above its threshold's word."""
    e = graph.encoder
    assert e is not None
    offset = -fmt.lo  # signed words compare as unsigned ones, shifted up by 2^(W-1)
    return [
        _above(builder, _feature_literals(fmt, f), t + offset)
        for f, t in zip(e.feature.tolist(), fmt.threshold_words(e.threshold).tolist())
    ]


@dataclasses.dataclass(frozen=True)
class Design:
    """A whole classifier as a netlist: ``netlist``'s outputs are the score bits (class-major, LSB first,
    ``score_width`` each; absent when ``with_scores`` is off) followed by the class bits (``class_width``)."""

    netlist: GateGraph
    n_classes: int
    score_width: int
    class_width: int
    raw: RawFormat | None  # inputs are the words of the raw features (through the encoder), else the input bits
    with_scores: bool

    @property
    def raw_input(self) -> bool:
        return self.raw is not None

    def decode(self, output_bits: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """(scores ``[N, classes]`` or None, classes ``[N]``) from the netlist's output bits ``[N, outputs]``."""
        bits = np.asarray(output_bits, dtype=np.int64)
        weights = 1 << np.arange(max(self.score_width, self.class_width))
        classes = bits[:, -self.class_width :] @ weights[: self.class_width]
        if not self.with_scores:
            return None, classes
        per_class = bits[:, : self.n_classes * self.score_width].reshape(len(bits), self.n_classes, -1)
        return per_class @ weights[: self.score_width], classes


def lower(graph: GateGraph, k: int = 6, raw_input: bool | RawFormat | None = None, with_scores: bool = True) -> Design:
    """``graph`` with its encoder (raw features as words of a :class:`RawFormat`, or bytes: True; the default,
    None, is bytes for an image model, :func:`~.raw_input.raw_format`), GroupSum and argmax as one netlist of
    gates of at most ``k`` inputs (wider gates of ``graph`` are split by Shannon expansion). Not simplified: run
    the passes, ``simplify(design.netlist, lut=k)``, on ``.netlist``."""
    fmt = raw_format(graph, raw_input)
    n_in = fmt.width * graph.encoder.n_features if fmt is not None and graph.encoder is not None else graph.n_inputs
    builder = NetlistBuilder(n_in, k)
    node_lit: dict[int, Literal] = {0: ZERO, 1: ONE}
    if fmt is not None:
        for i, literal in enumerate(encoder_bits(builder, graph, fmt)):
            node_lit[FIRST_INPUT + i] = literal
    else:
        node_lit.update({FIRST_INPUT + i: (FIRST_INPUT + i, False) for i in range(graph.n_inputs)})
    _add_network(builder, graph, node_lit)
    scores = group_sum(builder, graph, lambda node: node_lit[node])
    classes = argmax(builder, scores)
    outputs = ([bit for s in scores for bit in s] if with_scores else []) + classes
    score_width = len(scores[0])
    return Design(builder.build(outputs), graph.n_classes, score_width, len(classes), fmt, with_scores)


def _add_network(builder: NetlistBuilder, graph: GateGraph, node_lit: dict[int, Literal]) -> None:
    """Every gate of ``graph`` into ``builder`` (over its table's support), recording each node's literal."""
    if not graph.n_gates:
        return
    support = np.stack([truth.depends_on(graph.tables, s, graph.arity) for s in range(graph.arity)], axis=1)
    for g, (row, table) in enumerate(zip(graph.fanins.tolist(), graph.tables.tolist())):
        used = [s for s in range(graph.arity) if support[g, s]]
        lits = [node_lit[row[s]] for s in used]
        node_lit[graph.first_gate + g] = builder.function(lits, _lut_function(table, used))


def _table_value(table: int, used: list[int], values: list[int]) -> int:
    m = sum(bit << slot for slot, bit in zip(used, values))
    return (table >> m) & 1


def _lut_function(table: int, used: list[int]) -> Callable[[list[int]], int]:
    return lambda values: _table_value(table, used, values)


def raw_bits(features: np.ndarray, fmt: RawFormat = U8) -> np.ndarray:
    """Raw features ``[N, F]`` as the design's input bits ``uint8[N, W F]``: feature f's word in format ``fmt``
    (two's complement when signed) is bits W f .. W f + W - 1, LSB first. A value the format does not hold
    raises :class:`~.errors.InputError` (:meth:`RawFormat.words`): nothing is clipped."""
    words = fmt.words(features)
    if words.ndim != 2:
        raise InputError(f"raw features must be a 2-D array [samples, features], got shape {words.shape}")
    bits = (words[:, :, None] >> np.arange(fmt.width)) & 1  # arithmetic shift: two's complement bits
    return bits.astype(np.uint8).reshape(len(words), -1)


def part_sizes(graph: GateGraph, k: int = 6, raw_input: bool | RawFormat | None = None) -> dict[str, int]:
    """K-input LUTs of each part of the lowered classifier, each mapped alone (``simplify(lut=k)``), and of the
    whole design mapped at once (the mapper merges across the parts' borders, so it can be below the sum); for
    ``k`` = 6 also :data:`DUAL_OUTPUT`, the whole design's LUT6 sites with dual-output packing
    (:mod:`.lut_pack`).
    ``raw_input``: the whole design's input (as :func:`lower`); the encoder part takes the same format, or
    when the whole design takes the input bits, :func:`~.raw_input.encoder_format`'s."""
    from .pipeline import simplify

    def luts(netlist: GateGraph) -> int:
        return simplify(netlist, lut=k).n_gates

    sizes = {}
    if graph.encoder is not None:
        fmt = encoder_format(graph, raw_input)
        builder = NetlistBuilder(fmt.width * graph.encoder.n_features, k)
        sizes["encoder"] = luts(builder.build(encoder_bits(builder, graph, fmt)))
    builder = NetlistBuilder(graph.n_outputs, k)
    head = graph.replace(
        fanins=np.zeros((0, graph.arity), dtype=np.int64), tables=np.zeros(0, dtype=np.uint64),
        n_inputs=graph.n_outputs, outputs=FIRST_INPUT + np.arange(graph.n_outputs), encoder=None, names=None,
    )  # fmt: skip
    scores = group_sum(builder, head, lambda node: (node, False))
    sizes["gate network"] = luts(_network_netlist(graph, k))
    sizes["GroupSum"] = luts(builder.build([bit for s in scores for bit in s]))
    sizes["GroupSum + argmax"] = luts(lower(head, k, raw_input=False).netlist)
    sizes["argmax"] = max(0, sizes["GroupSum + argmax"] - sizes["GroupSum"])
    del sizes["GroupSum + argmax"]
    whole = simplify(lower(graph, k, raw_input).netlist, lut=k)
    sizes["whole design"] = whole.n_gates
    if k == 6:  # the count to set beside Vivado's, which packs two small LUTs into one LUT6_2 site
        sizes[DUAL_OUTPUT] = lut_pack.packed_sites(whole)
    return sizes


def _network_netlist(graph: GateGraph, k: int) -> GateGraph:
    """The gate network alone as a netlist of at most ``k``-input gates, its outputs as outputs."""
    builder = NetlistBuilder(graph.n_inputs, k)
    node_lit: dict[int, Literal] = {0: ZERO, 1: ONE}
    node_lit.update({FIRST_INPUT + i: (FIRST_INPUT + i, False) for i in range(graph.n_inputs)})
    _add_network(builder, graph, node_lit)
    return builder.build(
        [(node_lit[o][0], node_lit[o][1] ^ bool(n)) for o, n in zip(graph.outputs, graph.output_negated)]
    )
