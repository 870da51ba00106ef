"""IR invariants: what validate() accepts and the one-line message for each thing it refuses."""

import numpy as np
import pytest
from hypothesis import given

from lgn.compiler.errors import GraphError
from lgn.compiler.ir import Encoder, GateGraph

from .strategies import gate_graphs


def tiny(**changes):
    fields = dict(
        n_inputs=2,
        fanins=[[2, 3], [4, 2]],
        tables=[0x8, 0x6],
        outputs=[4, 5],
        output_negated=[False, True],
        class_offsets=[0, 1, 2],
    )
    fields.update(changes)
    return GateGraph.build(**fields)


def test_tiny_graph_shape():
    g = tiny()
    assert (g.n_inputs, g.n_gates, g.arity, g.first_gate, g.n_nodes) == (2, 2, 2, 4, 6)
    assert g.levels.tolist() == [1, 2]
    assert g.n_classes == 2 and g.class_sizes.tolist() == [1, 1]


def test_arrays_are_frozen():
    g = tiny()
    for array in (g.fanins, g.tables, g.outputs, g.output_negated, g.class_offsets):
        with pytest.raises(ValueError):
            array[0] = 0


@given(gate_graphs())
def test_generated_graphs_validate(graph):
    graph.validate()
    assert graph.levels.shape == (graph.n_gates,)
    for gates in graph.level_batches:  # no gate reads a gate of its own batch
        nodes = set((graph.first_gate + gates).tolist())
        assert not nodes & set(graph.fanins[gates].ravel().tolist())


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(fanins=[[2, 3], [4, 5]]), r"gate 1 \(node 5\): fan-in 1 reads node 5, which is not before it"),
        (dict(fanins=[[2, 7], [4, 2]]), r"gate 0 \(node 4\): fan-in 1 reads node 7"),
        (dict(fanins=[[2, -1], [4, 2]]), r"reads node -1, which is negative"),
        (dict(tables=[0x18, 0x6]), r"gate 0 \(node 4\): truth table 0x18 has bits beyond 2\^2"),
        (dict(tables=[0x8]), r"tables must have shape \(2,\)"),
        (dict(fanins=[[2, 3, 3, 3, 3, 3, 3], [2, 3, 3, 3, 3, 3, 3]]), r"1 <= K <= 6"),
        (dict(outputs=[4, 9]), r"output 1 reads node 9, outside 0..5"),
        (dict(output_negated=[True]), r"equal-length"),
        (dict(class_offsets=[0, 1, 3]), r"class groups must cover the 2 outputs exactly"),
        (dict(class_offsets=[0, 0, 2]), r"class group 0 is empty"),
        (dict(class_offsets=[0]), r"at least one class"),
        (dict(n_inputs=-1), r"n_inputs must be between 0 and 16777216"),
        (dict(n_inputs=2.5), r"n_inputs must be an integer"),
        (dict(fanins=[[2, 3.5], [4, 2]]), r"fanins must hold integers"),
        (dict(fanins=[["a", "b"], ["c", "d"]]), r"fanins must be a numeric array"),
        (dict(tables=[-1, 6]), r"tables holds values outside uint64"),
        (dict(output_negated=[2, 0]), r"output_negated must hold booleans"),
        (dict(encoder=Encoder(1, np.array([0, 1]), np.array([0.5, 0.5]))), r"input 1 reads feature 1 of 1"),
        (dict(encoder=Encoder(1, np.array([0]), np.array([0.5]))), r"a feature and a threshold for each"),
        (dict(encoder=Encoder(1, np.array([0, 0]), np.array([0.5, np.nan]))), r"non-finite threshold"),
    ],
)
def test_validate_refuses_with_a_clear_message(changes, message):
    with pytest.raises(GraphError, match=message):
        tiny(**changes)


def test_replace_and_same_as():
    g = tiny()
    assert g.same_as(tiny())
    h = g.replace(tables=[0x8, 0x9])
    assert not g.same_as(h) and h.tables.tolist() == [0x8, 0x9]


def test_deep_chain_levels_use_ordered_fallback():
    n = 3000  # deep enough that the vectorised rounds hand over to the ordered pass
    fanins = [[2, 2]] + [[3 + i, 2] for i in range(n - 1)]
    g = GateGraph.build(n_inputs=1, fanins=fanins, tables=[0x6] * n, outputs=[2 + n])
    assert g.levels.tolist() == list(range(1, n + 1))
