"""The hardware lowering: compressor-tree GroupSum, comparator-tree argmax and encoder comparators as IR gates,
checked by the evaluator against the graph's own GroupSum and argmax; the LUT-native Verilog in simulation."""

import dataclasses
import itertools
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.compiler import evaluate, hardware, hdl_sim, lut_verilog, pipeline, truth
from lgn.compiler.errors import LgnError
from lgn.compiler.ir import Encoder, GateGraph
from lgn.compiler.random_graph import random_layered
from lgn.compiler.verify import test_vectors as make_vectors

from .strategies import gate_graphs, tiny_encoder_graph, tiny_graph


def check_design(graph: GateGraph, design: hardware.Design, bits: np.ndarray, raw=None) -> None:
    inputs = hardware.raw_bits(raw) if design.raw_input else bits
    scores, classes = design.decode(evaluate.output_bits(design.netlist, inputs))
    if design.with_scores:
        assert scores is not None and np.array_equal(scores, evaluate.scores(graph, bits))
    assert np.array_equal(classes, evaluate.predict(graph, bits))


@pytest.mark.parametrize("k", [3, 4, 6])
def test_compressor_tree_equals_the_plain_sum_exhaustively(k):
    """Every assignment of 10 bits, three of them counted with weights 2, 3 and 5."""
    builder = hardware.NetlistBuilder(10, k)
    weights = [1] * 7 + [2, 3, 5]
    columns = [[] for _ in range(6)]
    for i, w in enumerate(weights):
        for j in range(w.bit_length()):
            if (w >> j) & 1:
                columns[j].append((2 + i, False))
    total = hardware.count_columns(builder, columns, 5)
    netlist = builder.build(total)
    bits = np.array(list(itertools.product([0, 1], repeat=10)))
    out = evaluate.output_bits(netlist, bits).astype(np.int64)
    assert np.array_equal(out @ (1 << np.arange(5)), bits @ np.array(weights))


@settings(max_examples=25, deadline=None)
@given(gate_graphs(max_inputs=7, max_gates=20), st.sampled_from([4, 6]), st.booleans())
def test_lowered_design_equals_the_graph(graph, k, with_scores):
    bits, _ = make_vectors(graph.n_inputs, 200)
    design = hardware.lower(graph, k, raw_input=False, with_scores=with_scores)
    check_design(graph, design, bits)
    mapped = dataclasses.replace(design, netlist=pipeline.simplify(design.netlist, lut=k))
    assert mapped.netlist.n_gates <= design.netlist.n_gates
    check_design(graph, mapped, bits)


@pytest.mark.parametrize("k", [4, 6])
def test_raw_feature_designs_apply_the_encoder(k):
    graph = random_layered(24, 3, 30, classes=3, pass_through=0.3, seed=1)
    thresholds = np.r_[-3.0, 0.5, 127.5, 254.9, 255.0, 300.0, np.linspace(1, 250, 18)]
    graph = graph.replace(encoder=Encoder(12, np.arange(24) % 12, thresholds))
    raw = np.random.default_rng(0).integers(0, 256, (400, 12)).astype(np.uint8)
    raw[:3] = np.array([0, 255, 128])[:, None]  # the extremes and the middle in every feature
    design = hardware.lower(graph, k)
    assert design.raw_input and design.netlist.n_inputs == 96
    check_design(graph, design, evaluate.encode(graph, raw), raw)


def test_wide_gates_split_into_small_luts():
    graph = random_layered(16, 2, 30, arity=6, classes=3, seed=5)
    design = hardware.lower(graph, 4)
    assert design.netlist.arity == 4
    check_design(graph, design, np.random.default_rng(1).integers(0, 2, (1000, 16)))


def test_ties_go_to_the_lowest_class():
    """Scores per input (x0, x1): (0,0) all 0; (0,1) 0,2,1,1; (1,0) 1,0,1,1; (1,1) 1,2,2,2: the lowest tied
    class wins every time."""
    graph = GateGraph.build(
        n_inputs=2, fanins=np.zeros((0, 2)), tables=[], outputs=[2, 3, 3, 2, 3, 2, 3],
        class_offsets=[0, 1, 3, 5, 7],
    )  # fmt: skip
    design = hardware.lower(graph, 6)
    bits = np.array(list(itertools.product([0, 1], repeat=2)))
    _, classes = design.decode(evaluate.output_bits(design.netlist, bits))
    assert classes.tolist() == evaluate.predict(graph, bits).tolist() == [0, 1, 0, 1]


