"""The stream harness (``templates/verilog/lgn_stream_harness.v.j2``): a testbench in Verilog that feeds a
streaming top from a file, makes its own clock and reset and records each sample's class and timing. Under
cocotb it runs on either simulator (``hdl_sim.run_testbench``); on Verilator it is built as a program of its own
(``run_native``), which is about ten times faster on a synthesized netlist."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np

from .errors import LgnError
from .templating import environment
from .verify import Answers


def run_native(build_dir: Path, env: dict[str, str], files: list[Path], defines: dict | None,
                plusargs: list[str]) -> tuple[float, float]:  # fmt: skip
    """The stream harness built by Verilator as a program of its own (``--binary``: none of cocotb's public
    signals and callbacks, about ten times faster on a synthesized netlist) and run; (build, run seconds)."""
    binary = build_dir / "native" / "Vlgn_stream_harness"
    start = time.perf_counter()
    if not binary.exists():
        command = ["verilator", "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style", "-CFLAGS",
                   "-fcoroutines", "-j", str(os.cpu_count() or 1), "--top-module", "lgn_stream_harness", "--Mdir",
                   str(build_dir / "native"), "-DLGN_FINISH=1", *(f"-D{k}={v}" for k, v in (defines or {}).items()),
                   *map(str, files)]  # fmt: skip
        proc = subprocess.run(command, cwd=build_dir, env={**os.environ, **env}, capture_output=True, text=True)
        (build_dir / "native-build.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise LgnError(f"verilator could not build the design (see {build_dir / 'native-build.log'})")
    build_seconds, start = time.perf_counter() - start, time.perf_counter()
    proc = subprocess.run([str(binary), *plusargs], cwd=build_dir, capture_output=True, text=True)
    (build_dir / f"native-{os.getpid()}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise LgnError(
            f"the verilator simulation failed (exit {proc.returncode}): {(proc.stdout + proc.stderr)[-300:]}"
        )
    return build_seconds, time.perf_counter() - start


def stream_answers(path: Path, n: int, build_dir: Path) -> tuple[Answers, np.ndarray, np.ndarray]:
    """The stream harness's record (class, edge of the last byte, edge of the class per sample) as answers."""
    rows = [line.split() for line in path.read_text().splitlines()] if path.exists() else []
    if len(rows) != n:
        raise LgnError(
            f"the simulation gave {len(rows)} of {n} answers (the design stopped answering; see {build_dir})"
        )
    table = np.asarray(rows, dtype=np.int64).reshape(n, 3)
    return Answers(None, table[:, 0]), table[:, 1], table[:, 2]


MAX_STREAM_SAMPLES = 1 << 16


def stream_harness(module: str, n_classes: int) -> str:
    """The harness's Verilog around streaming top ``module`` (lgn_stream_harness.v.j2)."""
    return (
        environment("verilog")
        .get_template("lgn_stream_harness.v.j2")
        .render(top=module, class_width=max(1, (n_classes - 1).bit_length()), max_samples=MAX_STREAM_SAMPLES)
    )
