"""From a graph to a Gowin bitstream: the streaming top (as on iCE40, :mod:`.fpga`) around our LUT4 netlist
written as Gowin ``LUT4`` cells, which yosys ``synth_gowin`` keeps (it maps only the top's own logic, with the
fast LUT script of :data:`~.hdl_tools.TARGETS`), a CST of pins we write, ``nextpnr-himbaechel`` (its gowin
micro-architecture) and apycula's ``gowin_pack`` to ``lgn_net.fs``, the utilisation and the maximum clock
frequency from nextpnr's report.

Every tool comes from pip (``pip install 'lgn[fpga]'``: YoWASP's yosys and nextpnr-himbaechel-gowin, apycula)
or from the system (:mod:`.toolchain`). The pins are those of the board that carries the part (the Tang Nano
9K for the GW1NR-9, the 20K for the GW2AR-18): the clock on its 27 MHz oscillator, the class bits on its LEDs,
the rest of the streaming top's signals on the package's other pins in order, at nextpnr's default I/O standard.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from . import toolchain
from .boards import uart_pins
from .ecp5 import check_flow_options, choose_core
from .errors import LgnError
from .fpga import Core, PnrResult, check_streamable, run_nextpnr, stream_files
from .fpga_devices import GOWIN_DEVICES, DoesNotFit, GowinDevice, gowin_constraints
from .hdl_tools import TARGETS, run_until, run_yosys
from .ir import GateGraph

GOWIN_LUTS = ("LUT1", "LUT2", "LUT3", "LUT4")  # synth_gowin narrows a LUT4 whose pins read constants
# yosys before 0.29 maps comparisons ($eq, $ne, $le, $ge) onto Gowin ALU cells wrongly: its $alu map left the
# X output blind to BI (fixed by yosys pull request 3745, May 2023, after 0.28). The netlist check caught it:
# Debian's 0.23 gave a wrong class on 1 of 200 samples of the small test net, on 31 of 200 for its gate core.
ALU_FIXED = (0, 29)


def alu_trusted(version: str) -> bool:
    """Whether yosys ``version`` (``0.23``, ``0.70.0``) maps onto Gowin ALU cells correctly; an unknown version
    is not trusted (``-noalu`` is right on every version, only larger)."""
    found = re.match(r"(\d+)\.(\d+)", version)
    return found is not None and (int(found[1]), int(found[2])) >= ALU_FIXED


def synth_commands(spec: GowinDevice, top: str = "lgn_top", alu: bool | None = None) -> list[str]:
    """The yosys commands after reading the sources: :data:`~.hdl_tools.TARGETS`' gowin script for the
    device's family and ``top``, then the netlist written as ``lgn_top.json`` for nextpnr
    (``compiler.netlist_sim`` simulates what they map). ``alu``: whether synth_gowin may use ALU cells (else
    ``-noalu``); None: as :func:`alu_trusted` says of the toolchain's yosys."""
    if alu is None:
        alu = alu_trusted(toolchain.find("yosys").version)
    flags = (f" -family {spec.synth}" if spec.synth != "gw1n" else "") + ("" if alu else " -noalu")
    commands = [c.format(top=top) for c in TARGETS["gowin"]]
    commands = [c + flags if c.startswith("synth_gowin") else c for c in commands]
    return [*commands, "write_json lgn_top.json"]


