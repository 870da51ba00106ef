"""The synthesized netlist of the streaming top on every family (iCE40, ECP5, Gowin), simulated on yosys' own
cell models against the evaluator: what ``lgn verify --backend netlist --target T`` runs, the models taken
from the yosys that synthesized, a flipped LUT table caught, and yosys 0.23's Gowin ALU map worked around."""

import re
import shutil

import pytest

from lgn.cli import main
from lgn.compiler import cell_models, ecp5, formats, gowin, netlist_sim, toolchain
from lgn.compiler.fpga_devices import GOWIN_DEVICES

from .test_ecp5 import have
from .test_fpga import raw_samples, streamable

icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed (bash .ci/bootstrap)")
needs_yosys = pytest.mark.skipif(not have("yosys"), reason="no yosys: pip install 'lgn[fpga]'")
# yosys from the system where it is installed (Debian's 0.23 here) and from the YoWASP wheel (0.70): each
# netlist is simulated on the models of the yosys that wrote it.
TOOLCHAINS = ["auto", pytest.param("yowasp", marks=pytest.mark.skipif(not have("yosys") or toolchain.find(
    "yosys", "auto").kind == "yowasp", reason="auto is already YoWASP's yosys"))]  # fmt: skip

LIBRARY = """`timescale 1ps / 1ps
`define INIT_OF(x) x
(* abc9_lut=1 *)
module LUT2(input A, B, output Z); parameter [3:0] INIT = 0; assign Z = INIT[{B, A}]; endmodule
module CARRY(input A, B, output Z);
    LUT2 #(.INIT(4'h8)) l (.A(A), .B(B), .Z(Z));
endmodule
`ifndef NO_IO
module IO(input I, output O);
    $error("not for simulation");
endmodule
`endif
"""


def test_only_the_models_a_netlist_names_are_kept_with_what_they_instantiate():
    kept = cell_models.select_modules(LIBRARY, {"CARRY", "wire_1"})
    assert re.findall(r"^module (\w+)", kept, re.MULTILINE) == ["LUT2", "CARRY"]  # CARRY's LUT2 came along
    assert "$error" not in kept and "`ifndef NO_IO\n`endif\n" in kept  # the directives still balance
    assert kept.startswith("`timescale 1ps / 1ps\n`define INIT_OF(x) x\n")
    assert cell_models.select_modules(LIBRARY, {"LUT2"}).count("module") == 2  # module and endmodule: one
    assert "module" not in cell_models.select_modules(LIBRARY, set())


def test_each_included_file_is_expanded_once(tmp_path):
    (tmp_path / "ff.vh").write_text("module FF(); endmodule\n")
    (tmp_path / "common.vh").write_text('`include "ff.vh"\nmodule LUT(); endmodule\n')
    text = cell_models.expand_includes('`include "common.vh"\n`include "ff.vh"\nmodule TOP(); endmodule\n', tmp_path)
    assert re.findall(r"^module (\w+)", text, re.MULTILINE) == ["FF", "LUT", "TOP"]
    with pytest.raises(Exception, match="include gone.vh, which is not in"):
        cell_models.expand_includes('`include "gone.vh"\n', tmp_path)


def test_gowin_alu_cells_are_kept_from_yosys_that_maps_them_right():
    assert not gowin.alu_trusted("0.23") and not gowin.alu_trusted("0.28") and not gowin.alu_trusted("(unknown)")
    assert gowin.alu_trusted("0.29") and gowin.alu_trusted("0.70.0") and gowin.alu_trusted("1.0")
    old = gowin.synth_commands(GOWIN_DEVICES["GW1NR-9"], alu=False)
    assert all(c.endswith(" -noalu") for c in old if c.startswith("synth_gowin")) and len(old) > 3
    new = gowin.synth_commands(GOWIN_DEVICES["GW2AR-18"], alu=True)
    assert all(c.endswith(" -family gw2a") for c in new if c.startswith("synth_gowin"))


def test_the_netlist_is_written_where_the_flow_writes_its_json():
    for family in ("ice40", "ecp5", "gowin"):
        commands = netlist_sim.synth_commands(family, "lgn_top")
        assert commands[-1] == "write_verilog -noattr netlist.v" and not any("write_json" in c for c in commands)
    assert netlist_sim.synth_commands("ecp5", "lgn_top")[:-1] == ecp5.synth_commands()[:-1]  # the flow's own
    assert netlist_sim.synth_commands("gowin", "lgn_top", "GW2AR-18")[:-1] == gowin.synth_commands(
        GOWIN_DEVICES["GW2AR-18"])[:-1]  # fmt: skip
    with pytest.raises(Exception, match="device 'up5k' is not a gowin part; choose GW1NR-9, GW2AR-18"):
        netlist_sim.synth_commands("gowin", "lgn_top", "up5k")


