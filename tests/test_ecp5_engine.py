"""The LUT engine on ECP5 (compiler.ecp5_engine): its DP16KD contents are the program, the RTL and the
synthesized netlist (yosys' ECP5 flow) give the evaluator's class at the stated latency, a wrong network is
caught, a model too large for the part's block RAM is refused naming what it needs, and lgn synth --pnr writes
a bitstream with the program inside."""

import re
import shutil

import numpy as np
import pytest

from lgn.cli import main
from lgn.compiler import ecp5_engine, formats
from lgn.compiler.errors import LgnError
from lgn.compiler.ir import GateGraph
from lgn.compiler.random_graph import random_layered

from .test_ecp5 import have, needs_tools
from .test_lut_engine import ENGINE_CASES, raw_bytes, with_bytes

have_icarus = pytest.mark.skipif(
    not have("yosys") or shutil.which("iverilog") is None, reason="yosys and iverilog are needed"
)


def test_the_initvals_hold_the_program_rows():
    graph = ENGINE_CASES["arity 6, three rows a gate"]()
    engine = ecp5_engine.layout(graph)
    text = ecp5_engine.engine_verilog(graph, engine)
    words: dict[tuple[int, int, int], int] = {}  # (block, slice, word) -> 18 bits, read back from the Verilog
    for found in re.finditer(r"DP16KD #\((?P<params>.*?)\) rom_(?P<blk>\d+)_(?P<s>\d+) \(", text, re.DOTALL):
        for x, value in re.findall(r"\.INITVAL_([0-9A-F]{2})\(320'h([0-9a-f]{80})\)", found["params"]):
            for k in range(16):
                word = (int(value, 16) >> (20 * k)) & 0x3FFFF
                words[(int(found["blk"]), int(found["s"]), 16 * int(x, 16) + k)] = word
    rows = [sum(words.get((i // 1024, s, i % 1024), 0) << (18 * s) for s in range(engine.rom_slices))
            for i in range(len(engine.program.rows))]  # fmt: skip
    assert rows == [int(r) for r in engine.program.rows] and engine.row_bits == 64
    # 310 rows of 64 bits: 4 DP16KD of 18 bits side by side; one copy of the node values per fan-in
    assert len(re.findall(r"\) rom_\d+_\d+ \(", text)) == engine.program_rams == 4 and engine.node_rams == 6
    assert ecp5_engine.engine_verilog(graph) == text  # deterministic


def test_a_model_too_large_for_the_part_names_the_block_ram_it_needs():
    wide = with_bytes(random_layered(64, 1, 20_000, arity=2, classes=2, seed=1), 64, 1)  # 40,000 gates
    # 40,064 rows of 30 bits: 40 blocks of 1024 rows, 2 DP16KD each; 20,066 nodes: 2 DP16KD per copy
    with pytest.raises(LgnError, match=r"needs 84 DP16KD: the program 80 \(40,064 rows of 30 bits\), the node values "
                       r"4 \(2 copies of 20,066 bits\); the 25k \(CABGA381\) has 56"):  # fmt: skip
        ecp5_engine.layout(wide, 56, "25k (CABGA381)")
    assert ecp5_engine.layout(wide, 108).block_rams == 84


def wrong(graph: GateGraph) -> GateGraph:
    """``graph`` with its last gate (an output's) computing the opposite."""
    tables = graph.tables.copy()
    tables[-1] ^= np.uint64((1 << (1 << graph.arity)) - 1)
    return GateGraph.build(graph.n_inputs, graph.fanins, tables, graph.outputs, graph.output_negated,
                           graph.class_offsets, encoder=graph.encoder)  # fmt: skip


@pytest.mark.hdl
@have_icarus
@pytest.mark.parametrize("case", sorted(ENGINE_CASES))
def test_the_rtl_equals_the_evaluator_at_its_latency(case, tmp_path):
    graph = ENGINE_CASES[case]()
    result = ecp5_engine.simulate_engine(graph, raw_bytes(graph), sim="icarus", netlist=False, build_root=tmp_path,
                                         mode="bubbles")  # fmt: skip
    assert result.ok and result.latency_ok, result.summary()
    assert result.latency == ecp5_engine.layout(graph).program.latency


@pytest.mark.hdl
@have_icarus
def test_the_synthesized_netlist_equals_the_evaluator_and_a_wrong_network_is_caught(tmp_path):
    graph = ENGINE_CASES["arity 4, one row, bytes without bits"]()
    raw = raw_bytes(graph)
    result = ecp5_engine.simulate_engine(graph, raw, sim="icarus", build_root=tmp_path)
    assert result.ok and result.latency_ok, result.summary()
    caught = ecp5_engine.simulate_engine(wrong(graph), raw, sim="icarus", build_root=tmp_path, reference=graph)
    assert not caught.ok and caught.comparison.mismatches > 0


@pytest.mark.hdl
@have_icarus
def test_lgn_verify_netlist_runs_the_ecp5_engine(tmp_path, capsys):
    graph = ENGINE_CASES["arity 1"]()
    formats.save_npz(graph, tmp_path / "g.npz")
    code = main(["verify", str(tmp_path / "g.npz"), "--backend", "netlist", "--target", "ecp5", "--core", "engine",
                 "--sim", "icarus", "--vectors", "20", "--no-simplify"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "the LUT engine's synthesized ECP5 netlist" in out and "20 vectors, 0 mismatches" in out


@pytest.mark.hdl
@pytest.mark.slow  # about 10 s once YoWASP's tools are compiled
@needs_tools
def test_synth_pnr_of_the_engine_writes_a_bitstream_with_the_program(tmp_path, capsys):
    graph = with_bytes(random_layered(30, 2, 40, arity=6, classes=4, seed=1), 12, 1, 0, 255)
    formats.save_npz(graph, tmp_path / "g.npz")
    code = main(["synth", str(tmp_path / "g.npz"), "--target", "ecp5", "--pnr", "--core", "engine",
                 "--no-simplify", "--out", str(tmp_path / "pnr")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ECP5 LFE5U-25F (CABGA381), LUT engine" in out and "block RAM      10 of 56" in out
    assert "no upload" in out and re.search(r"Fmax +\d+\.\d MHz", out)
    assert (tmp_path / "pnr" / "lgn_net.bit").stat().st_size > 100_000
    program = ecp5_engine.layout(formats.load_npz(tmp_path / "g.npz")).program
    assert f"{program.cycles_per_sample} cycles per sample" in out


@needs_tools
def test_synth_pnr_refuses_a_model_beyond_the_block_ram_in_one_line(tmp_path, capsys):
    wide = with_bytes(random_layered(64, 1, 20_000, arity=2, classes=2, seed=1), 64, 1, 0, 255)
    formats.save_npz(wide, tmp_path / "wide.npz")
    code = main(["synth", str(tmp_path / "wide.npz"), "--target", "ecp5", "--pnr", "--core", "engine",
                 "--no-simplify", "--out", str(tmp_path / "pnr")])  # fmt: skip
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 1 and line.startswith("does not fit: the design does not fit the 25k") and "84 DP16KD" in line
