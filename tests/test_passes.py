"""Every pass keeps every output bit and score, is idempotent and never grows the graph."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lgn.compiler import passes, pipeline, truth
from lgn.compiler.ir import GateGraph
from lgn.compiler.lutmap import merge_luts
from lgn.compiler.random_graph import random_layered
from lgn.compiler.verify import compare_graphs

from .strategies import gate_graphs


def assert_equivalent(a: GateGraph, b: GateGraph) -> None:
    report = compare_graphs(a, b)
    assert report.exhaustive and report.ok, report.summary()


@pytest.mark.parametrize("step", pipeline.ALL_PASSES, ids=lambda p: p.__name__)
@given(graph=gate_graphs())
def test_pass_contract(step, graph):
    once = step(graph)
    once.validate()
    assert once.n_gates <= graph.n_gates
    assert_equivalent(graph, once)
    assert step(once).same_as(once), "not idempotent"
    assert once.encoder is graph.encoder or once.encoder.n_features == graph.encoder.n_features


@given(gate_graphs(), st.sampled_from([None, 2, 3, 4, 6]))
def test_simplify_contract(graph, lut):
    if lut is not None and graph.n_gates and np.any(pipeline.support_sizes(graph) > lut):
        lut = 6
    out = pipeline.simplify(graph, lut=lut, check=True)
    assert_equivalent(graph, out)
    assert out.n_gates <= graph.n_gates
    assert pipeline.simplify(out, lut=lut).same_as(out), "simplify is not idempotent"


@given(gate_graphs(arities=(2,)))
def test_simplified_graph_has_no_trivial_gates(graph):
    out = pipeline.simplify(graph)
    sizes = pipeline.support_sizes(out)
    assert (sizes >= 2).all(), "constants, wires and inverters must all be gone"
    assert not np.isin(out.fanins[out.fanins != 0], [1]).any(), "no gate may read constant 1"
    keys = {(tuple(sorted(r)), min(t, ~t & 0xF)) for r, t in zip(out.fanins.tolist(), out.tables.tolist())}
    assert len(keys) == out.n_gates, "structural duplicates left"


def graph2(fanins, tables, outputs, negated=None, n_inputs=2, offsets=None):
    return GateGraph.build(n_inputs, fanins, tables, outputs, negated, offsets)


AND, XOR, OR, A, NOT_A = 0x8, 0x6, 0xE, 0xA, 0x5


def test_constant_fanins_fold_and_constant_gates_vanish():
    # node 4 = AND(x0, 1) = x0; node 5 = AND(4, 0) = 0; outputs read both.
    g = graph2([[2, 1], [4, 0]], [AND, AND], outputs=[4, 5])
    out = pipeline.simplify(g)
    assert out.n_gates == 0
    assert out.outputs.tolist() == [2, 0]
    assert_equivalent(g, out)


def test_xor_of_a_node_with_itself_is_zero():
    g = graph2([[2, 3], [4, 4]], [AND, XOR], outputs=[5])
    out = pipeline.simplify(g)
    assert out.n_gates == 0 and out.outputs.tolist() == [0]


def test_inverters_move_into_consumers_and_output_flags():
    # node 4 = NOT x0, node 5 = AND(4, x1); outputs: 4 and 5.
    g = graph2([[2, 0], [4, 3]], [NOT_A, AND], outputs=[4, 5])
    out = pipeline.simplify(g)
    assert out.n_gates == 1
    assert out.outputs.tolist() == [2, 4] and out.output_negated.tolist() == [True, False]
    assert int(out.tables[0]) == truth.difflogic_id_to_table(4)  # NOT A AND B
    assert_equivalent(g, out)


def test_structural_hashing_merges_duplicates_and_complements():
    # AND(x0, x1), AND(x1, x0) and NAND(x0, x1): one gate remains; outputs keep their polarity.
    g = graph2([[2, 3], [3, 2], [2, 3]], [AND, AND, 0x7], outputs=[4, 5, 6], offsets=[0, 1, 2, 3])
    out = passes.hash_structure(g)
    out = passes.eliminate_dead(out)
    assert out.n_gates == 1
    assert out.output_negated.tolist() == [False, False, True]
    assert_equivalent(g, out)


def test_constant_one_outputs_keep_their_score():
    """The torchlogix bug: a gate folded to constant 1 must still add 1 to its class score."""
    g = graph2([[2, 3], [2, 2]], [AND, 0xF], outputs=[4, 5, 4, 4], offsets=[0, 2, 4])
    out = pipeline.simplify(g)
    assert out.outputs.tolist()[1] == 1  # the TRUE gate became the constant node 1
    assert_equivalent(g, out)


def test_dead_gates_are_removed():
    g = graph2([[2, 3], [2, 3], [4, 3]], [AND, OR, XOR], outputs=[4])
    out = passes.eliminate_dead(g)
    assert out.n_gates == 1


def test_passes_on_random_trained_like_net():
    g = random_layered(32, 5, 120, classes=4, pass_through=0.5, seed=7)
    stats = []
    out = pipeline.simplify(g, stats=stats, check=True)
    assert out.n_gates < g.n_gates * 0.8
    assert stats and all(s.gates_out <= s.gates_in for s in stats)
    assert compare_graphs(g, out, n_random=3000).ok


def test_lut_merging_never_exceeds_k_and_shrinks_random_nets():
    g = pipeline.simplify(random_layered(40, 6, 200, classes=5, seed=2))
    for k in (3, 4, 6):
        mapped = merge_luts(g, k)
        assert mapped.arity == k
        assert (pipeline.support_sizes(mapped) <= k).all()
        assert mapped.n_gates < g.n_gates
        assert compare_graphs(g, mapped, n_random=3000).ok


def test_lut_merging_refuses_gates_wider_than_k():
    g = graph2([[2, 3, 4]], [0x96], outputs=[5], n_inputs=3)
    with pytest.raises(Exception, match="more than the LUT size 2"):
        merge_luts(g, 2)
