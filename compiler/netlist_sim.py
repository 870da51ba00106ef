"""What a bitstream holds, in simulation, for every FPGA family: the streaming top synthesized by yosys with
the very commands of the family's flow (``lgn synth --target ice40|ecp5|gowin --pnr``, so what is simulated is
what nextpnr places), written back as Verilog (``write_verilog -noattr``) and fed raw features byte by byte on
yosys' own models of the family's cells (:mod:`.cell_models`), against the evaluator.

Shared by the iCE40 checks (:mod:`.ice40_sim`, which adds the LUT engine) and ``lgn verify --backend netlist``.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np

from . import cell_models
from .errors import ParameterError
from .fpga import check_streamable, make_core, stream_files
from .fpga_devices import DEVICES, ECP5_DEVICES, GOWIN_DEVICES
from .hdl_sim import Bench, SimResult, input_rows, run_testbench
from .hdl_tools import run_yosys
from .ir import GateGraph
from .raw_input import U8  # raw features stream as bytes: a value outside 0..255 is refused, never wrapped

FAMILY_DEVICES: dict[str, Collection[str]] = {"ice40": DEVICES, "ecp5": ECP5_DEVICES, "gowin": GOWIN_DEVICES}
DEFAULT_DEVICE = {"ice40": "up5k", "ecp5": "25k", "gowin": "GW1NR-9"}  # lgn synth --pnr's
SYNTH_TIMEOUT = 1800.0  # seconds for yosys, as lgn synth's default --timeout


@dataclasses.dataclass(frozen=True)
class NetlistRun:
    """A synthesized netlist simulated against the evaluator: the simulation's result, yosys' seconds and the
    cells it mapped (type -> count, from ``stat -json``)."""

    result: SimResult
    synth_seconds: float
    cells: dict[str, int]


def synth_commands(family: str, top: str, device: str | None = None) -> list[str]:
    """The yosys commands (after ``read_verilog``) of the ``family``'s flow for ``top`` on ``device`` (default:
    :data:`DEFAULT_DEVICE`'s), with the netlist written as ``netlist.v`` where the flow writes its JSON."""
    from . import ecp5, gowin

    device = device or DEFAULT_DEVICE.get(family, "")
    if family not in FAMILY_DEVICES:
        raise ParameterError(f"target {family!r} has no netlist check; choose {', '.join(FAMILY_DEVICES)}", "target")
    if device not in FAMILY_DEVICES[family]:
        known = ", ".join(FAMILY_DEVICES[family])
        article = "an" if family[0] in "aeiou" else "a"
        raise ParameterError(f"device {device!r} is not {article} {family} part; choose {known}", "device")
    if family == "ice40":
        flow = [f"synth_ice40 -top {top}"]  # fpga._synth_ice40's, for every part (the part is nextpnr's)
    elif family == "ecp5":
        flow = ecp5.synth_commands(top)  # the same for every part: synth_ecp5 takes none
    else:
        flow = gowin.synth_commands(GOWIN_DEVICES[device], top)  # -family follows the part
    return [c for c in flow if not c.startswith("write_json")] + ["write_verilog -noattr netlist.v"]


def synthesize(
    files: dict[str, str], top: str, family: str, device: str | None = None, timeout: float = SYNTH_TIMEOUT,
    progress: Callable[[str], None] | None = None, work: Path | None = None,
) -> tuple[str, dict[str, int]]:  # fmt: skip
    """yosys on ``files`` (name -> Verilog) with :func:`synth_commands`, checked as the flow checks it (no
    latch, ``check -assert``); (the netlist as Verilog, cells by type). Past ``timeout`` seconds a one-sentence
    :class:`~.toolchain.StepTimeout`."""
    commands = [f"read_verilog {' '.join(sorted(files))}", *synth_commands(family, top, device)]
    trim = "--core luts keeps our LUT4 netlist (yosys maps only the top)"
    with tempfile.TemporaryDirectory(prefix="lgn-netlist-") as tmp:
        folder = work or Path(tmp)
        what = f"yosys synth_{family} of {top}"
        cells = run_yosys(commands, files, what, time.perf_counter() + timeout, folder, trim, progress)
        return (folder / "netlist.v").read_text(), cells


def simulate_cells(
    sources: dict[str, str], family: str, bench: Bench, rows: np.ndarray, expected, sim: str,
    mode: str = "back-to-back", build_root: Path | None = None, prefix: bytes = b"",
) -> SimResult:  # fmt: skip
    """:func:`~.hdl_sim.run_testbench` of ``sources`` with yosys' models of the ``family``'s cells beside them
    (those the sources name, their includes expanded into one file) and the defines they need."""
    used = "\n".join(sources.values())
    library = {f"lgn_cells_{family}.v": cell_models.library_text(family, used_by=used)}
    defines = cell_models.DEFINES[family] or None
    return run_testbench({**sources, **library}, bench, rows, expected, sim, mode, build_root, 0, (), defines, prefix)


def simulate(
    graph: GateGraph, raw: np.ndarray, family: str = "ice40", sim: str = "verilator", core: str = "luts",
    pipeline: int | None = None, stream: bool = True, device: str | None = None, reference: GateGraph | None = None,
    build_root: Path | None = None, progress: Callable[[str], None] | None = None, timeout: float = SYNTH_TIMEOUT,
) -> NetlistRun:  # fmt: skip
    """The synthesized netlist of ``graph``'s streaming top (``stream``: fed ``raw`` byte by byte) or of its
    core alone (the input bits at once), its ``core`` (luts: our LUT4 netlist as the ``family``'s cells; gates:
    the gate-level Verilog yosys maps) synthesized as ``lgn synth --target family`` synthesizes it, simulated
    on ``sim`` against the evaluator on ``raw`` for ``reference`` (default: ``graph``). Refuses a model whose
    features are not bytes (:func:`~.fpga.check_streamable`) for the streaming top."""
    from . import evaluate
    from .verify import Answers

    if stream:
        check_streamable(graph)
    synth_commands(family, "lgn_top", device)  # an unknown family or part, refused before any tool runs
    chosen = make_core(graph, core, pipeline, cells=family)
    bits = evaluate.encode(graph, raw)
    expected = Answers(None, evaluate.predict(reference if reference is not None else graph, bits))
    if stream:
        top, files, rows = "lgn_top", stream_files(graph, chosen), U8.words(raw).astype(np.uint8)
        bench = Bench(top, True, True, 2 + chosen.latency, graph.n_classes, 1, False, stream=True)
    else:
        top, files, rows = "lgn_core", {"lgn_core.v": chosen.text}, input_rows(bits, None)
        bench = Bench(top, False, chosen.latency > 0, chosen.latency, graph.n_classes, 1, with_scores=False)
    start = time.perf_counter()
    netlist, cells = synthesize(files, top, family, device, timeout, progress)
    synth_seconds = time.perf_counter() - start
    if progress is not None:  # the simulator's build of a large netlist takes minutes: say where the time goes
        shown = ", ".join(f"{n:,} {cell}" for cell, n in sorted(cells.items()) if not cell.startswith("$"))
        progress(f"yosys synth_{family}: {shown} in {synth_seconds:.1f} s; {sim} builds and runs the netlist now")
    result = simulate_cells({f"{top}_netlist.v": netlist}, family, bench, rows, expected, sim, build_root=build_root)
    return NetlistRun(result, synth_seconds, cells)