@pytest.mark.hdl
@needs_yosys
@icarus
@pytest.mark.parametrize("tools", TOOLCHAINS)
@pytest.mark.parametrize("family", ["ecp5", "gowin"])
def test_the_synthesized_netlist_equals_the_evaluator(family, tools, tmp_path, monkeypatch):
    monkeypatch.setattr(toolchain, "_choice", tools)
    run = netlist_sim.simulate(streamable(), raw_samples(200), family, sim="icarus", build_root=tmp_path)
    assert run.result.ok and run.result.vectors == 200 and run.result.latency_ok, run.result.summary()
    luts = sum(n for cell, n in run.cells.items() if re.fullmatch(r"LUT[1-4]", cell))
    assert 80 <= luts <= 130, run.cells  # our 57-gate net's LUT4 netlist and the top's own logic


@pytest.mark.hdl
@icarus
@pytest.mark.skipif(shutil.which("yosys") is None, reason="no system yosys")
def test_old_yosys_gowin_comparisons_stay_out_of_alu_cells(tmp_path, monkeypatch):
    monkeypatch.setattr(toolchain, "_choice", "system")
    if gowin.alu_trusted(toolchain.find("yosys").version):
        pytest.skip("the system's yosys maps Gowin ALU cells right")
    # yosys 0.23's gate core with its ALU cells gave a wrong class on 31 of these 200 samples
    run = netlist_sim.simulate(streamable(), raw_samples(200), "gowin", sim="icarus", core="gates", stream=False,
                               build_root=tmp_path)  # fmt: skip
    assert run.result.ok and "ALU" not in run.cells, (run.result.summary(), run.cells)


def flip_one_lut(netlist: str) -> str:
    """``netlist`` with the table of its first LUT4 complemented (every one of its outputs inverted)."""
    found = re.search(r"LUT4 #\(\s*\.INIT\(16'h([0-9a-fA-F]{4})\)", netlist)
    assert found is not None, "no LUT4 with an INIT in the netlist"
    flipped = f"{0xFFFF ^ int(found[1], 16):04x}"
    return netlist[: found.start(1)] + flipped + netlist[found.end(1) :]


@pytest.mark.hdl
@needs_yosys
@pytest.mark.parametrize("family", ["ecp5", "gowin"])
def test_the_command_line_reports_a_flipped_lut_and_passes_the_right_netlist(family, tmp_path, capsys, monkeypatch):
    formats.save_npz(streamable(), tmp_path / "g.npz")
    args = ["verify", str(tmp_path / "g.npz"), "--backend", "netlist", "--target", family, "--vectors", "300"]
    assert main(args) == 0  # Verilator, the default for a netlist
    text = capsys.readouterr().out
    name = {"ecp5": "ECP5", "gowin": "Gowin"}[family]
    assert text.strip().endswith("300 vectors, 0 mismatches") and f"synthesized {name} netlist (luts core)" in text
    assert re.search(rf"yosys synth_{family}: .*\d+ LUT4.* in \d+\.\d s; verilator builds", text), text
    assert re.search(r"synthesis \d+\.\d s, build \d+\.\d s, simulation \d+\.\d s", text), text
    synthesize = netlist_sim.synthesize

    def flipped(*a, **k):
        netlist, cells = synthesize(*a, **k)
        return flip_one_lut(netlist), cells

    monkeypatch.setattr(netlist_sim, "synthesize", flipped)
    assert main(args) == 1
    text = capsys.readouterr().out
    wrong = int(re.search(r"300 vectors, (\d+) mismatches", text)[1])
    shown = re.findall(r"^mismatch: sample (\d+): evaluator class (\d), netlist class (\d)$", text, re.MULTILINE)
    assert wrong > 0 and len(shown) == min(wrong, 5) and all(ours != theirs for _, ours, theirs in shown), text
    assert (f"... and {wrong - 5} more mismatching samples" in text) == (wrong > 5)


def test_the_command_line_refuses_what_a_family_does_not_take(tmp_path, capsys):
    formats.save_npz(streamable(), tmp_path / "g.npz")
    base = ["verify", str(tmp_path / "g.npz"), "--backend", "netlist"]
    assert main([*base, "--target", "gowin", "--core", "engine"]) == 2
    assert "core engine is the LUT engine of the iCE40 UP5K and ECP5; --target gowin takes luts or gates" in (
        capsys.readouterr().err
    )
    assert main([*base, "--target", "gowin", "--device", "25k"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lgn: error: --device '25k' is not a gowin part") and err.count("\n") == 1
