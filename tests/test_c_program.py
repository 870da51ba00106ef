"""The depth-first gate order (lgn.compiler.c_program): a topological permutation that reaches each root's cone in
the order of the roots; checked on hypothesis graphs against its contract, and through the programs built on it
(tests/test_c_plan.py runs them against the evaluator)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.compiler.c_program import depth_first_order
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
    order, owner = depth_first_order(graph, roots)
    assert sorted(order.tolist()) == list(range(graph.n_gates))  # every gate once
    position = np.empty(graph.n_gates, dtype=np.int64)
    position[order] = np.arange(graph.n_gates)
    for gate in range(graph.n_gates):  # every gate after the gates it reads
        operands = [int(n) - graph.first_gate for n in graph.fanins[gate] if n >= graph.first_gate]
        assert all(position[o] < position[gate] for o in operands)
    placed: set[int] = set()
    for rank, root in enumerate(roots.tolist()):  # root r's cone: what earlier roots left of it, next in order
        fresh = _cone(graph, root) - placed
        if fresh:
            assert {int(g) for g in order[len(placed) : len(placed) + len(fresh)]} == fresh
            assert (owner[sorted(fresh)] == rank).all()
        placed |= fresh


def test_the_deeper_operand_goes_first():
    """g3 = f(g0, g2), g0 = f(x0, x1) on level 1, g2 = f(g1, x1) on level 2 over g1 = f(x0, x1): the walk from g3
    takes g2's cone first (slot order would take g0 first), so g1, g2, g0, g3."""
    x0, x1 = FIRST_INPUT, FIRST_INPUT + 1
    g = FIRST_INPUT + 2  # node id of gate 0
    graph = GateGraph.build(n_inputs=2, fanins=np.array([[x0, x1], [x0, x1], [g + 1, x1], [g, g + 2]]),
                            tables=np.array([0b0110, 0b1000, 0b1110, 0b0110], dtype=np.uint64),
                            outputs=[g + 3])  # fmt: skip
    order, owner = depth_first_order(graph, np.array([3]))
    assert order.tolist() == [1, 2, 0, 3] and owner.tolist() == [0, 0, 0, 0]


def test_unreached_gates_are_kept():
    x0 = FIRST_INPUT
    graph = GateGraph.build(n_inputs=1, fanins=np.array([[x0, x0], [x0, x0], [x0 + 2, x0]]),
                            tables=np.full(3, 0b0110, dtype=np.uint64), outputs=[x0 + 1])  # fmt: skip
    order, owner = depth_first_order(graph, np.array([0]))
    assert order.tolist() == [0, 1, 2] and owner[0] == 0 and (owner[1:] >= 1).all()
