"""The gate orders' building blocks (lgn.compiler.c_program): the depth-first order (a topological permutation
that reaches each root's cone in the order of the roots) and the lowest class that needs each gate, checked on
hypothesis graphs against naive readings of their contracts; the programs built on them are run against the
evaluator in tests/test_c_plan.py."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.compiler.c_program import depth_first_order, first_class_reaching
from lgn.compiler.ir import FIRST_INPUT, GateGraph

from .strategies import gate_graphs


def _cone(graph: GateGraph, gate: int) -> set[int]:
    """Gate indices ``gate`` depends on, itself included."""
    seen, todo = set(), [gate]
    while todo:
        g = todo.pop()
        if g in seen:
            continue
        seen.add(g)
        todo += [int(n) - graph.first_gate for n in graph.fanins[g] if n >= graph.first_gate]
    return seen


@settings(max_examples=100)
@given(data=st.data(), graph=gate_graphs(max_inputs=6, max_gates=40))
def test_depth_first_order_contract(data, graph):
    roots = np.asarray(
        data.draw(st.lists(st.integers(0, max(graph.n_gates - 1, 0)), max_size=6)) if graph.n_gates else []
    )
    order = depth_first_order(graph, roots)
    assert sorted(order.tolist()) == list(range(graph.n_gates))  # every gate once
    position = np.empty(graph.n_gates, dtype=np.int64)
    position[order] = np.arange(graph.n_gates)
    for gate in range(graph.n_gates):  # every gate after the gates it reads
        operands = [int(n) - graph.first_gate for n in graph.fanins[gate] if n >= graph.first_gate]
        assert all(position[o] < position[gate] for o in operands)
    placed: set[int] = set()
    for root in roots.tolist():  # each root's cone: what earlier roots left of it, next in order
        fresh = _cone(graph, root) - placed
        assert {int(g) for g in order[len(placed) : len(placed) + len(fresh)]} == fresh
        placed |= fresh


def test_the_deeper_operand_goes_first():
    """g3 = f(g0, g2), g0 = f(x0, x1) on level 1, g2 = f(g1, x1) on level 2 over g1 = f(x0, x1): the walk from g3
    takes g2's cone first (slot order would take g0 first), so g1, g2, g0, g3."""
    x0, x1 = FIRST_INPUT, FIRST_INPUT + 1
    g = FIRST_INPUT + 2  # node id of gate 0
    graph = GateGraph.build(n_inputs=2, fanins=np.array([[x0, x1], [x0, x1], [g + 1, x1], [g, g + 2]]),
                            tables=np.array([0b0110, 0b1000, 0b1110, 0b0110], dtype=np.uint64),
                            outputs=[g + 3])  # fmt: skip
    assert depth_first_order(graph, np.array([3])).tolist() == [1, 2, 0, 3]


def test_unreached_gates_are_kept():
    x0 = FIRST_INPUT
    graph = GateGraph.build(n_inputs=1, fanins=np.array([[x0, x0], [x0, x0], [x0 + 2, x0]]),
                            tables=np.full(3, 0b0110, dtype=np.uint64), outputs=[x0 + 1])  # fmt: skip
    assert depth_first_order(graph, np.array([0])).tolist() == [0, 1, 2]


@settings(max_examples=100)
@given(data=st.data(), graph=gate_graphs(max_inputs=6, max_gates=40))
def test_first_class_reaching_is_the_lowest_class_whose_outputs_need_the_gate(data, graph):
    cuts = data.draw(st.lists(st.integers(1, max(graph.n_outputs - 1, 1)), max_size=3)) if graph.n_outputs > 1 else []
    graph = graph.replace(class_offsets=[0, *sorted(set(cuts)), graph.n_outputs])
    output_of = np.full(graph.n_gates, graph.n_classes, dtype=np.int64)
    classes = np.repeat(np.arange(graph.n_classes), graph.class_sizes)
    for node, c in zip(graph.outputs.tolist(), classes.tolist()):
        if node >= graph.first_gate:
            output_of[node - graph.first_gate] = min(output_of[node - graph.first_gate], c)
    expected = np.full(graph.n_gates, graph.n_classes, dtype=np.int64)
    for node, c in zip(graph.outputs.tolist(), classes.tolist()):
        if node >= graph.first_gate:
            for gate in _cone(graph, node - graph.first_gate):
                expected[gate] = min(expected[gate], c)
    assert first_class_reaching(graph, output_of).tolist() == expected.tolist()
