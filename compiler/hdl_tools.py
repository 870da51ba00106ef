"""Checks on emitted Verilog with outside tools: pyverilog (parse and structure), yosys (synthesis
report: LUTs and flip-flops by part, no latches, no combinational loops) and ABC (formal equivalence of
two designs through yosys' BLIF); and running such tools against a deadline (``need_tool``, ``run_until``)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from . import toolchain
from .errors import LgnError, ParameterError, ToolMissingError
from .ir import GateGraph
from .raw_input import RawFormat, encoder_format
from .verilog_emit import emit_verilog, head_only, network_only
from .verilog_encoder import emit_encoder

# ---- pyverilog ------------------------------------------------------------------------------------


def parse_check(text: str, module: str, expected_ports: dict[str, int]) -> None:
    """Parse ``text`` with pyverilog and check its structure: the module, its ports and their widths, and
    one driver per signal (bit). Raises :class:`LgnError` naming what is wrong. Slow on big files (PLY):
    keep it to small and medium designs."""
    try:
        import pyverilog.vparser.ast as vast
        from pyverilog.vparser import parser as vparser
    except ImportError:
        raise ToolMissingError("pyverilog is not installed: `pip install 'lgn[hdl]'`") from None
    with tempfile.TemporaryDirectory(prefix="lgn-pyverilog-") as tmp:
        source = Path(tmp) / f"{module}.v"
        source.write_text(text)
        tables = Path(vparser.__file__).parent  # parser tables cached inside the package: built once
        try:
            codeparser = vparser.VerilogCodeParser(
                [str(source)],
                preprocess_output=str(Path(tmp) / "pre.out"),
                outputdir=str(tables),
                debug=False,
            )
            ast = codeparser.parse()
        except Exception as exc:  # pyverilog raises ParseError and plain exceptions alike
            raise LgnError(f"pyverilog cannot parse the Verilog: {exc}") from None
    modules = [d for d in ast.description.definitions if isinstance(d, vast.ModuleDef)]
    if [m.name for m in modules] != [module]:
        raise LgnError(f"expected one module {module!r}, found {[m.name for m in modules]}")
    ports = {}
    for port in modules[0].portlist.ports:
        first = port.first
        width = 1
        if first.width is not None:
            width = int(first.width.msb.value) - int(first.width.lsb.value) + 1
        ports[first.name] = width
    if ports != expected_ports:
        raise LgnError(f"ports {ports} differ from the documented interface {expected_ports}")
    drivers: Counter = Counter()

    def lvalue_names(node) -> list[str]:
        if isinstance(node, vast.Identifier):
            return [node.name]
        if isinstance(node, vast.Pointer):
            return [f"{node.var.name}[{node.ptr}]"]
        if isinstance(node, vast.Partselect):
            return [f"{node.var.name}[{node.msb}:{node.lsb}]"]
        if isinstance(node, (vast.Lvalue,)):
            return lvalue_names(node.var)
        return [str(node)]

    def assigned_in(node) -> set[str]:
        names = set()
        for child in node.children():
            if isinstance(child, (vast.BlockingSubstitution, vast.NonblockingSubstitution)):
                names.update(lvalue_names(child.left))
            names |= assigned_in(child)
        return names

    # A driver is a continuous assignment, or one always block (however often it assigns a signal).
    for item in modules[0].items:
        if isinstance(item, vast.Assign):
            drivers.update(lvalue_names(item.left))
        elif isinstance(item, vast.Always):
            drivers.update(assigned_in(item))
        elif isinstance(item, vast.Decl):
            for part in item.list:
                if isinstance(part, vast.Assign):
                    drivers.update(lvalue_names(part.left))
    multiple = [name for name, count in drivers.items() if count > 1]
    if multiple:
        raise LgnError(f"signals with more than one driver: {', '.join(sorted(multiple)[:10])}")


# ---- yosys ----------------------------------------------------------------------------------------
# yosys' own mapping of the gate-level Verilog, each part with its target's script. The LUT step is always ABC's
# fast LUT mapping (after dc2, a linear-time AIG rewrite), written out: the default script that `abc -lut` and
# the vendor flows run starts with `&fraig -x`, which ran for 20 minutes on a 2,000-LUT design; yosys 0.70 has no
# `abc -fast`, and its `synth` runs the full script unless told -noabc. The vendor flows run up to their LUT
# step, then this mapping, then the rest of their script (whose own ABC finds nothing left to map). Both yosys
# 0.23 and 0.70 accept these.
FAST_LUTS = '-script "+strash;dc2;dretime;if"'
# Before any of them, each table of a k-input gate (`T[{a, b, c, d}]`, a $shiftx) becomes a multiplexer tree:
# yosys' own map of $shiftx runs `proc` and `clean` on the whole design once per cell (mnist-lut4's 2,643
# four-input gates: 163 s of CPU in yosys 0.23, 43 s with this map, the same 2,547 LUTs).
TABLES = ["hierarchy -top {top}", "proc", "flatten", "techmap -map lgn_tables.v"]
TABLES_MAP = """(* techmap_celltype = "$shiftx" *)
module _lgn_table (A, B, Y);
    parameter A_SIGNED = 0;
    parameter B_SIGNED = 0;
    parameter A_WIDTH = 1;
    parameter B_WIDTH = 1;
    parameter Y_WIDTH = 1;
    input [A_WIDTH-1:0] A;
    input [B_WIDTH-1:0] B;
    output [Y_WIDTH-1:0] Y;
    wire _TECHMAP_FAIL_ = Y_WIDTH != 1 || B_WIDTH > 6 || B_SIGNED;
    localparam N = 1 << B_WIDTH;
    wire [2*N-2:0] t;  // a heap: t[0] the root, choosing on B's top bit; the table's bits the leaves
    genvar i;
    generate
        for (i = 0; i < N; i = i + 1) begin : leaf
            if (i < A_WIDTH) begin : in
                assign t[N-1+i] = A[i];
            end else begin : out
                assign t[N-1+i] = 1'bx;
            end
        end
        for (i = 0; i < N - 1; i = i + 1) begin : node
            assign t[i] = B[B_WIDTH - $clog2(i + 2)] ? t[2*i+2] : t[2*i+1];
        end
    endgenerate
    assign Y = t[0];