def test_lut_native_verilog_is_deterministic_and_names_cells():
    design = hardware.lower(tiny_graph(), 4)
    design = dataclasses.replace(design, netlist=pipeline.simplify(design.netlist, lut=4))
    ice40 = lut_verilog.emit_design(design, target="ice40")["lgn_net.v"]
    assert "SB_LUT4 #(.LUT_INIT(16'h" in ice40 and ice40 == lut_verilog.emit_design(design, target="ice40")["lgn_net.v"]
    assert "LUT6 #(.INIT(64'h" in lut_verilog.emit_design(design, target="xilinx")["lgn_net.v"]
    with pytest.raises(LgnError, match="ice40 LUTs take at most 4"):
        wide = hardware.lower(random_layered(12, 2, 12, arity=6, classes=2, seed=1), 6)
        lut_verilog.emit_design(
            dataclasses.replace(wide, netlist=pipeline.simplify(wide.netlist, lut=6)), target="ice40"
        )


def test_golden_lut_native_verilog(golden):
    design = hardware.lower(tiny_encoder_graph(), 4)
    design = dataclasses.replace(design, netlist=pipeline.simplify(design.netlist, lut=4))
    golden("lut_tiny_ice40_2.v", lut_verilog.emit_design(design, target="ice40", pipeline=2)["lgn_net.v"])
    golden("lut_tiny_generic.v", lut_verilog.emit_design(design, target="generic")["lgn_net.v"])


icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed (bash .ci/bootstrap)")


@pytest.mark.hdl
@icarus
@pytest.mark.parametrize(
    "target, pipeline_levels", [("generic", None), ("generic", 3), ("ice40", None), ("ice40", 2), ("ecp5", None)]
)
def test_lut_native_verilog_equals_the_evaluator(target, pipeline_levels, tmp_path):
    graph = random_layered(24, 3, 30, classes=3, pass_through=0.3, seed=3)
    graph = graph.replace(encoder=Encoder(12, np.arange(24) % 12, np.linspace(-5, 300, 24)))
    raw = np.random.default_rng(2).integers(0, 256, (300, 12)).astype(np.uint8)
    k = 4 if target in ("ice40", "ecp5") else 6
    design = hardware.lower(graph, k)
    design = dataclasses.replace(design, netlist=pipeline.simplify(design.netlist, lut=k))
    result = hdl_sim.simulate_design(
        graph, design, evaluate.encode(graph, raw), raw, target=target, pipeline=pipeline_levels, mode="bubbles",
        build_root=tmp_path,
    )  # fmt: skip
    assert result.ok, result.summary()
    if pipeline_levels:
        assert result.latency == -(-design.netlist.depth // pipeline_levels)


@pytest.mark.hdl
@icarus
@settings(max_examples=4, deadline=None)
@given(gate_graphs(min_inputs=1, max_inputs=7, max_gates=15, with_encoder=False), st.booleans())
def test_generated_designs_on_icarus(graph, with_scores):
    design = hardware.lower(graph, 4, with_scores=with_scores)
    design = dataclasses.replace(design, netlist=pipeline.simplify(design.netlist, lut=4))
    bits, _ = make_vectors(graph.n_inputs, 80)
    result = hdl_sim.simulate_design(graph, design, bits, target="ice40")
    assert result.ok, result.summary()


@pytest.mark.hdl
@icarus
def test_a_wrong_lut_is_caught_in_simulation(tmp_path):
    graph = random_layered(10, 2, 12, classes=2, seed=4)
    design = hardware.lower(graph, 6)
    design = dataclasses.replace(design, netlist=pipeline.simplify(design.netlist, lut=6))
    netlist = design.netlist
    top = int(netlist.outputs[-1]) - netlist.first_gate  # the LUT of the class's top bit
    assert top >= 0
    tables = netlist.tables.copy()
    tables[top] ^= truth.table_mask(netlist.arity)  # the class's top bit inverted
    broken = dataclasses.replace(design, netlist=netlist.replace(tables=tables))
    bits, _ = make_vectors(graph.n_inputs)
    assert not np.array_equal(evaluate.output_bits(broken.netlist, bits), evaluate.output_bits(netlist, bits))
    assert not hdl_sim.simulate_design(graph, broken, bits, build_root=tmp_path).ok
