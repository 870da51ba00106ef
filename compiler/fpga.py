"""From a graph to an iCE40 bitstream: the LUT4 netlist of the whole classifier behind a streaming top, yosys
``synth_ice40``, ``nextpnr-ice40`` and ``icepack`` (Debian packages ``yosys``, ``nextpnr-ice40``,
``fpga-icestorm``), the utilisation and the maximum clock frequency from nextpnr's report.

The streaming top (``templates/verilog/lgn_stream.v.j2``) takes raw features one byte per cycle, thresholds
each as it arrives and shifts the bits into the core's input register, so a board needs a dozen pins, not one
per input bit.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import lut_engine, toolchain
from . import pipeline as passes
from .boards import uart_pins
from .errors import LgnError, ParameterError
from .fpga_devices import DEVICES, DoesNotFit, constraints
from .fpga_devices import Device as Device  # re-exported: the parts, their pins and the I/O check live there
from .fpga_devices import check_io as check_io
from .fpga_devices import package_pins as package_pins
from .hardware import Design, lower
from .hdl_tools import SynthPart, nextpnr_error, run_until, run_yosys
from .ir import GateGraph
from .lowering import VERSION, integer_thresholds, model_hash
from .lut_verilog import emit_design
from .raw_input import RawFormat, byte_misfit, suggested_input
from .templating import environment

_ENV = environment("verilog")


CORES = ("auto", "luts", "gates", "engine")  # engine: compiler.lut_engine, the UP5K only
TOP_FILES = ("lgn_top.v", "lgn_stream.v", "lgn_core.v", "lgn_top.json", "stat.json", "synth.ys", "yosys.log")


@dataclasses.dataclass(frozen=True)
class Core:
    """The classifier behind the streaming top, as module ``lgn_core`` (the network's input bits in, the class
    out): ``luts``, our LUT4 netlist of the lowered design (SB_LUT4 cells); ``gates``, the gate-level Verilog
    that yosys maps (its adder trees use the iCE40 carry chains)."""

    kind: str
    text: str
    class_width: int
    latency: int  # clock cycles; 0 when combinational


def core_design(graph: GateGraph, k: int = 4) -> Design:
    """The classifier's LUT netlist, class port only: the network's input bits in, the class out."""
    design = lower(graph, k, raw_input=False, with_scores=False)
    return dataclasses.replace(design, netlist=passes.simplify(design.netlist, lut=k))


def make_core(graph: GateGraph, kind: str, pipeline: int | None = None, cells: str = "ice40") -> Core:
    """The core of ``kind``; ``cells``: the LUT4 cells of the ``luts`` core, ``ice40`` (SB_LUT4), ``ecp5`` or
    ``gowin`` (their LUT4)."""
    if kind == "luts":
        design = core_design(graph, 4)
        emitted = emit_design(design, "lgn_core", cells, pipeline)
        return Core(kind, emitted["lgn_core.v"], design.class_width, emitted.geometry.latency(pipeline))
    if kind == "gates":
        from .verilog_emit import emit_verilog

        emitted = emit_verilog(graph, "lgn_core", pipeline, raw_input=False)
        return Core(kind, emitted["lgn_core.v"], emitted.geometry.class_width, emitted.geometry.latency(pipeline))
    raise ParameterError(f"core {kind!r} is unknown; choose luts or gates", "core")


def _stream_layout(graph: GateGraph) -> tuple[list[int], int, list[int]]:
    """(the used features in arrival order, input bits per used feature, the register position of each input
    bit). Raises when features carry different numbers of bits (the shift register moves a fixed number)."""
    e = graph.encoder
    if e is None:
        raise LgnError("the streaming top takes raw features: the graph needs encoder thresholds")
    per_feature: dict[int, list[int]] = {}
    for i, f in enumerate(e.feature.tolist()):
        per_feature.setdefault(f, []).append(i)
    counts = {len(bits) for bits in per_feature.values()}
    if len(counts) != 1:
        raise LgnError(f"the streaming top needs the same number of input bits per used feature, got {sorted(counts)}")
    k = counts.pop()
    used = sorted(per_feature)
    position = [0] * graph.n_inputs
    for m, f in enumerate(used):
        for j, i in enumerate(per_feature[f]):
            position[i] = m * k + j
    return used, k, position


def check_streamable(graph: GateGraph) -> None:
    """Refuse, in one line, a model whose raw features are not bytes (a threshold outside 0..255,
    :func:`~.raw_input.byte_misfit`): the streaming top and the LUT engine take one byte per clock, and no byte
    carries such a feature's values. (:func:`stream_top` itself builds for any thresholds, exactly for byte
    inputs: one outside 0..255 is a constant bit.)"""
    why = byte_misfit(graph)
    if why is not None:
        assert graph.encoder is not None
        raise LgnError(
            f"the streaming top takes raw features one byte per clock and cannot represent this model: {why} "
            f"(lgn compile --target verilog without --stream takes {suggested_input(graph.encoder)})"
        )


def stream_top(graph: GateGraph, core: Core, module: str = "lgn_top") -> str:
    """The streaming top's Verilog around module ``lgn_core``."""
    e = graph.encoder
    used, k, position = _stream_layout(graph)
    n = e.n_features if e is not None else 0
    limits = (integer_thresholds(e) + 1).tolist() if e is not None else []  # bit = byte >= limit, 0 .. 256
    by_feature = {f: [limits[i] for i in sorted(np.flatnonzero(e.feature == f).tolist())] for f in used} if e else {}
    rows = list(by_feature.values())
    if all(row == rows[0] for row in rows):  # one set of thresholds for every feature: constants
        level = [f"({{1'b0, in_data}} >= 9'd{u})" for u in rows[0]]
    else:  # a ROM of each feature's limits, 9 bits each
        words = [by_feature.get(f, [256] * k) for f in range(n)]
        rom = "".join(f"{u:09b}" for f_words in reversed(words) for u in reversed(f_words))
        level = [f"({{1'b0, in_data}} >= LIMITS[(feature * {k} + {j}) * 9 +: 9])" for j in range(k)]
        level = [f"    localparam [{9 * k * n - 1}:0] LIMITS = {9 * k * n}'b{rom};"] + level
    rom_lines = [line for line in level if line.startswith("    localparam")]
    compares = [line for line in level if not line.startswith("    localparam")]
    thresholds = rom_lines + [f"    wire [{k - 1}:0] level = {{{', '.join(reversed(compares))}}};"]
    n_bits = len(used) * k
    shift = f"{{level, bits[{n_bits - 1}:{k}]}}" if n_bits > k else "level"
    used_mask = "".join("1" if f in by_feature else "0" for f in reversed(range(n)))
    return _ENV.get_template("lgn_stream.v.j2").render(
        module=module,
        core="lgn_core",
        version=VERSION,
        model_hash=model_hash(graph),
        n_features=n,
        n_used=len(used),
        bits_per_feature=k,
        n_bits=n_bits,
        n_inputs=graph.n_inputs,
        count_width=max(1, (n - 1).bit_length()),
        class_width=core.class_width,
        used_mask=used_mask,
        thresholds="\n".join(thresholds),
        shift=shift,
        wiring="\n".join(f"    assign x[{i}] = bits[{p}];" for i, p in enumerate(position)),
        pipelined=core.latency > 0,
        latency=2 + core.latency,
    )