endmodule
"""
# The generic target's passes before ABC: `synth -noabc`'s word-level ones that matter here (wreduce and
# alumacc for GroupSum's adders) without its eighteen rounds of opt over every multiplexer of every table,
# which took mnist-tiny's gate network 113 s of CPU; ABC's dc2 then does better than they did (the whole
# design of mnist-tiny: 3,814 LUT6 in 54 s against 3,908 in about 150 s; mnist-fast 13,176 against 13,373).
LEAN = ["opt_expr -mux_undef -mux_bool -fine", "opt_clean", "wreduce", "peepopt", "alumacc", "opt -fast", "techmap",
        "opt -fast"]  # fmt: skip
TARGETS = {
    "generic": [*TABLES, *LEAN, f"abc -lut 6 {FAST_LUTS}", "opt_clean"],
    "ice40": [
        *TABLES,
        "synth_ice40 -top {top} -run :map_luts",
        f"abc -dress -lut 4 {FAST_LUTS}",
        "synth_ice40 -top {top} -run map_luts:",
    ],
    "ecp5": [
        *TABLES,
        "synth_ecp5 -top {top} -run :map_luts",
        f"abc -dress -lut 4 {FAST_LUTS}",
        "synth_ecp5 -top {top} -run map_luts:",
    ],
    "gowin": [  # the family is gw1n unless the Gowin flow (compiler.gowin) adds -family gw2a
        *TABLES,
        "synth_gowin -top {top} -run :map_luts",
        f"abc -dress -lut 4 {FAST_LUTS}",
        "synth_gowin -top {top} -run map_luts:",
    ],
    "xilinx": [
        *TABLES,
        "synth_xilinx -top {top} -flatten -run :map_luts",
        f"abc -luts 2:2,3,6:5,10,20 {FAST_LUTS}",
        "synth_xilinx -top {top} -flatten -run map_luts:",
    ],
}
GATE_LEVEL_TRIM = "--no-gate-level skips yosys' own mapping of the gate-level Verilog, --timeout S gives it longer"


@dataclasses.dataclass(frozen=True)
class SynthPart:
    name: str
    luts: int
    ffs: int
    cells: dict
    script: str = ""  # the yosys commands that produced the counts
    seconds: float = 0.0


def _count(cells: dict) -> tuple[int, int]:
    luts = sum(n for c, n in cells.items() if c == "$lut" or re.fullmatch(r"SB_LUT4|LUT[1-6]", c))
    ffs = sum(n for c, n in cells.items() if re.search(r"DFF|^FD[A-Z]*$|TRELLIS_FF", c, re.IGNORECASE))
    return luts, ffs


class SynthTimeout(toolchain.StepTimeout):
    """yosys did not finish within the time it was given."""


def stat_json_cells(text: str) -> dict[str, int]:
    """Cell type -> count of the whole design, from yosys' ``stat -json`` (``num_cells_by_type``; the same
    on yosys 0.23 and 0.70, where the text report changed its column order)."""
    try:
        report = json.loads(text)
    except ValueError:
        raise LgnError("yosys' stat -json report is not JSON") from None
    if "design" in report:
        return dict(report["design"].get("num_cells_by_type", {}))
    cells: Counter = Counter()
    for module in report.get("modules", {}).values():
        cells.update(module.get("num_cells_by_type", {}))
    return dict(cells)


def run_yosys(
    commands: list[str], files: dict[str, str], what: str, deadline: float, work: Path | None = None,
    trim: str = "--timeout S gives it longer", progress: Callable[[str], None] | None = None,
) -> dict[str, int]:  # fmt: skip
    """yosys on ``files`` (name -> text, written into the work folder ``work``, else a temporary one) with
    ``commands`` (file names relative to that folder), then ``check -assert`` and ``stat -json``: the cells by
    type. Refuses latches; past ``deadline`` a :class:`SynthTimeout` naming ``what`` and ``trim``."""
    yosys = toolchain.find("yosys")
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lgn-yosys-")))
        work.mkdir(parents=True, exist_ok=True)
        for name, text in {**files, "lgn_tables.v": TABLES_MAP}.items():
            (work / name).write_text(text)
        (work / "stat.json").unlink(missing_ok=True)
        script = [*commands, "check -assert", "tee -q -o stat.json stat -json"]
        (work / "synth.ys").write_text("\n".join(script) + "\n")
        try:
            proc = toolchain.run_step([yosys.command, "-q", "-s", "synth.ys"], what, work, deadline, trim, progress,
                                      log="yosys.log")  # fmt: skip
        except toolchain.StepTimeout as exc:
            raise SynthTimeout(str(exc)) from None
        if proc.returncode != 0:
            raise LgnError(f"yosys failed on {what}: {(proc.stderr or proc.stdout).strip()[-600:]}")
        cells = stat_json_cells((work / "stat.json").read_text())
    latches = sum(n for c, n in cells.items() if "LATCH" in c.upper())
    if latches:
        raise LgnError(f"synthesis of {what} left {latches} latches")
    return cells


def synth_text(
    text: str, top: str, target: str = "generic", timeout: float = 3600, script: list[str] | None = None,
    work: Path | None = None, progress: Callable[[str], None] | None = None, what: str | None = None,
) -> SynthPart:  # fmt: skip
    """Synthesize one design with ``script`` (default: the target's); refuse latches and combinational loops,
    and a design whose logic reads as 0 LUTs (cells yosys made that this reading does not know)."""
    if target not in TARGETS:
        raise ParameterError(f"target {target!r} is unknown; choose {', '.join(TARGETS)}", "target")
    commands = [c.format(top=top) for c in (script or TARGETS[target])]
    start = time.perf_counter()
    what = what or top
    cells = run_yosys([f"read_verilog {top}.v", *commands], {f"{top}.v": text}, f"yosys on {what}",
                      start + timeout, work, GATE_LEVEL_TRIM, progress)  # fmt: skip
    luts, ffs = _count(cells)
    unknown = {c: n for c, n in cells.items() if not re.search(r"CARRY|BUF|INV|SRL|MUX|GND|VCC", c)}
    if luts == 0 and sum(unknown.values()) > ffs:
        raise LgnError(f"yosys' cells for {what} read as 0 LUTs: {cells} (lgn does not know these cell types)")
    shown = "; ".join(commands[len(TABLES) - 1 :]).replace(f" -top {top}", "")  # from the tables' map on
    return SynthPart(top, luts, ffs, cells, shown, time.perf_counter() - start)


def synth_report(
    graph: GateGraph,
    target: str = "generic",
    module: str = "lgn_net",
    pipeline: int | None = None,
    timeout: float = 3600.0,
    progress: Callable[[str], None] | None = None,
    raw_input: bool | RawFormat | None = None,
    work: Path | None = None,
) -> list[SynthPart]:
    """LUTs and FFs of the encoder, the gate network, GroupSum and argmax (each synthesized alone) and of the
    whole design synthesized flat (cross-part optimization can make it smaller than the sum). ``raw_input``:
    the whole design's input (as :func:`~.verilog_emit.emit_verilog`); the encoder takes that format, or when
    the design takes the input bits, :func:`~.raw_input.encoder_format`'s.

    All parts together get ``timeout`` seconds: past it a :class:`SynthTimeout` names the part that was still
    running and the flag that skips it. ``progress`` hears one line per part as it finishes (and one every half
    minute while a part runs). ``work``: a folder to keep each part's files in (``work/<part>``: the Verilog,
    yosys' script, log and ``stat.json``); default, temporary folders.
    """
    deadline = time.perf_counter() + timeout

    def run(name: str, text: str, top: str) -> SynthPart:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise SynthTimeout(f"synthesis ran out of its {timeout:g} s before the {name}; {GATE_LEVEL_TRIM}")
        folder = work / re.sub(r"\W+", "-", name).strip("-") if work is not None else None
        part = synth_text(text, top, target, left, work=folder, progress=progress, what=f"the {name}")
        part = dataclasses.replace(part, name=name)
        if progress is not None:
            progress(f"{name}: {part.luts} LUTs, {part.ffs} FFs in {part.seconds:.1f} s (`{part.script}`)")
        return part

    jobs = {"whole design (flat)": (emit_verilog(graph, module, pipeline, raw_input=raw_input)[f"{module}.v"], module)}
    if graph.encoder is not None:
        jobs["encoder"] = (
            emit_encoder(graph, f"{module}_encoder", encoder_format(graph, raw_input)),
            f"{module}_encoder",
        )
    net = emit_verilog(network_only(graph), module=f"{module}_network", raw_input=False, with_argmax=False)
    jobs["gate network"] = (net[f"{module}_network.v"], f"{module}_network")
    head = head_only(graph)
    jobs["GroupSum"] = (emit_verilog(head, module=f"{module}_gs", with_argmax=False)[f"{module}_gs.v"], f"{module}_gs")
    jobs["GroupSum + argmax"] = (emit_verilog(head, module=f"{module}_head")[f"{module}_head.v"], f"{module}_head")
    # One yosys per core, the whole design (the longest) first: on two cores the parts run beside it.
    with concurrent.futures.ThreadPoolExecutor(max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        futures = {name: pool.submit(run, name, text, top) for name, (text, top) in jobs.items()}
        try:
            done = {name: future.result() for name, future in futures.items()}
        except BaseException:  # one part failed, or the wait was interrupted: stop the others now
            for future in futures.values():
                future.cancel()
            toolchain.stop_all()
            raise
    gs, both = done["GroupSum"], done["GroupSum + argmax"]
    argmax_cells = {"GroupSum + argmax": both.luts, "GroupSum alone": gs.luts}
    argmax = SynthPart("argmax", max(0, both.luts - gs.luts), max(0, both.ffs - gs.ffs), argmax_cells, gs.script)
    parts = [done[name] for name in ("encoder", "gate network", "GroupSum") if name in done]
    return [*parts, argmax, done["whole design (flat)"]]


def yosys_blif(verilog: str, top: str, blif: Path, timeout: float = 1800) -> None:
    """Flatten ``verilog`` with yosys into simple gates (no ABC) and write it to ``blif`` (for ABC)."""
    with tempfile.TemporaryDirectory(prefix="lgn-yosys-") as tmp:
        commands = [f"read_verilog {top}.v", f"synth -top {top} -flatten -noabc", "write_blif -gates design.blif"]
        run_yosys(commands, {f"{top}.v": verilog}, f"yosys on {top}", time.perf_counter() + timeout, Path(tmp))
        shutil.copyfile(Path(tmp) / "design.blif", blif)


def nextpnr_error(log: str) -> str:
    """Why nextpnr failed, in one line, from its log: a missed clock target, else its last ERROR line."""
    missed = re.findall(r"Max frequency for clock '[^']*': ([\d.]+) MHz \(FAIL at ([\d.]+) MHz\)", log)
    if missed:
        return f"timing not met: {float(missed[-1][0]):.1f} MHz reached, {float(missed[-1][1]):.1f} MHz asked"
    errors = [line.removeprefix("ERROR:").strip() for line in log.splitlines() if line.startswith("ERROR:")]
    return errors[-1] if errors else (log.strip().splitlines() or ["nextpnr failed"])[-1]


def partial_output(stopped: subprocess.TimeoutExpired) -> str:
    """What a command that ran out of time had printed (stdout, then stderr; bytes or text, as Python gives)."""
    parts = (stopped.stdout, stopped.stderr)
    return "".join(p.decode(errors="replace") if isinstance(p, bytes) else p or "" for p in parts)


def router_progress(log: str) -> str | None:
    """Where nextpnr's router stood at the end of ``log`` (its stderr), as a phrase, or None before routing:
    router1's unrouted arcs (``Routing N arcs`` and the last progress row) or router2's overused wires."""
    rows = re.findall(r"^Info:\s+\d+ \|\s+\d+\s+\d+ \|\s+\d+\s+\d+ \|\s+(\d+)\|", log, re.MULTILINE)
    total = re.findall(r"Routing (\d+) arcs", log)
    if rows and total:
        return f"{int(rows[-1]):,} of {int(total[-1]):,} arcs still unrouted"
    overused = re.findall(r"iter=(\d+) wires=\d+ overused=(\d+)", log)
    if overused:
        return f"{int(overused[-1][1]):,} wires still overused after {int(overused[-1][0]):,} router2 iterations"
    return None


# ---- running the tools ----------------------------------------------------------------------------


def need_tool(name: str, package: str = "") -> str:
    """The command of tool ``name`` from the toolchain in use (:func:`~.toolchain.find`), or
    :class:`ToolMissingError` saying how to install it (``package``: the Debian package, for a tool that
    :mod:`~.toolchain` does not know)."""
    if name in toolchain.SPECS:
        return toolchain.find(name).command
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(f"{name} is not installed: `apt-get install {package}` (bash .ci/bootstrap does this)")
    return path


def run_until(
    command: list[str], what: str, cwd: Path, deadline: float, trim: str = "--timeout S gives it longer",
    progress: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess:  # fmt: skip
    """``command`` run in ``cwd`` until ``deadline`` (a perf_counter time), its output kept as
    ``cwd/<tool>.log``; out of time, a :class:`~.toolchain.StepTimeout` that says where a router stood and
    ``trim``, the flag that shortens the step."""
    kept = f"{what.split()[0]}.log"  # the name the finished tool's log gets

    def where(log: str) -> str | None:
        stood = router_progress(log)
        if stood:
            return f"its router had {stood}"
        stages = {"placing": ("placer", "Placing"), "routing": ("Routing", "router")}
        last = {name: max(log.rfind(m) for m in marks) for name, marks in stages.items()}
        stage = max(last, key=lambda name: last[name])
        return stage if last[stage] >= 0 else None

    return toolchain.run_step(command, what, cwd, deadline, trim, progress, log=kept, where=where)
