"""Checks on emitted Verilog with outside tools: pyverilog (parse and structure), yosys (synthesis
report: LUTs and flip-flops by part, no latches, no combinational loops) and ABC (formal equivalence of
two designs through yosys' BLIF)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from .errors import LgnError
from .ir import GateGraph
from .verilog_emit import emit_encoder, emit_verilog, head_only, network_only

# ---- pyverilog ------------------------------------------------------------------------------------


def parse_check(text: str, module: str, expected_ports: dict[str, int]) -> None:
    """Parse ``text`` with pyverilog and check its structure: the module, its ports and their widths, and
    one driver per signal (bit). Raises :class:`LgnError` naming what is wrong. Slow on big files (PLY):
    keep it to small and medium designs."""
    try:
        import pyverilog.vparser.ast as vast
        from pyverilog.vparser import parser as vparser
    except ImportError:
        raise LgnError("pyverilog is not installed: `pip install pyverilog`") from None
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
TARGETS = {
    "generic": "synth -top {top} -flatten; abc -lut 6; opt_clean",
    "ice40": "synth_ice40 -top {top}",
    "xilinx": "synth_xilinx -top {top} -flatten",
}


@dataclasses.dataclass(frozen=True)
class SynthPart:
    name: str
    luts: int
    ffs: int
    cells: dict


def _yosys() -> str:
    path = shutil.which("yosys")
    if path is None:
        raise LgnError("yosys is not installed: `apt-get install yosys` (bash .ci/bootstrap does this)")
    return path


def _count(cells: dict) -> tuple[int, int]:
    luts = sum(n for c, n in cells.items() if c == "$lut" or re.fullmatch(r"SB_LUT4|LUT[1-6]", c))
    ffs = sum(n for c, n in cells.items() if re.search(r"DFF|FD[A-Z]*$|SB_DFF", c, re.IGNORECASE))
    return luts, ffs


def synth_text(text: str, top: str, target: str = "generic", timeout: float = 3600) -> SynthPart:
    """Synthesize one design; refuse latches and combinational loops."""
    if target not in TARGETS:
        raise LgnError(f"unknown synthesis target {target!r}; choose {', '.join(TARGETS)}")
    with tempfile.TemporaryDirectory(prefix="lgn-yosys-") as tmp:
        source = Path(tmp) / f"{top}.v"
        source.write_text(text)
        script = f"read_verilog {source}; {TARGETS[target].format(top=top)}; check -assert; stat"
        try:
            proc = subprocess.run(
                [_yosys(), "-q", "-p", script.replace("stat", f"tee -o {tmp}/stat.txt stat")],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise LgnError(f"yosys did not finish within {timeout:.0f} s") from None
        if proc.returncode != 0:
            raise LgnError(f"yosys failed on {top}: {(proc.stderr or proc.stdout).strip()[-600:]}")
        stat = (Path(tmp) / "stat.txt").read_text()
    cells = {m[1]: int(m[2]) for m in re.finditer(r"^\s+(\S+)\s+(\d+)\s*$", stat, re.MULTILINE)}
    latches = sum(n for c, n in cells.items() if "LATCH" in c.upper())
    if latches:
        raise LgnError(f"synthesis of {top} left {latches} latches")
    luts, ffs = _count(cells)
    return SynthPart(top, luts, ffs, cells)


def synth_report(
    graph: GateGraph, target: str = "generic", module: str = "lgn_net", pipeline: int | None = None
) -> list[SynthPart]:
    """LUTs and FFs of the encoder, the gate network, GroupSum and argmax (each synthesized alone) and
    of the whole design synthesized flat (cross-part optimization makes it smaller than the sum)."""
    parts = []
    if graph.encoder is not None:
        parts.append(
            dataclasses.replace(
                synth_text(emit_encoder(graph, f"{module}_encoder"), f"{module}_encoder", target),
                name="encoder",
            )
        )
    net = network_only(graph)
    text = emit_verilog(net, module=f"{module}_network", raw_input=False, with_argmax=False)
    parts.append(
        dataclasses.replace(synth_text(text[f"{module}_network.v"], f"{module}_network", target), name="gate network")
    )
    head = head_only(graph)
    gs = synth_text(
        emit_verilog(head, module=f"{module}_gs", with_argmax=False)[f"{module}_gs.v"], f"{module}_gs", target
    )
    both = synth_text(emit_verilog(head, module=f"{module}_head")[f"{module}_head.v"], f"{module}_head", target)
    parts.append(dataclasses.replace(gs, name="GroupSum"))
    parts.append(SynthPart("argmax", max(0, both.luts - gs.luts), max(0, both.ffs - gs.ffs), {}))
    whole = emit_verilog(graph, module=module, pipeline=pipeline)[f"{module}.v"]
    parts.append(dataclasses.replace(synth_text(whole, module, target), name="whole design (flat)"))
    return parts


# ---- formal equivalence of two designs --------------------------------------------------------------
def formal_verilog(a: GateGraph, b: GateGraph, timeout: float = 1800) -> bool:
    """Prove with ABC ``cec`` that the Verilog gate networks of ``a`` and ``b`` compute the same output bits
    (negation flags applied); yosys turns each into a gate-level BLIF first.

    The GroupSum adder trees and the argmax are left out of the miter: both designs get them from the
    same emitter over the same class groups, and SAT on two differently optimized adder trees takes
    minutes where the networks take seconds. Simulation covers them.
    """
    from .formal import find_abc

    abc = find_abc()
    if abc is None:
        raise LgnError("ABC is not installed: `apt-get install berkeley-abc` (bash .ci/bootstrap does this)")
    with tempfile.TemporaryDirectory(prefix="lgn-cec-") as tmp:
        blifs = []
        for tag, graph in (("a", a), ("b", b)):
            text = emit_verilog(network_only(graph), module="lgn_formal", raw_input=False, with_argmax=False)[
                "lgn_formal.v"
            ]
            source, blif = Path(tmp) / f"{tag}.v", Path(tmp) / f"{tag}.blif"
            source.write_text(text)
            script = f"read_verilog {source}; synth -top lgn_formal -flatten; write_blif -gates {blif}"
            proc = subprocess.run([_yosys(), "-q", "-p", script], capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0:
                raise LgnError(f"yosys failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
            blifs.append(blif)
        proc = subprocess.run(
            [abc, "-q", f"cec {blifs[0]} {blifs[1]}"], capture_output=True, text=True, timeout=timeout
        )
    out = proc.stdout + proc.stderr
    if "Networks are equivalent" in out:
        return True
    if "NOT EQUIVALENT" in out:
        return False
    raise LgnError(f"ABC cec gave no verdict: {out.strip()[-300:]}")
