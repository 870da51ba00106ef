"""The compressor tree behind the hardware GroupSum: its sums against plain arithmetic, its plan against a naive
exhaustive planner, and its LUT counts (the figure of merit the FPGA issue sets)."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.compiler import compressor, evaluate, hardware, pipeline
from lgn.compiler.ir import FIRST_INPUT, GateGraph


def build_sum(weights: list[int], k: int):
    """A netlist over len(weights) input bits whose outputs are the bits of sum(weight * bit)."""
    width = max(1, sum(weights).bit_length())
    columns: list[list[tuple[int, bool]]] = [[] for _ in range(width)]
    for i, w in enumerate(weights):
        for c in range(w.bit_length()):
            if (w >> c) & 1:
                columns[c].append((FIRST_INPUT + i, False))
    builder = hardware.NetlistBuilder(len(weights), k)
    outputs = hardware.count_columns(builder, columns, width)
    return builder, builder.build(outputs), columns


def sums_of(netlist, bits: np.ndarray) -> np.ndarray:
    out = evaluate.output_bits(netlist, bits).astype(np.int64)
    return out @ (1 << np.arange(out.shape[1]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=11), st.integers(2, 6))
def test_the_tree_adds_exactly(weights, k):
    """Every assignment of the input bits, for weighted columns of every shape hypothesis draws."""
    _, netlist, _ = build_sum(weights, k)
    bits = (np.arange(1 << len(weights))[:, None] >> np.arange(len(weights))) & 1
    assert np.array_equal(sums_of(netlist, bits), bits @ np.array(weights))


@pytest.mark.parametrize("n", [1, 2, 7, 63, 64, 100, 257])
@pytest.mark.parametrize("k", [2, 4, 6])
def test_wide_single_columns_add_exactly(n, k):
    _, netlist, _ = build_sum([1] * n, k)
    bits = np.random.default_rng(n).integers(0, 2, (500, n))
    bits[0], bits[1] = 0, 1  # the extremes: the top bit of the sum is exercised
    assert np.array_equal(sums_of(netlist, bits), bits.sum(axis=1))


@pytest.mark.parametrize("weights", [[1] * 40, [1] * 30 + [2] * 5 + [3] * 2, [5, 9, 1, 1, 2, 2, 2]])
@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_the_plan_costs_what_is_built(weights, k):
    """The plan's LUT count is the number of gates the tree builds (no input is constant here), and every
    column ends with at most one bit."""
    builder, _, columns = build_sum(weights, k)
    width = max(1, sum(weights).bit_length())
    luts, steps = compressor.plan(tuple(len(c) for c in columns), width, k)
    assert luts == len(builder.tables)
    assert all(times >= 1 and 2 <= shape[0] and sum(shape) <= k for _, shape, times in steps)


def naive_cost(heights: tuple[int, ...], width: int, k: int) -> int:
    """The fewest LUTs over every order of the same two-column counters, searched without bounds: the second
    planner the bounded search is held against."""
    shapes = [(a0, a1) for a0 in range(2, k + 1) for a1 in range(k - a0 + 1)]

    @functools.cache
    def go(hs: tuple[int, ...]) -> int:
        c = next((i for i in range(width) if hs[i] > 1), None)
        if c is None:
            return 0
        best = 1 << 30
        for a0, a1 in shapes:
            if a0 <= hs[c] and a1 <= hs[c + 1]:
                new = list(hs)
                new[c] -= a0
                new[c + 1] -= a1
                kept = [j for j in range(compressor.shape_outputs((a0, a1))) if c + j < width]
                for j in kept:
                    new[c + j] += 1
                best = min(best, len(kept) + go(tuple(new)))
        return best

    return go(tuple(heights) + (0,) * (width + 2 - len(heights)))


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_the_plan_is_optimal_where_the_search_is_unbounded(k):
    """Up to SEARCH_HEIGHT bits per column the planner's search is exhaustive: it matches the naive planner."""
    cases = [(n,) for n in range(2, compressor.SEARCH_HEIGHT + 1)] + [(3, 3), (5, 2, 1), (1, 4, 4), (7, 0, 3)]
    for heights in cases:
        width = sum(h << c for c, h in enumerate(heights)).bit_length()
        assert compressor.plan(heights, width, k)[0] == naive_cost(heights, width, k), heights


def test_a_wrong_counter_is_caught(monkeypatch):
    """Mutation: a counter whose second output bit is inverted must make the exhaustive check fail."""
    right = compressor._bit_of_weighted_sum
    monkeypatch.setattr(compressor, "_bit_of_weighted_sum", lambda w, j: lambda v: right(w, j)(v) ^ (j == 1))
    _, netlist, _ = build_sum([1] * 9, 6)
    bits = (np.arange(1 << 9)[:, None] >> np.arange(9)) & 1
    assert not np.array_equal(sums_of(netlist, bits), bits.sum(axis=1))


@pytest.mark.parametrize("k, per_input", [(6, 0.97), (4, 1.95)])
def test_wide_groups_need_under_one_lut6_per_input(k, per_input):
    """The figure of merit: a GroupSum of 10 classes of 100 outputs (the demo model's head) in LUTs after
    mapping. LUT6: 96 per class (the staged tree before: 103); LUT4: 188 (234)."""
    n = 1000
    graph = GateGraph.build(
        n_inputs=n, fanins=np.zeros((0, 2)), tables=[], outputs=FIRST_INPUT + np.arange(n),
        class_offsets=np.arange(0, n + 1, 100),
    )  # fmt: skip
    builder = hardware.NetlistBuilder(n, k)
    scores = hardware.group_sum(builder, graph, lambda node: (node, False))
    netlist = pipeline.simplify(builder.build([bit for s in scores for bit in s]), lut=k)
    assert netlist.n_gates <= per_input * n


def test_deep_columns_stay_shallow():
    """Counters take the earliest-computed bits: 400 bits sum in a logarithmic number of LUT levels."""
    _, netlist, _ = build_sum([1] * 400, 6)
    assert netlist.depth <= 12
