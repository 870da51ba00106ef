"""ECP5: our LUT4 netlist as Lattice LUT4 cells, kept through yosys, and the streaming top placed and routed
by nextpnr-ecp5 and packed by ecppack into a bitstream (from the system, or from pip install 'lgn[fpga]')."""

import dataclasses
import re

import pytest

from lgn.cli import main
from lgn.compiler import ecp5, formats, fpga, hardware, lut_verilog, pipeline, toolchain
from lgn.compiler.errors import ParameterError, ToolMissingError

from .test_fpga import streamable


def have(*tools: str) -> bool:
    try:
        return all(toolchain.find(t) for t in tools)
    except ToolMissingError:
        return False


needs_tools = pytest.mark.skipif(
    not have("yosys", "nextpnr-ecp5", "ecppack"), reason="no nextpnr-ecp5 and ecppack: pip install 'lgn[fpga]'"
)


def test_ecp5_cells_carry_the_ice40_tables_on_their_own_pins():
    design = hardware.lower(streamable(), 4, raw_input=False)
    design = dataclasses.replace(design, netlist=pipeline.simplify(design.netlist, lut=4))
    lattice = lut_verilog.emit_design(design, "lgn_core", "ecp5")["lgn_core.v"]
    ice40 = lut_verilog.emit_design(design, "lgn_core", "ice40")["lgn_core.v"]
    cells = re.findall(r"LUT4 #\(\.INIT\(16'h(\w+)\)\) (l\d+) \(\.A\((.*?)\), \.B\((.*?)\), \.C\((.*?)\), "
                       r"\.D\((.*?)\), \.Z\(n\d+\)\);", lattice)  # fmt: skip
    theirs = re.findall(r"SB_LUT4 #\(\.LUT_INIT\(16'h(\w+)\)\) (l\d+) \(\.O\(n\d+\), \.I0\((.*?)\), \.I1\((.*?)\), "
                        r"\.I2\((.*?)\), \.I3\((.*?)\)\);", ice40)  # fmt: skip
    assert cells == theirs and len(cells) == design.netlist.n_gates  # Z = INIT[{D, C, B, A}] as O = INIT[{I3..I0}]


def test_the_part_must_belong_to_the_target(tmp_path, capsys):
    formats.save_npz(streamable(), tmp_path / "g.npz")
    code = main(["synth", str(tmp_path / "g.npz"), "--target", "ecp5", "--pnr", "--device", "up5k"])
    err = capsys.readouterr().err
    assert code == 2 and "device up5k is not an ecp5 part; choose 25k, 45k, 85k" in err
    with pytest.raises(ParameterError, match="the ECP5 flow takes luts, gates, auto or engine"):
        ecp5.place_and_route(streamable(), "25k", tmp_path / "x", core="bogus")
    with pytest.raises(ParameterError, match="the LUT engine has no UART top"):
        ecp5.place_and_route(streamable(), "25k", tmp_path / "x", core="engine", uart=object())


@pytest.mark.hdl
@pytest.mark.skipif(not have("yosys"), reason="no yosys")
def test_synth_counts_our_ecp5_cells(tmp_path):
    whole, ours = fpga.synth_lut_native(streamable(), "ecp5", timeout=600)
    assert whole.luts == ours > 0 and "LUT4" in whole.cells and "not re-mapped" in whole.script


@pytest.mark.hdl
@pytest.mark.slow  # 6-35 s here once YoWASP's tools are compiled; a tool's first run compiles it (minutes)
@needs_tools
def test_a_small_net_to_an_ecp5_bitstream(tmp_path, capsys):
    formats.save_npz(streamable(), tmp_path / "g.npz")
    out = tmp_path / "ecp5"
    code = main(["synth", str(tmp_path / "g.npz"), "--target", "ecp5", "--pnr", "--core", "luts", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "ECP5 LFE5U-25F (CABGA381), streaming top, luts core" in text
    assert re.search(r"Fmax +\d+\.\d MHz", text) and "nextpnr-ecp5 (router2)" in text
    assert (out / "lgn_net.bit").stat().st_size > 100_000 and (out / "lgn_net.svf").exists()
    assert "LUT4" in (out / "lgn_core.v").read_text()  # our cells, kept through synth_ecp5
    # no board: only the clock is placed, on a primary clock pin (left to nextpnr it may reach no clock tree)
    assert (out / "lgn_top.lpf").read_text() == 'LOCATE COMP "clk" SITE "G2";\nIOBUF PORT "clk" IO_TYPE=LVCMOS33;\n'
    assert "the clock on G2" in text
