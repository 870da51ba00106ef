"""From a graph to an ECP5 bitstream: the streaming top (as on iCE40, :mod:`.fpga`) around our LUT4 netlist
written as Lattice ``LUT4`` cells, which yosys ``synth_ecp5`` keeps (it maps only the top's own logic, with the
fast LUT script of :data:`~.hdl_tools.TARGETS`), ``nextpnr-ecp5`` and ``ecppack`` to ``lgn_net.bit`` (and an
``.svf`` for JTAG), the utilisation and the maximum clock frequency from nextpnr's report.

The tools come from the system or from ``pip install 'lgn[fpga]'`` (:mod:`.toolchain`). With no board named the
I/O but the clock (on G2, a primary clock pin of the CABGA381) are left to nextpnr
(``--lpf-allow-unconstrained``): the bitstream is for measuring, not for a board.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from pathlib import Path

from . import toolchain
from .boards import uart_pins
from .errors import LgnError, ParameterError
from .fpga import CORES, TOP_FILES, Core, PnrResult, check_streamable, make_core, run_nextpnr, stream_files
from .fpga_devices import ECP5_DEVICES, DoesNotFit
from .hdl_tools import TARGETS, run_until, run_yosys
from .ir import GateGraph

ROUTERS = ("router1", "router2")
# CABGA381 (every ECP5 part here): G2 is a primary clock input, the ULX3S's 25 MHz oscillator.
CLOCK_ONLY_LPF = 'LOCATE COMP "clk" SITE "G2";\nIOBUF PORT "clk" IO_TYPE=LVCMOS33;\n'


def check_flow_options(family: str, device: str, devices: Collection[str], core: str, router: str) -> None:
    """Raise :class:`ParameterError` unless ``device`` is one of the ``family``'s ``devices``, ``core`` one it
    takes (a circuit core; on ECP5 the LUT engine too, :mod:`.ecp5_engine`) and ``router`` one of
    :data:`ROUTERS`."""
    if device not in devices:
        raise ParameterError(f"device {device!r} is not {_a(family)} part; choose {', '.join(devices)}", "device")
    if core not in CORES or (core == "engine" and family != "ECP5"):
        takes = "luts, gates, auto or engine" if family == "ECP5" else "luts, gates or auto"
        raise ParameterError(f"core {core!r}: the {family} flow takes {takes}", "core")
    if router not in ROUTERS:
        raise ParameterError(f"router {router!r} is unknown; choose {', '.join(ROUTERS)}", "router")


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "AEIOU" else f"a {word}"


def synth_commands(top: str = "lgn_top") -> list[str]:
    """The yosys commands after reading the sources: :data:`~.hdl_tools.TARGETS`' ecp5 script for ``top``, then
    the netlist written as ``lgn_top.json`` for nextpnr (``compiler.netlist_sim`` simulates what they map)."""
    return [*[c.format(top=top) for c in TARGETS["ecp5"]], "write_json lgn_top.json"]


def _synth(core: Core, graph: GateGraph, folder: Path, deadline: float, say, uart=None) -> tuple[int, int]:
    """yosys ``synth_ecp5`` of the streaming top (or the UART top) around ``core`` into ``folder/lgn_top.json``;
    (LUT4, FFs)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = stream_files(graph, core, uart=uart)
    commands = [f"read_verilog {' '.join(sorted(files))}", *synth_commands()]
    trim = "--core luts keeps our LUT4 netlist (yosys maps only the top), --timeout S gives it longer"
    cells = run_yosys(commands, files, f"yosys synth_ecp5 of the {core.kind} core", deadline, folder, trim, say)
    luts = cells.get("LUT4", 0)
    if luts == 0:
        raise LgnError(f"yosys synth_ecp5 left no LUT4 cells: {cells}")
    return luts, cells.get("TRELLIS_FF", 0)


def choose_core(graph: GateGraph, core: str, pipeline, out: Path, cells: str, synth, say):
    """Synthesize the requested core (``auto``: both, keeping the one with fewer LUTs and flip-flops), its luts
    core written as ``cells`` (ecp5 or gowin) and synthesized by ``synth(core, folder)`` -> (LUT4, flip-flops)
    into ``out``; (the core, LUT4, flip-flops). Shared by the ECP5 and the Gowin flow."""
    kinds = ("luts", "gates") if core == "auto" else (core,)
    best = None
    for kind in kinds:
        candidate = make_core(graph, kind, pipeline, cells=cells)
        folder = out / kind if len(kinds) > 1 else out
        luts, ffs = synth(candidate, folder)
        say(f"synth_{cells}, {kind} core: {luts} LUT4, {ffs} flip-flops")
        if best is None or luts + ffs < best[1] + best[2]:
            best = (candidate, luts, ffs, folder)
    assert best is not None
    if best[3] != out:
        for name in TOP_FILES:
            if (best[3] / name).exists():
                (out / name).write_bytes((best[3] / name).read_bytes())
    return best[:3]


