"""Gowin: our LUT4 netlist as Gowin LUT4 cells (F = INIT[{I3, I2, I1, I0}]), checked against the evaluator on
yosys' model of the cell, kept through synth_gowin, and the streaming top placed and routed by
nextpnr-himbaechel and packed by apycula's gowin_pack into a .fs (all from pip install 'lgn[fpga]')."""

import dataclasses
import re
import shutil

import pytest

from lgn.cli import main
from lgn.compiler import evaluate, formats, fpga, fpga_devices, gowin, hardware, hdl_sim, lut_verilog, pipeline
from lgn.compiler.lowering import Emitted

from .test_ecp5 import have
from .test_fpga import raw_samples, streamable

needs_tools = pytest.mark.skipif(
    not have("yosys", "nextpnr-himbaechel", "gowin_pack"),
    reason="no nextpnr-himbaechel-gowin and gowin_pack: pip install 'lgn[fpga]'",
)
icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed (bash .ci/bootstrap)")


def lut4_design(graph):
    design = hardware.lower(graph, 4, raw_input=False)
    return dataclasses.replace(design, netlist=pipeline.simplify(design.netlist, lut=4))


def test_gowin_cells_carry_the_ice40_tables_on_the_same_pins():
    design = lut4_design(streamable())
    ours = lut_verilog.emit_design(design, "lgn_core", "gowin")["lgn_core.v"]
    ice40 = lut_verilog.emit_design(design, "lgn_core", "ice40")["lgn_core.v"]
    cells = re.findall(r"  LUT4 #\(\.INIT\(16'h(\w+)\)\) (l\d+) \(\.F\(n\d+\), (.*?)\);", ours)
    theirs = re.findall(r"SB_LUT4 #\(\.LUT_INIT\(16'h(\w+)\)\) (l\d+) \(\.O\(n\d+\), (.*?)\);", ice40)
    assert cells == theirs and len(cells) == design.netlist.n_gates  # F = INIT[{I3..I0}] as O = INIT[{I3..I0}]


def test_pins_put_the_clock_on_the_boards_oscillator_and_the_class_on_its_leds():
    for name, spec in fpga_devices.GOWIN_DEVICES.items():
        cst = fpga_devices.gowin_constraints(spec, 4)
        placed = dict(re.findall(r'^IO_LOC "(.+)" (\d+);$', cst, re.MULTILINE))
        assert placed["clk"] == spec.clock and len(set(placed.values())) == len(placed) == 17, name
        assert [placed[f"class_out[{j}]"] for j in range(4)] == spec.leds.split()[:4]
        assert set(placed.values()) <= set(spec.pins.split()) | {spec.clock}
    assert fpga_devices.GOWIN_DEVICES["GW1NR-9"].clock == "52"  # the Tang Nano 9K's 27 MHz oscillator


@pytest.mark.hdl
@icarus
def test_gowin_lut4_netlist_equals_the_evaluator_and_a_wrong_init_order_is_caught(tmp_path, monkeypatch):
    graph, raw = streamable(), raw_samples(200)
    design, bits = lut4_design(graph), evaluate.encode(graph, raw)
    result = hdl_sim.simulate_design(graph, design, bits, target="gowin", build_root=tmp_path / "right")
    assert result.ok and result.vectors == 200, result.summary()
    emit = lut_verilog.emit_design

    def msb_first(*args, **kwargs) -> Emitted:  # the table read as INIT[{I0, I1, I2, I3}]: the wrong convention
        emitted = emit(*args, **kwargs)
        swap = {"I0": "I3", "I1": "I2", "I2": "I1", "I3": "I0"}
        files = {k: re.sub(r"\.(I[0-3])\(", lambda m: f".{swap[m.group(1)]}(", v) for k, v in emitted.files.items()}
        return dataclasses.replace(emitted, files=files)

    monkeypatch.setattr(lut_verilog, "emit_design", msb_first)
    wrong = hdl_sim.simulate_design(graph, design, bits, target="gowin", build_root=tmp_path / "wrong")
    assert not wrong.ok


@pytest.mark.hdl
@pytest.mark.skipif(not have("yosys"), reason="no yosys")
def test_synth_counts_our_gowin_cells():
    whole, ours = fpga.synth_lut_native(streamable(), "gowin", timeout=600)
    assert whole.luts == ours > 0 and "LUT4" in whole.cells and "not re-mapped" in whole.script


def test_a_part_of_another_family_is_refused(tmp_path, capsys):
    formats.save_npz(streamable(), tmp_path / "g.npz")
    code = main(["synth", str(tmp_path / "g.npz"), "--target", "gowin", "--pnr", "--device", "25k"])
    assert code == 2 and "device 25k is not a gowin part; choose GW1NR-9, GW2AR-18" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # not a part lgn knows at all: argparse's choices
        main(["synth", str(tmp_path / "g.npz"), "--target", "gowin", "--pnr", "--device", "GW5A-25"])
    with pytest.raises(Exception, match="the Gowin flow takes luts, gates or auto"):
        gowin.place_and_route(streamable(), "GW1NR-9", tmp_path / "x", core="engine")
    with pytest.raises(Exception, match="device 'up5k' is not a Gowin part"):
        gowin.place_and_route(streamable(), "up5k", tmp_path / "x")


@pytest.mark.hdl
@pytest.mark.skipif(not have("yosys"), reason="no yosys")
def test_too_large_a_design_is_refused_before_routing(tmp_path, capsys, monkeypatch):
    small = dataclasses.replace(fpga_devices.GOWIN_DEVICES["GW1NR-9"], luts=50)
    monkeypatch.setitem(fpga_devices.GOWIN_DEVICES, "GW1NR-9", small)
    formats.save_npz(streamable(), tmp_path / "g.npz")
    out = tmp_path / "gowin"
    code = main(["synth", str(tmp_path / "g.npz"), "--target", "gowin", "--pnr", "--core", "luts", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 1 and re.search(r"does not fit: .*GW1NR-9.*: \d+ LUT4 of 50, \d+ flip-flops of 6,480", text), text
    assert not (out / "lgn_pnr.json").exists() and not (out / "lgn_net.fs").exists()


@pytest.mark.hdl
@pytest.mark.slow  # a few seconds once YoWASP's tools are compiled; a tool's first run compiles it (minutes)
@needs_tools
@pytest.mark.parametrize("tools", ["auto", "yowasp"])  # yosys: the system's (0.23 here) where present, and 0.70
def test_a_small_net_to_a_gowin_bitstream(tools, tmp_path, capsys):
    formats.save_npz(streamable(), tmp_path / "g.npz")
    out = tmp_path / "gowin"
    args = ["--target", "gowin", "--pnr", "--core", "luts", "--out", str(out), "--toolchain", tools]
    code = main(["synth", str(tmp_path / "g.npz"), *args])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "Gowin GW1NR-9 (GW1NR-LV9QN88PC6/I5), streaming top, luts core" in text
    cells = re.search(r"logic cells +(\d+) of 8640 \((\d+) LUT4, (\d+) flip-flops\)", text)
    assert cells and 50 < int(cells[2]) <= int(cells[1]) < 400 and 20 <= int(cells[3]) < 100, text
    assert re.search(r"Fmax +\d+\.\d MHz", text) and "Tang Nano 9K's clock" in text
    assert (out / "lgn_net.fs").stat().st_size > 100_000
    assert 'IO_LOC "clk" 52;' in (out / "lgn_top.cst").read_text()
    assert "LUT4" in (out / "lgn_core.v").read_text()  # our cells, kept through synth_gowin
