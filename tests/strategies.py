"""hypothesis strategies for gate graphs biased like trained nets: many pass-throughs (wires and
inverters), constants, shared and repeated fan-ins, every arity 1..6, negated and constant outputs."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lgn.compiler import truth
from lgn.compiler.ir import FIRST_INPUT, Encoder, GateGraph


@st.composite
def gate_tables(draw, arity: int) -> int:
    kind = draw(st.sampled_from(["pass", "pass", "not", "const", "random", "random", "random"]))
    mask = int(truth.table_mask(arity))
    if kind in ("pass", "not"):
        t = int(truth.projection(draw(st.integers(0, arity - 1)), arity))
        return t if kind == "pass" else ~t & mask
    if kind == "const":
        return draw(st.sampled_from([0, mask]))
    return draw(st.integers(0, mask))


@st.composite
def fanin_node(draw, node: int, first_gate: int) -> int:
    kind = draw(st.sampled_from(["const", "input", "recent", "any", "any"]))
    if kind == "const" or node <= FIRST_INPUT:
        return draw(st.integers(0, 1))
    if kind == "input" and first_gate > FIRST_INPUT:
        return draw(st.integers(FIRST_INPUT, first_gate - 1))
    if kind == "recent":
        return draw(st.integers(max(0, node - 4), node - 1))
    return draw(st.integers(0, node - 1))


@st.composite
def gate_graphs(
    draw,
    max_inputs: int = 8,
    max_gates: int = 30,
    arities=(1, 2, 3, 4, 5, 6),
    with_encoder: bool | None = None,
    min_inputs: int = 0,
) -> GateGraph:
    n_inputs = draw(st.integers(min_inputs, max_inputs))
    arity = draw(st.sampled_from(arities))
    n_gates = draw(st.integers(0, max_gates))
    first = FIRST_INPUT + n_inputs
    fanins, tables = [], []
    for gate in range(n_gates):
        node = first + gate
        fanins.append([draw(fanin_node(node, first)) for _ in range(arity)])
        tables.append(draw(gate_tables(arity)))
    n_nodes = first + n_gates
    n_classes = draw(st.integers(1, 4))
    sizes = [draw(st.integers(1, 4)) for _ in range(n_classes)]
    n_out = sum(sizes)
    late = max(0, n_nodes - 6)
    outputs = [draw(st.one_of(st.integers(late, n_nodes - 1), st.integers(0, n_nodes - 1))) for _ in range(n_out)]
    negated = [draw(st.booleans()) for _ in range(n_out)]
    encoder = None
    if with_encoder or (with_encoder is None and draw(st.booleans())):
        n_features = draw(st.integers(1, 4))
        encoder = Encoder(
            n_features,
            np.array([draw(st.integers(0, n_features - 1)) for _ in range(n_inputs)], dtype=np.int64),
            np.array([draw(st.floats(0, 255, allow_nan=False)) for _ in range(n_inputs)]),
        )
    return GateGraph.build(
        n_inputs=n_inputs,
        fanins=np.asarray(fanins, dtype=np.int64).reshape(n_gates, arity),
        tables=np.asarray(tables, dtype=np.uint64),
        outputs=outputs,
        output_negated=negated,
        class_offsets=np.concatenate([[0], np.cumsum(sizes)]),
        encoder=encoder,
    )


def padding_probe_graph() -> GateGraph:
    """Class 0 counts three NOT(x0), class 1 is a constant 1: with x0 = 1 every score is [0, 1], and a
    padding sample (all zeros) that leaked into a result would show up as [3, 1]."""
    return GateGraph.build(
        n_inputs=1,
        fanins=np.zeros((0, 2)),
        tables=[],
        outputs=[2, 2, 2, 1],
        output_negated=[1, 1, 1, 0],
        class_offsets=[0, 3, 4],
    )


def tiny_graph() -> GateGraph:
    """Three inputs, four 2-input gates, a negated and a constant output: the golden-file example."""
    return GateGraph.build(
        n_inputs=3,
        fanins=[[2, 3], [3, 4], [5, 6], [7, 2]],
        tables=[0x8, 0x6, 0xE, 0x9],
        outputs=[7, 8, 6, 1],
        output_negated=[False, True, False, False],
        class_offsets=[0, 2, 4],
    )


def tiny_lut_graph() -> GateGraph:
    """Three inputs, 3-input LUT gates: one reads three inputs, one reads only constants (a wire in Verilog),
    one mixes a constant, an input and a gate: the golden example of k-input gates."""
    return GateGraph.build(
        n_inputs=3,
        fanins=[[2, 3, 4], [0, 1, 0], [1, 4, 5]],
        tables=[0x96, 0xE8, 0x6A],
        outputs=[5, 6, 7, 7],
        output_negated=[False, False, True, False],
        class_offsets=[0, 2, 4],
    )


def tiny_encoder_graph() -> GateGraph:
    """``tiny_graph`` reading raw features: bit i is feature i above its threshold (the direct uint8 path in C),
    thresholds that always fire (-4) and never fire (300) included."""
    return tiny_graph().replace(encoder=Encoder(3, np.array([0, 1, 2]), np.array([127.5, -4.0, 300.0])))