def stream_files(graph: GateGraph, core: Core, module: str = "lgn_top", uart=None) -> dict[str, str]:
    """The streaming top and its core: ``{module}.v`` and ``lgn_core.v``; with ``uart`` (a :class:`~.uart.Uart`)
    the UART top as ``lgn_top.v`` around them (:func:`~.uart.uart_files`)."""
    if uart is not None:
        from .uart import uart_files

        return uart_files(graph, core, uart)
    return {f"{module}.v": stream_top(graph, core, module), "lgn_core.v": core.text}


# ---- place and route ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PnrResult:
    device: str
    package: str
    core: str  # luts or gates (see Core)
    luts: int  # SB_LUT4 cells after synthesis
    ffs: int  # flip-flops after synthesis
    logic_cells: int  # placed logic cells (a LUT and its flip-flop share one)
    logic_cells_available: int
    ram: int
    ram_available: int
    fmax_mhz: float | None
    latency_cycles: int  # from the edge that takes a sample's last feature to out_valid
    cycles_per_sample: int
    bitstream: Path
    seconds: float
    spram: int = 0
    program: Path | None = None  # the LUT engine's program, to send after reset


def _synth_top(core: Core, graph: GateGraph, folder: Path, deadline: float, say, uart=None) -> tuple[int, int]:
    """yosys ``synth_ice40`` of the streaming top (or the UART top) around ``core`` into ``folder``; (LUT4
    cells, flip-flops)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = stream_files(graph, core, uart=uart)
    for name, text in files.items():
        (folder / name).write_text(text)
    return _synth_ice40(folder, sorted(files), deadline, say)


def _synth_ice40(folder: Path, sources: list[str], deadline: float, progress=None) -> tuple[int, int]:
    """yosys ``synth_ice40`` of top ``lgn_top`` from ``sources`` in ``folder`` into ``lgn_top.json``;
    (LUT4 cells, flip-flops)."""
    commands = [f"read_verilog {' '.join(sources)}", "synth_ice40 -top lgn_top -json lgn_top.json"]
    trim = "--core engine synthesizes a fixed small circuit, --timeout S gives it longer"
    cells = run_yosys(commands, {}, "yosys synth_ice40", deadline, folder, trim, progress)
    luts = cells.get("SB_LUT4", 0)
    if luts == 0:
        raise LgnError(f"yosys synth_ice40 left no SB_LUT4 cells: {cells}")
    return luts, sum(n for c, n in cells.items() if c.startswith("SB_DFF"))


def _synth_engine(graph: GateGraph, out: Path, deadline: float, say):
    """yosys ``synth_ice40`` of the LUT engine for ``graph`` into ``out``, its program written beside it as
    ``lgn_program.bin``; (the engine as a Core, LUT4 cells, flip-flops, the program)."""
    try:
        program = lut_engine.build_program(graph)
    except LgnError as exc:  # too large a program: the same exit as any design that does not fit
        raise DoesNotFit(f"the design does not fit the up5k (sg48): {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    text = lut_engine.engine_verilog(graph, program)
    (out / "lgn_top.v").write_text(text)
    (out / "lgn_program.bin").write_bytes(lut_engine.program_bytes(program))
    luts, ffs = _synth_ice40(out, ["lgn_top.v"], deadline, say)
    say(
        f"synth_ice40, LUT engine: {luts} SB_LUT4, {ffs} flip-flops, {program.block_rams} block RAMs; program "
        f"{len(program.rows):,} rows of the SPRAM's {lut_engine.SPRAM_ROWS:,}"
    )
    return Core("engine", text, program.class_width, program.latency), luts, ffs, program


def _choose_core(graph, core: str, pipeline, out: Path, deadline: float, say, uart=None) -> tuple[Core, int, int]:
    """Synthesize the requested core (``auto``: both, and keep the one with fewer LUTs and flip-flops)."""
    kinds = ("luts", "gates") if core == "auto" else (core,)
    best = None
    for kind in kinds:
        candidate = make_core(graph, kind, pipeline)
        luts, ffs = _synth_top(candidate, graph, out / kind if len(kinds) > 1 else out, deadline, say, uart)
        say(f"synth_ice40, {kind} core: {luts} SB_LUT4, {ffs} flip-flops")
        if best is None or luts + ffs < best[1] + best[2]:
            best = (candidate, luts, ffs)
    assert best is not None
    if len(kinds) > 1:
        for name in TOP_FILES:
            if (out / best[0].kind / name).exists():
                shutil.copy(out / best[0].kind / name, out / name)
    return best


def place_and_route(
    graph: GateGraph,
    device: str,
    out: Path,
    seed: int = 1,
    freq: float | None = None,
    pipeline: int | None = None,
    timeout: float = 1800.0,
    progress: Callable[[str], None] | None = None,
    core: str = "auto",
    uart=None,
) -> PnrResult:
    """Synthesize the streaming top for ``device`` (with ``uart``, a :class:`~.uart.Uart`: the UART top and its
    board's pins, timed at its clock), place and route it and pack the bitstream into ``out/lgn_net.bin`` (with
    the Verilog, the pin constraints and nextpnr's report beside it). Raises :class:`DoesNotFit` naming the
    resource that overflowed, and refuses a model whose features are not bytes (:func:`check_streamable`): the
    top takes one byte per clock."""
    if device not in DEVICES:
        raise ParameterError(f"device {device!r} is unknown; choose {', '.join(DEVICES)}", "device")
    if core not in CORES:
        raise ParameterError(f"core {core!r} is unknown; choose {', '.join(CORES)}", "core")
    spec = DEVICES[device]
    if core == "engine" and device != "up5k":
        why = f"the LUT engine keeps its program in SPRAM, which only the up5k has (not the {device})"
        raise ParameterError(why, "core")
    if core == "engine" and uart is not None:
        raise ParameterError("the LUT engine has no UART top; --core luts, gates or auto", "core")
    check_streamable(graph)
    nextpnr, icepack = toolchain.find("nextpnr-ice40"), toolchain.find("icepack")
    start, say = time.perf_counter(), progress or (lambda line: None)
    say(f"tools: {toolchain.find('yosys').describe()}; {nextpnr.describe()}; {icepack.describe()}")
    deadline = start + timeout
    if core == "engine":
        chosen, luts, ffs, program = _synth_engine(graph, out, deadline, say)
    else:
        chosen, luts, ffs = _choose_core(graph, core, pipeline, out, deadline, say, uart)
        program = None
    if luts > spec.logic_cells:  # every LUT needs a logic cell of its own: no placement can help
        raise DoesNotFit(
            f"the design does not fit the {device} ({spec.package}): {luts} LUT4 (and {ffs} flip-flops) need more "
            f"than the {spec.logic_cells} logic cells it has: {luts} of {spec.logic_cells}"
        )
    if uart is not None:
        (out / "lgn_top.pcf").write_text(uart_pins("ice40", uart.board, device, uart.clock_hz) or "")
        freq = freq if freq is not None else uart.clock_hz / 1e6  # the board's clock must be met
    else:
        (out / "lgn_top.pcf").write_text(constraints(spec, chosen.class_width))
    report = _route(nextpnr.command, device, out, seed, freq, deadline, say)
    used = report.get("utilization", {})
    lc = used.get("ICESTORM_LC", {"used": luts, "available": spec.logic_cells})
    ram = used.get("ICESTORM_RAM", {"used": 0, "available": 0})
    spram = used.get("ICESTORM_SPRAM", {"used": 0})
    fmax = [v.get("achieved") for v in report.get("fmax", {}).values() if v.get("achieved")]
    say(f"nextpnr-ice40: {lc['used']} of {lc['available']} logic cells ({time.perf_counter() - start:.0f} s)")
    proc = run_until([icepack.command, "lgn_top.asc", "lgn_net.bin"], "icepack", out, deadline)
    if proc.returncode != 0:
        raise LgnError(f"icepack failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    if program is not None:
        latency, per_sample = program.latency, program.cycles_per_sample
    else:
        latency, per_sample = 2 + chosen.latency, graph.encoder.n_features if graph.encoder is not None else 0
    return PnrResult(
        device, spec.package, chosen.kind, luts, ffs, int(lc["used"]), int(lc["available"]), int(ram["used"]),
        int(ram["available"]), min(fmax) if fmax else None, latency, per_sample, out / "lgn_net.bin",
        time.perf_counter() - start, int(spram["used"]), out / "lgn_program.bin" if program is not None else None,
    )  # fmt: skip


def _route(nextpnr: str, device: str, out: Path, seed: int, freq: float | None, deadline: float, say) -> dict:
    """nextpnr-ice40 on ``out/lgn_top.json`` with the pins of ``out/lgn_top.pcf`` into ``lgn_top.asc``; its
    report (utilisation, Fmax). Raises :class:`DoesNotFit` naming what overflowed."""
    spec = DEVICES[device]
    command = [nextpnr, spec.flag, "--package", spec.package, "--json", "lgn_top.json", "--pcf", "lgn_top.pcf",
               "--asc", "lgn_top.asc", "--report", "report.json", "--seed", str(seed)]  # fmt: skip
    # no clock asked: report the Fmax reached rather than fail at nextpnr's default target of 12 MHz
    command += ["--freq", str(freq)] if freq is not None else ["--timing-allow-fail"]
    trim = "a smaller net routes sooner, --core engine is a small fixed circuit, --timeout S gives it longer"
    return run_nextpnr(command, "nextpnr-ice40", f"the {device} ({spec.package})", out, deadline, trim, say)


def run_nextpnr(command: list[str], tool: str, part: str, out: Path, deadline: float, trim: str, say) -> dict:
    """Run a nextpnr ``command`` (which writes ``out/report.json``) before ``deadline``; its report
    (utilisation, Fmax). A failed run raises :class:`DoesNotFit` naming the resources that overflowed ``part``,
    or an :class:`LgnError` when only timing was missed."""
    (out / "report.json").unlink(missing_ok=True)
    proc = run_until(command, tool, out, deadline, trim, say)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {}
    if proc.returncode != 0:
        used = report.get("utilization", {})
        overflow = [f"{k} {v['used']} of {v['available']}" for k, v in used.items() if v["used"] > v["available"]]
        why = "; ".join(overflow) or nextpnr_error(proc.stdout + proc.stderr)
        if why.startswith("timing not met"):
            raise LgnError(f"{tool} on {part}: {why} (--freq); no bitstream written")
        raise DoesNotFit(f"the design does not fit {part}: {why}")
    return report


def plain_io_bits(graph: GateGraph, raw_input: bool | RawFormat | None = None, pipeline: int | None = None) -> int:
    """The I/O bits of the plain circuit (:func:`~.hardware.lower`'s design): its inputs, scores and class,
    and clk, rst, in_valid and out_valid when pipelined."""
    design = lower(graph, 6, raw_input)
    return design.netlist.n_inputs + len(design.netlist.outputs) + (4 if pipeline else 0)


# Our LUTs as cells that yosys only reads: the LUT-native netlist is mapped already, so yosys checks it
# (hierarchy, drivers, loops) and counts it, and never re-maps it.
_CELLS = {  # the cell, its output, its inputs, its table parameter
    "ice40": ("SB_LUT4", "O", "I0, I1, I2, I3", "[15:0] LUT_INIT"),
    "xilinx": ("LUT6", "O", "I0, I1, I2, I3, I4, I5", "[63:0] INIT"),
    "ecp5": ("LUT4", "Z", "A, B, C, D", "[15:0] INIT"),
    "gowin": ("LUT4", "F", "I0, I1, I2, I3", "[15:0] INIT"),
}


def _cell_stub(cells: str) -> str:
    name, out, ins, table = _CELLS[cells]
    return f"(* blackbox *) module {name}(output {out}, input {ins});\n  parameter {table} = 0;\nendmodule\n"


CHECK_CELLS = ["hierarchy -check -top lgn_luts", "proc", "flatten", "opt -fast", "simplemap", "opt_clean"]


def synth_lut_native(
    graph: GateGraph, target: str, pipeline: int | None = None, timeout: float = 1800.0,
    raw_input: bool | RawFormat | None = None, progress: Callable[[str], None] | None = None,
):  # fmt: skip
    """yosys on the LUT-native Verilog of the whole design (its input ``raw_input`` as in
    :func:`~.hardware.lower`; by default bytes for an image model), written as LUT cells (``SB_LUT4`` for
    ice40, ``LUT4`` for ecp5 and gowin, ``LUT6`` otherwise) that yosys reads, checks and counts without re-mapping them:
    any logic it finds outside them (an output's inverter) counts as a LUT. Returns the yosys part and our own
    LUT count; a design that reads as 0 LUTs where ours has some is an error."""
    cells_of = target if target in ("ice40", "ecp5", "gowin") else "xilinx"
    k = 4 if cells_of != "xilinx" else 6
    design = lower(graph, k, raw_input)
    design = dataclasses.replace(design, netlist=passes.simplify(design.netlist, lut=k))
    text = emit_design(design, "lgn_luts", cells_of, pipeline)["lgn_luts.v"]
    start = time.perf_counter()
    commands = ["read_verilog lgn_luts.v", "read_verilog -lib lgn_cells.v", *CHECK_CELLS]
    files = {"lgn_luts.v": text, "lgn_cells.v": _cell_stub(cells_of)}
    trim = "--no-gate-level leaves only this step, --timeout S gives it longer"
    cells = run_yosys(commands, files, "yosys reading the LUT-native netlist", start + timeout, None, trim, progress)
    luts = sum(n for c, n in cells.items() if c in ("SB_LUT4", "LUT6", "LUT4") or c.startswith("$_") and "DFF" not in c)
    ffs = sum(n for c, n in cells.items() if "DFF" in c)
    if luts == 0 and design.netlist.n_gates:
        raise LgnError(f"yosys reads the LUT-native netlist of {design.netlist.n_gates} LUTs as 0 LUTs: {cells}")
    script = f"our {_CELLS[cells_of][0]} cells read, checked and counted, not re-mapped"
    part = SynthPart("whole design, LUT-native", luts, ffs, cells, script, time.perf_counter() - start)
    return part, design.netlist.n_gates