def _synth(core: Core, graph: GateGraph, spec: GowinDevice, folder: Path, deadline: float, say,
           uart=None) -> tuple[int, int]:  # fmt: skip
    """yosys ``synth_gowin`` of the streaming top (or the UART top) around ``core`` into ``folder/lgn_top.json``;
    (LUTs, FFs)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = stream_files(graph, core, uart=uart)
    commands = [f"read_verilog {' '.join(sorted(files))}", *synth_commands(spec)]
    trim = "--core luts keeps our LUT4 netlist (yosys maps only the top), --timeout S gives it longer"
    cells = run_yosys(commands, files, f"yosys synth_gowin of the {core.kind} core", deadline, folder, trim, say)
    luts = sum(cells.get(name, 0) for name in GOWIN_LUTS)
    if luts == 0:
        raise LgnError(f"yosys synth_gowin left no LUT cells: {cells}")
    return luts, sum(n for c, n in cells.items() if c.startswith("DFF"))


def place_and_route(
    graph: GateGraph, device: str, out: Path, seed: int = 1, freq: float | None = None, pipeline: int | None = None,
    timeout: float = 1800.0, progress: Callable[[str], None] | None = None, core: str = "luts",
    router: str = "router2", uart=None,
) -> PnrResult:  # fmt: skip
    """Synthesize the streaming top for the Gowin ``device`` (a key of :data:`~.fpga_devices.GOWIN_DEVICES`),
    write its pins to ``out/lgn_top.cst``, place and route it with ``router`` and pack ``out/lgn_net.fs``. Raises
    :class:`DoesNotFit` naming what overflowed (before routing when the LUTs or flip-flops alone overflow);
    refuses a model whose features are not bytes (:func:`~.fpga.check_streamable`). With ``uart`` (a
    :class:`~.uart.Uart`): the UART top and its board's pins, timed at its clock."""
    check_flow_options("Gowin", device, GOWIN_DEVICES, core, router)
    spec = GOWIN_DEVICES[device]
    check_streamable(graph)
    nextpnr, pack = toolchain.find("nextpnr-himbaechel"), toolchain.find("gowin_pack")
    start, say = time.perf_counter(), progress or (lambda line: None)
    yosys = toolchain.find("yosys")
    say(f"tools: {yosys.describe()}; {nextpnr.describe()}; {pack.describe()}")
    if not alu_trusted(yosys.version):
        say(f"yosys {yosys.version} predates the fix of its Gowin ALU map (0.29): comparisons as LUTs (-noalu)")
    deadline = start + timeout
    out.mkdir(parents=True, exist_ok=True)
    synth = lambda candidate, folder: _synth(candidate, graph, spec, folder, deadline, say, uart)  # noqa: E731
    chosen, luts, ffs = choose_core(graph, core, pipeline, out, "gowin", synth, say)
    where = f"the {device} ({spec.part})"
    if luts > spec.luts or ffs > spec.ffs:  # each needs a slot of its own: no placement can help
        need = f"{luts:,} LUT4 of {spec.luts:,}, {ffs:,} flip-flops of {spec.ffs:,}"
        raise DoesNotFit(f"the design does not fit {where}: {need}")
    if uart is not None:
        (out / "lgn_top.cst").write_text(uart_pins("gowin", uart.board, device, uart.clock_hz) or "")
        freq = freq if freq is not None else uart.clock_hz / 1e6  # the board's clock must be met
    else:
        (out / "lgn_top.cst").write_text(gowin_constraints(spec, chosen.class_width))
    report = _route(nextpnr.command, spec, where, out, seed, freq, router, deadline, say)
    used = report.get("utilization", {})
    lut = used.get("LUT4", {"used": luts, "available": spec.luts})
    ram = used.get("BSRAM", {"used": 0, "available": 0})
    fmax = [v.get("achieved") for v in report.get("fmax", {}).values() if v.get("achieved")]
    seconds = time.perf_counter() - start
    say(f"nextpnr-himbaechel ({router}): {lut['used']} of {lut['available']} LUT4 slots ({seconds:.0f} s)")
    proc = run_until([pack.command, "-d", spec.family, "-o", "lgn_net.fs", "lgn_pnr.json"], "gowin_pack", out, deadline)
    if proc.returncode != 0:
        raise LgnError(f"gowin_pack failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    per_sample = graph.encoder.n_features if graph.encoder is not None else 0
    return PnrResult(
        device, spec.part, chosen.kind, luts, ffs, int(lut["used"]), int(lut["available"]), int(ram["used"]),
        int(ram["available"]), min(fmax) if fmax else None, 2 + chosen.latency, per_sample, out / "lgn_net.fs",
        time.perf_counter() - start,
    )  # fmt: skip


def _route(nextpnr: str, spec: GowinDevice, where: str, out: Path, seed: int, freq, router: str, deadline: float,
           say) -> dict:  # fmt: skip
    """nextpnr-himbaechel on ``out/lgn_top.json`` with the pins of ``lgn_top.cst`` into ``lgn_pnr.json``; its
    report. Raises :class:`DoesNotFit`."""
    command = [nextpnr, "--device", spec.part, "--vopt", f"family={spec.family}", "--vopt", "cst=lgn_top.cst",
               "--json", "lgn_top.json", "--write", "lgn_pnr.json", "--report", "report.json",
               "--seed", str(seed), "--router", router]  # fmt: skip
    command += ["--freq", str(freq)] if freq is not None else ["--timing-allow-fail"]
    trim = f"--router {'router1' if router == 'router2' else 'router2'} tries the other router, --seed N another "
    trim += "placement, a smaller net routes sooner, --timeout S gives it longer"
    return run_nextpnr(command, "nextpnr-himbaechel", where, out, deadline, trim, say)
