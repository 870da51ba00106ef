"""Dual-output LUT packing (compiler/lut_pack.py): every pair it makes is a LUT6_2 that computes both LUTs,
checked by building the site's 64-bit INIT from the two tables and reading both outputs back."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.compiler import formats, hardware, lut_pack, pipeline
from lgn.compiler.ir import FIRST_INPUT, GateGraph
from lgn.compiler.truth import evaluate_table

from .strategies import gate_graphs


def _value(graph: GateGraph, gate: int, pin_values: dict[int, int]) -> int:
    """Gate ``gate``'s output when each node it depends on has the value in ``pin_values`` (an ignored slot
    reads 0)."""
    bits = [pin_values.get(int(node), 0) for node in graph.fanins[gate]]
    return evaluate_table(int(graph.tables[gate]), bits)


def _site_init(graph: GateGraph, low: int, high: int, pins: list[int]) -> int:
    """The LUT6_2 INIT holding gate ``low`` on O5 (A6 = 0, bits 0..31) and gate ``high`` on O6 (A6 = 1)."""
    init = 0
    for address in range(32):
        values = {pin: (address >> k) & 1 for k, pin in enumerate(pins)}
        init |= _value(graph, low, values) << address
        init |= _value(graph, high, values) << (32 + address)
    return init


def _check_pairs(graph: GateGraph, pairs: list[tuple[int, int]]) -> None:
    used = [i for pair in pairs for i in pair]
    assert len(used) == len(set(used)), "a LUT in two sites"
    pins_of = lut_pack.supports(graph)
    for low, high in pairs:
        pins = sorted(pins_of[low] | pins_of[high])
        assert len(pins) <= lut_pack.SHARED_PINS
        init = _site_init(graph, low, high, pins)
        for values in itertools.product((0, 1), repeat=len(pins)):
            address = sum(v << k for k, v in enumerate(values))
            assignment = dict(zip(pins, values))
            assert (init >> address) & 1 == _value(graph, low, assignment)
            assert (init >> (32 + address)) & 1 == _value(graph, high, assignment)


def _graph(fanins: list[list[int]], tables: list[int], n_inputs: int = 8) -> GateGraph:
    return GateGraph.build(
        n_inputs=n_inputs, fanins=np.asarray(fanins, dtype=np.int64), tables=np.asarray(tables, dtype=np.uint64),
        outputs=[FIRST_INPUT + n_inputs + len(tables) - 1], class_offsets=[0, 1],
    )  # fmt: skip


XOR3 = 0x96  # depends on all three inputs
AND2_IN3 = 0x88  # x0 & x1, the third slot ignored


@pytest.mark.parametrize(
    "fanins, tables, expected",
    [
        ([[2, 3, 4], [4, 5, 6]], [XOR3, XOR3], 1),  # 5 distinct signals: one site
        ([[2, 3, 4], [5, 6, 7]], [XOR3, XOR3], 0),  # 6 distinct signals: two sites
        ([[2, 3, 4], [5, 6, 7]], [XOR3, AND2_IN3], 1),  # the second reads only 5 and 6: 3 + 2 pins
        ([[2, 3, 4], [2, 3, 4], [2, 3, 4]], [XOR3, XOR3, XOR3], 1),  # three of the same: one pair, one alone
    ],
)
def test_pairs_fit_five_pins(fanins, tables, expected):
    graph = _graph(fanins, tables)
    pairs = lut_pack.dual_output_pairs(lut_pack.supports(graph))
    assert len(pairs) == expected
    _check_pairs(graph, pairs)
    assert lut_pack.packed_sites(graph) == graph.n_gates - expected


def test_six_input_luts_never_pair():
    graph = _graph([[2, 3, 4, 5, 6, 7]] * 4, [0x6996966996696996] * 4)
    assert lut_pack.packed_sites(graph) == 4


def test_the_check_catches_an_illegal_pair():
    """The INIT check above can fail: two LUTs reading six signals cannot share a site."""
    graph = _graph([[2, 3, 4], [5, 6, 7]], [XOR3, XOR3])
    with pytest.raises(AssertionError):
        _check_pairs(graph, [(0, 1)])


@settings(max_examples=60, deadline=None)
@given(gate_graphs(max_gates=40, arities=(2, 3, 4, 5, 6)))
def test_every_pair_is_a_site_computing_both(graph):
    pairs = lut_pack.dual_output_pairs(lut_pack.supports(graph))
    _check_pairs(graph, pairs)
    assert lut_pack.packed_sites(graph) == graph.n_gates - len(pairs)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sets(st.integers(0, 7), min_size=1, max_size=5), max_size=9))
def test_greedy_is_not_far_from_the_best_matching(pin_sets):
    """Brute force over small instances: the greedy pairs at least half as many as the best (a maximal
    matching's bound) and never more."""
    pins = [frozenset(p) for p in pin_sets]
    ok = {(i, j) for i, j in itertools.combinations(range(len(pins)), 2) if len(pins[i] | pins[j]) <= 5}
    best = _maximum_matching(ok, len(pins))
    got = len(lut_pack.dual_output_pairs(pins))
    assert best / 2 <= got <= best


def _maximum_matching(edges: set[tuple[int, int]], n: int) -> int:
    best = 0
    for size in range(n // 2, 0, -1):
        for chosen in itertools.combinations(sorted(edges), size):
            if len({v for e in chosen for v in e}) == 2 * size:
                return size
    return best


def test_a_shipped_model_packs_below_its_plain_count():
    graph = pipeline.simplify(formats.load_graph("models/mnist-lut6.npz"))
    sizes = hardware.part_sizes(graph, 6)
    assert 0 < sizes[hardware.DUAL_OUTPUT] < sizes["whole design"]
    assert hardware.DUAL_OUTPUT not in hardware.part_sizes(graph, 4)
