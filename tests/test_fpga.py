"""iCE40: the streaming top in simulation (RTL and the synthesized netlist), pin constraints, and place and
route down to a bitstream with the Debian tools (skipped with a reason where they are absent)."""

import shutil
import time

import numpy as np
import pytest

from lgn.cli import main
from lgn.compiler import formats, fpga, hdl_tools, ice40_sim
from lgn.compiler.errors import LgnError
from lgn.compiler.ir import Encoder
from lgn.compiler.random_graph import random_layered

TOOLS = ("yosys", "nextpnr-ice40", "icepack", "iverilog")
have_tools = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS),
    reason="yosys, nextpnr-ice40, fpga-icestorm and iverilog are needed (bash .ci/bootstrap installs them)",
)


def streamable(uniform: bool = True, seed: int = 3):
    """A small classifier over 14 raw byte features, 12 of them used with two thresholds each."""
    graph = random_layered(24, 3, 30, classes=3, pass_through=0.3, seed=seed)
    thresholds = np.tile([63.5, 191.2], 12) if uniform else np.linspace(-3, 300, 24)
    return graph.replace(encoder=Encoder(14, np.repeat(np.arange(1, 13), 2), thresholds))


def raw_samples(n: int = 50) -> np.ndarray:
    raw = np.random.default_rng(2).integers(0, 256, (n, 14)).astype(np.uint8)
    raw[:2] = np.array([0, 255])[:, None]
    return raw


def test_pins_put_the_clock_on_a_global_buffer():
    for name, device in fpga.DEVICES.items():
        pins, clocks = fpga.package_pins(device)
        text = fpga.constraints(device, 4)
        assigned = [line.split()[2] for line in text.splitlines()]
        assert len(set(assigned)) == len(assigned) == 17, name
        assert text.startswith("set_io clk ") and assigned[0] in clocks


def test_the_stream_layout_refuses_uneven_features():
    graph = streamable()
    uneven = graph.replace(encoder=Encoder(14, np.r_[np.repeat(np.arange(1, 12), 2), 12, 12], np.zeros(24)))
    assert fpga.stream_top(uneven, fpga.make_core(uneven, "gates"))  # two bits for every used feature: fine
    uneven = graph.replace(encoder=Encoder(14, np.r_[np.repeat(np.arange(1, 12), 2), 12, 13], np.zeros(24)))
    with pytest.raises(LgnError, match="same number of input bits per used feature"):
        fpga.stream_top(uneven, fpga.make_core(uneven, "gates"))


@pytest.mark.hdl
@have_tools
@pytest.mark.parametrize("core, pipeline, uniform", [("luts", None, True), ("luts", 2, False), ("gates", 3, True)])
def test_streaming_top_equals_the_evaluator(core, pipeline, uniform, tmp_path):
    graph = streamable(uniform)
    result = ice40_sim.simulate_stream(graph, fpga.make_core(graph, core, pipeline), raw_samples(), build_root=tmp_path,
                                  mode="bubbles")  # fmt: skip
    assert result.ok, result.summary()
    assert result.latency == 2 + fpga.make_core(graph, core, pipeline).latency


@pytest.mark.hdl
@have_tools
@pytest.mark.parametrize("core", ["luts", "gates"])
def test_the_synthesized_netlist_equals_the_evaluator(core, tmp_path):
    graph = streamable()
    for stream in (True, False):
        result = ice40_sim.simulate_netlist(
            graph, raw_samples(), sim="icarus", stream=stream, build_root=tmp_path, core=core
        )
        assert result.ok, (stream, result.summary())


@pytest.mark.hdl
@have_tools
def test_synth_pnr_writes_a_bitstream(tmp_path, capsys):
    path = tmp_path / "g.npz"
    formats.save_npz(streamable(), path)
    code = main(["synth", str(path), "--target", "ice40", "--pnr", "--device", "up5k", "--out", str(tmp_path / "pnr")])
    out = capsys.readouterr().out
    assert code == 0, out
    bitstream = (tmp_path / "pnr" / "lgn_net.bin").read_bytes()
    assert len(bitstream) > 1000
    assert "logic cells" in out and "Fmax" in out and "MHz" in out and "latency" in out
    assert (tmp_path / "pnr" / "lgn_top.pcf").read_text().startswith("set_io clk")


@pytest.mark.hdl
@have_tools
def test_a_design_too_large_for_the_device_exits_1_with_the_utilisation(tmp_path, capsys):
    graph = random_layered(64, 2, 1200, classes=4, seed=1)
    graph = graph.replace(encoder=Encoder(64, np.arange(64), np.full(64, 127.5)))
    formats.save_npz(graph, tmp_path / "big.npz")
    code = main(["synth", str(tmp_path / "big.npz"), "--target", "ice40", "--pnr", "--device", "hx1k",
                 "--core", "luts", "--out", str(tmp_path / "pnr")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    line = out.strip().splitlines()[-1]
    assert line.startswith("does not fit: the design does not fit the hx1k") and " of " in line


@pytest.mark.hdl
@have_tools
def test_verify_the_netlist_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "g.npz"
    formats.save_npz(streamable(), path)
    code = main(["verify", str(path), "--backend", "netlist", "--target", "ice40", "--vectors", "40"])
    out = capsys.readouterr().out
    assert code == 0 and out.strip().endswith("40 vectors, 0 mismatches")


ROUTER1_LOG = """Info: Routing..
Info: Routing 11165 arcs.
Info:    IterCnt |  w/ripup   wo/ripup |  w/r  wo/r |      arcs| batch(sec) total(sec)|
Info:       1000 |      900        100 |  900   100 |     10342|       2.00       2.00|
Info:     203000 |   165613      37386 |  831   169 |      8546|       2.77     525.20|
"""


def test_router_progress_reads_both_routers():
    assert hdl_tools.router_progress(ROUTER1_LOG) == "8,546 of 11,165 arcs still unrouted"
    router2 = "Info:     iter=1189 wires=70625 overused=218 overuse=218 archfail=NA\n" * 2
    assert hdl_tools.router_progress(router2) == "218 wires still overused after 1,189 router2 iterations"
    assert hdl_tools.router_progress("Info: Running simulated annealing placer.\n") is None


def test_nextpnr_errors_in_one_line():
    missed = "Info: Max frequency for clock 'clk': 10.47 MHz (FAIL at 12.00 MHz)\n" * 2
    missed += "ERROR: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 10.55 MHz (FAIL at 12.00 MHz)\n"
    assert hdl_tools.nextpnr_error(missed + "Info: Program finished normally.\n") == (
        "timing not met: 10.6 MHz reached, 12.0 MHz asked"
    )
    other = "Info: Placing..\nERROR: Unable to place cell 'x', no BELs remaining\nInfo: Program finished normally.\n"
    assert hdl_tools.nextpnr_error(other) == "Unable to place cell 'x', no BELs remaining"


def test_a_tool_out_of_time_says_where_the_router_was_and_keeps_its_log(tmp_path):
    """nextpnr stopped by the time limit: the message names the unrouted arcs and the log it printed is kept."""
    script = f"cat >&2 <<'END'\n{ROUTER1_LOG}END\nsleep 30"
    with pytest.raises(LgnError, match=r"did not finish within the time limit.*\(its router had 8,546 of 11,165") as e:
        hdl_tools.run_until(["sh", "-c", script], "nextpnr-ice40", tmp_path, time.perf_counter() + 2, "--fewer S")
    assert "\n" not in str(e.value) and "; --fewer S (log: " in str(e.value)
    assert "Routing 11165 arcs" in (tmp_path / "nextpnr-ice40.log").read_text()