def place_and_route(
    graph: GateGraph, device: str, out: Path, seed: int = 1, freq: float | None = None, pipeline: int | None = None,
    timeout: float = 1800.0, progress: Callable[[str], None] | None = None, core: str = "luts",
    router: str = "router2", svf: bool = True, uart=None,
) -> PnrResult:  # fmt: skip
    """Synthesize the streaming top for the ECP5 ``device`` (25k, 45k, 85k), place and route it with
    ``router`` and pack ``out/lgn_net.bit`` (and ``lgn_net.svf``); with ``uart`` (a :class:`~.uart.Uart`) the
    UART top, its board's LPF and package, timed at its clock. Raises :class:`DoesNotFit` naming what
    overflowed; refuses a model whose features are not bytes (:func:`~.fpga.check_streamable`)."""
    check_flow_options("ECP5", device, ECP5_DEVICES, core, router)
    if core == "engine":
        if uart is not None:
            raise ParameterError("the LUT engine has no UART top; --core luts, gates or auto", "core")
        from . import ecp5_engine

        return ecp5_engine.place_and_route(graph, device, out, seed, freq, timeout, progress, router, svf)
    spec = ECP5_DEVICES[device]
    check_streamable(graph)
    nextpnr, ecppack = toolchain.find("nextpnr-ecp5"), toolchain.find("ecppack")
    start, say = time.perf_counter(), progress or (lambda line: None)
    say(f"tools: {toolchain.find('yosys').describe()}; {nextpnr.describe()}; {ecppack.describe()}")
    deadline = start + timeout
    out.mkdir(parents=True, exist_ok=True)
    synth = lambda candidate, folder: _synth(candidate, graph, folder, deadline, say, uart)  # noqa: E731
    chosen, luts, ffs = choose_core(graph, core, pipeline, out, "ecp5", synth, say)
    if luts > spec.luts:  # every LUT4 needs a slot of its own: no placement can help
        raise DoesNotFit(f"the design does not fit the {device} ({spec.package}): {luts} LUT4 of {spec.luts}")
    board = uart.board if uart is not None else None
    pins = uart_pins("ecp5", board, device, uart.clock_hz) if uart is not None else None
    # Without a board only the clock is placed: left to nextpnr it can land on a pad with no path to the
    # clock tree (mnist-tiny on the 25F: "Failed to route arc 0.0 of net 'clk$TRELLIS_IO_IN'").
    (out / "lgn_top.lpf").write_text(pins if pins is not None else CLOCK_ONLY_LPF)
    if uart is not None and freq is None:
        freq = uart.clock_hz / 1e6  # the board's clock must be met
    package = (board.package if board is not None else None) or spec.package
    speed = (board.speed if board is not None else None) or "6"
    report = route(nextpnr.command, device, out, seed, freq, router, deadline, say, (package, speed, pins))
    used = report.get("utilization", {})
    comb = used.get("TRELLIS_COMB", {"used": luts, "available": spec.luts})
    ram = used.get("DP16KD", {"used": 0, "available": 0})
    fmax = [v.get("achieved") for v in report.get("fmax", {}).values() if v.get("achieved")]
    slots = f"{comb['used']} of {comb['available']} LUT4 slots"
    say(f"nextpnr-ecp5 ({router}): {slots} ({time.perf_counter() - start:.0f} s)")
    pack(ecppack.command, out, deadline, svf)
    per_sample = graph.encoder.n_features if graph.encoder is not None else 0
    return PnrResult(
        device, package, chosen.kind, luts, ffs, int(comb["used"]), int(comb["available"]), int(ram["used"]),
        int(ram["available"]), min(fmax) if fmax else None, 2 + chosen.latency, per_sample, out / "lgn_net.bit",
        time.perf_counter() - start,
    )  # fmt: skip


def pack(ecppack: str, out: Path, deadline: float, svf: bool = True) -> None:
    """ecppack of ``out/lgn_top.config`` into ``lgn_net.bit`` (and ``lgn_net.svf`` for JTAG)."""
    command = [ecppack, "--input", "lgn_top.config", "--bit", "lgn_net.bit"] + (["--svf", "lgn_net.svf"] if svf else [])
    proc = run_until(command, "ecppack", out, deadline)
    if proc.returncode != 0:
        raise LgnError(f"ecppack failed: {(proc.stderr or proc.stdout).strip()[-300:]}")


def route(nextpnr, device, out: Path, seed, freq, router, deadline, say, place=None) -> dict:
    """nextpnr-ecp5 on ``out/lgn_top.json`` into ``lgn_top.config``; ``place``: (package, speed grade, the
    LPF's text or None: I/O left to nextpnr). Its report. Raises :class:`DoesNotFit`."""
    spec = ECP5_DEVICES[device]
    package, speed, lpf = place or (spec.package, "6", None)
    command = [
        nextpnr,
        spec.flag,
        "--package",
        package,
        "--speed",
        speed,
        "--json",
        "lgn_top.json",
        "--textcfg",
        "lgn_top.config",
        "--report",
        "report.json",
        "--seed",
        str(seed),
        "--router",
        router,
    ]
    command += ["--lpf", "lgn_top.lpf"] + (["--lpf-allow-unconstrained"] if lpf is None else [])
    command += ["--freq", str(freq)] if freq is not None else ["--timing-allow-fail"]
    trim = f"--router {'router1' if router == 'router2' else 'router2'} tries the other router, a smaller net routes "
    trim += "sooner, --timeout S gives it longer"
    return run_nextpnr(command, "nextpnr-ecp5", f"the {device} ({package})", out, deadline, trim, say)
