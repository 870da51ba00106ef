"""The iCE40 designs in simulation, against the evaluator: the streaming top's RTL, and what a bitstream holds,
the synthesized netlist (yosys ``synth_ice40`` written back as Verilog, simulated with yosys' cell models) of
the streaming top, of its core, or of the LUT engine (``compiler.lut_engine``, fed its program first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import netlist_sim
from .fpga import Core, stream_files
from .ir import GateGraph
from .raw_input import U8  # raw features stream as bytes: a value outside 0..255 is refused, never wrapped


def simulate_stream(
    graph: GateGraph, core: Core, raw: np.ndarray, sim: str = "icarus", build_root: Path | None = None,
    mode: str = "back-to-back",
):  # fmt: skip
    """The streaming top (RTL, with yosys' SB_LUT4 models) on raw features, against the evaluator."""
    from . import evaluate, hdl_sim
    from .verify import Answers

    expected = Answers(None, evaluate.predict(graph, evaluate.encode(graph, raw)))
    bench = hdl_sim.Bench("lgn_top", True, True, 2 + core.latency, graph.n_classes, 1, with_scores=False, stream=True)
    return _on_cells(stream_files(graph, core), bench, U8.words(raw).astype(np.uint8), expected, sim, mode, build_root)


def _on_cells(files: dict[str, str], bench, rows: np.ndarray, expected, sim: str, mode: str,
              build_root: Path | None, prefix: bytes = b""):  # fmt: skip
    """``hdl_sim.run_testbench`` with yosys' iCE40 cell models (for SB_* instances and netlists)."""
    return netlist_sim.simulate_cells(files, "ice40", bench, rows, expected, sim, mode, build_root, prefix)


def synthesized_netlist(files: dict[str, str], top: str, timeout: float = netlist_sim.SYNTH_TIMEOUT) -> str:
    """yosys ``synth_ice40`` of ``files`` (name -> Verilog) down to iCE40 cells, written back as Verilog
    (:func:`.netlist_sim.synthesize`)."""
    return netlist_sim.synthesize(files, top, "ice40", timeout=timeout)[0]


def simulate_engine(
    graph: GateGraph,
    raw: np.ndarray,
    sim: str = "verilator",
    netlist: bool = True,
    build_root: Path | None = None,
    reference: GateGraph | None = None,
    mode: str = "back-to-back",
):
    """The LUT engine (``compiler.lut_engine``) on ``raw`` features, fed its program and then every sample byte
    by byte, against the evaluator for ``reference`` (default: ``graph``): ``netlist``, the synthesized iCE40
    cells (what the bitstream holds); else its RTL. Checks the stated latency too."""
    from . import evaluate, hdl_sim, lut_engine
    from .verify import Answers

    program = lut_engine.build_program(graph)
    bits = evaluate.encode(graph, raw)
    expected = Answers(None, evaluate.predict(reference if reference is not None else graph, bits))
    files = {"lgn_top.v": lut_engine.engine_verilog(graph, program)}
    if netlist:
        files = {"lgn_top_netlist.v": synthesized_netlist(files, "lgn_top")}
    bench = hdl_sim.Bench("lgn_top", True, True, program.latency, graph.n_classes, 1, False, stream=True)
    rows, prefix = U8.words(raw).astype(np.uint8), lut_engine.program_bytes(program)
    return _on_cells(files, bench, rows, expected, sim, mode, build_root, prefix)


def simulate_netlist(
    graph: GateGraph,
    raw: np.ndarray,
    sim: str = "verilator",
    pipeline: int | None = None,
    stream: bool = True,
    build_root: Path | None = None,
    core: str = "luts",
    reference: GateGraph | None = None,
):
    """What the bitstream holds, in simulation: the synthesized netlist (iCE40 cells, yosys' models) of the
    streaming top (``stream``: every sample fed byte by byte) or of its core (the input bits at once), against
    the evaluator on ``raw`` features for ``reference`` (default: ``graph`` itself); :func:`.netlist_sim.simulate`
    for the ice40 family."""
    run = netlist_sim.simulate(graph, raw, "ice40", sim, core, pipeline, stream, reference=reference,
                               build_root=build_root)  # fmt: skip
    return run.result
