"""Checks on emitted Verilog with outside tools: pyverilog (parse and structure), yosys (synthesis
report: LUTs and flip-flops by part, no latches, no combinational loops) and ABC (formal equivalence of
two designs through yosys' BLIF); and running such tools against a deadline (``need_tool``, ``run_until``)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

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
# Each part is mapped with the target's full script. The whole design flat with the same script can take
# ABC tens of minutes where the parts take seconds (the GroupSum adder trees reconverge with the gates),
# so the flat whole design of the generic target uses ABC's fast mapping, whose cost stays near linear.
TARGETS = {
    "generic": "synth -top {top} -flatten; abc -lut 6; opt_clean",
    "ice40": "synth_ice40 -top {top}",
    "xilinx": "synth_xilinx -top {top} -flatten",
}
WHOLE_DESIGN = {**TARGETS, "generic": "synth -top {top} -flatten; abc -fast -lut 6; opt_clean"}


@dataclasses.dataclass(frozen=True)
class SynthPart:
    name: str
    luts: int
    ffs: int
    cells: dict
    script: str = ""  # the yosys commands that produced the counts
    seconds: float = 0.0


def _yosys() -> str:
    path = shutil.which("yosys")
    if path is None:
        raise ToolMissingError("yosys is not installed: `apt-get install yosys` (bash .ci/bootstrap does this)")
    return path


def _count(cells: dict) -> tuple[int, int]:
    luts = sum(n for c, n in cells.items() if c == "$lut" or re.fullmatch(r"SB_LUT4|LUT[1-6]", c))
    ffs = sum(n for c, n in cells.items() if re.search(r"DFF|FD[A-Z]*$|SB_DFF", c, re.IGNORECASE))
    return luts, ffs


class SynthTimeout(LgnError):
    """yosys did not finish within the time it was given."""


def synth_text(
    text: str, top: str, target: str = "generic", timeout: float = 3600, script: str | None = None
) -> SynthPart:
    """Synthesize one design with ``script`` (default: the target's); refuse latches and combinational loops."""
    if target not in TARGETS:
        raise ParameterError(f"target {target!r} is unknown; choose {', '.join(TARGETS)}", "target")
    commands = (script or TARGETS[target]).format(top=top)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lgn-yosys-") as tmp:
        source = Path(tmp) / f"{top}.v"
        source.write_text(text)
        full = f"read_verilog {source}; {commands}; check -assert; tee -o {tmp}/stat.txt stat"
        try:
            proc = subprocess.run([_yosys(), "-q", "-p", full], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SynthTimeout(f"yosys did not finish {top} within {timeout:.0f} s (`{commands}`)") from None
        if proc.returncode != 0:
            raise LgnError(f"yosys failed on {top}: {(proc.stderr or proc.stdout).strip()[-600:]}")
        stat = (Path(tmp) / "stat.txt").read_text()
    cells = stat_cells(stat)
    latches = sum(n for c, n in cells.items() if "LATCH" in c.upper())
    if latches:
        raise LgnError(f"synthesis of {top} left {latches} latches")
    luts, ffs = _count(cells)
    return SynthPart(top, luts, ffs, cells, commands.replace(f" -top {top}", ""), time.perf_counter() - start)


def synth_report(
    graph: GateGraph,
    target: str = "generic",
    module: str = "lgn_net",
    pipeline: int | None = None,
    timeout: float = 3600.0,
    progress: Callable[[str], None] | None = None,
    raw_input: bool | RawFormat | None = None,
) -> list[SynthPart]:
    """LUTs and FFs of the encoder, the gate network, GroupSum and argmax (each synthesized alone) and of the
    whole design synthesized flat (cross-part optimization can make it smaller than the sum). ``raw_input``:
    the whole design's input (as :func:`~.verilog_emit.emit_verilog`); the encoder takes that format, or when
    the design takes the input bits, :func:`~.raw_input.encoder_format`'s.

    All parts together get ``timeout`` seconds: past it a :class:`SynthTimeout` names the part that was still
    running. ``progress`` hears one line per part as it finishes.
    """
    deadline = time.perf_counter() + timeout
    parts: list[SynthPart] = []

    def run(name: str, text: str, top: str, script: str | None = None) -> SynthPart:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise SynthTimeout(f"synthesis ran out of its {timeout:.0f} s before the {name}")
        part = dataclasses.replace(synth_text(text, top, target, left, script), name=name)
        if progress is not None:
            progress(f"{name}: {part.luts} LUTs, {part.ffs} FFs in {part.seconds:.1f} s (`{part.script}`)")
        return part

    if graph.encoder is not None:
        fmt = encoder_format(graph, raw_input)
        encoder = emit_encoder(graph, f"{module}_encoder", fmt)
        parts.append(run("encoder", encoder, f"{module}_encoder"))
    net = emit_verilog(network_only(graph), module=f"{module}_network", raw_input=False, with_argmax=False)
    parts.append(run("gate network", net[f"{module}_network.v"], f"{module}_network"))
    head = head_only(graph)
    gs = run("GroupSum", emit_verilog(head, module=f"{module}_gs", with_argmax=False)[f"{module}_gs.v"], f"{module}_gs")
    both = run("GroupSum + argmax", emit_verilog(head, module=f"{module}_head")[f"{module}_head.v"], f"{module}_head")
    parts.append(gs)
    argmax_cells = {"GroupSum + argmax": both.luts, "GroupSum alone": gs.luts}
    parts.append(SynthPart("argmax", max(0, both.luts - gs.luts), max(0, both.ffs - gs.ffs), argmax_cells, gs.script))
    whole = emit_verilog(graph, module=module, pipeline=pipeline, raw_input=raw_input)[f"{module}.v"]
    parts.append(run("whole design (flat)", whole, module, WHOLE_DESIGN[target]))
    return parts


def yosys_blif(verilog: str, top: str, blif: Path, timeout: float = 1800) -> None:
    """Flatten ``verilog`` with yosys and write it to ``blif`` as a gate-level network (for ABC)."""
    with tempfile.TemporaryDirectory(prefix="lgn-yosys-") as tmp:
        source = Path(tmp) / f"{top}.v"
        source.write_text(verilog)
        script = f"read_verilog {source}; synth -top {top} -flatten; write_blif -gates {blif}"
        try:
            proc = subprocess.run([_yosys(), "-q", "-p", script], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LgnError(f"yosys did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise LgnError(f"yosys failed: {(proc.stderr or proc.stdout).strip()[-600:]}")


def stat_cells(stat: str) -> dict[str, int]:
    """Cell type -> count, from yosys' ``stat`` report."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\S+)\s+(\d+)\s*$", stat, re.MULTILINE)}


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


def need_tool(name: str, package: str) -> str:
    """The path of tool ``name``, or :class:`ToolMissingError` naming the Debian package that has it."""
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(f"{name} is not installed: `apt-get install {package}` (bash .ci/bootstrap does this)")
    return path


def run_until(command: list[str], what: str, cwd: Path, deadline: float) -> subprocess.CompletedProcess:
    """``command`` run in ``cwd`` until ``deadline`` (a perf_counter time); out of time, an :class:`LgnError`
    that says where a router stood, its output kept as ``cwd/<tool>.log``."""
    left = deadline - time.perf_counter()
    if left <= 0:
        raise LgnError(f"the time limit ran out before {what}")
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=left)
    except subprocess.TimeoutExpired as stopped:  # keep what it printed: the log says where it was stuck
        log = partial_output(stopped)
        kept = cwd / f"{what.split()[0]}.log"  # the name the finished tool's log gets
        kept.write_text(log)
        where = router_progress(log)
        where = f": its router had {where} (congested)" if where else ""
        raise LgnError(f"{what} did not finish within the time limit{where}; log: {kept}") from None
