"""The UART top (compiler/uart.py) under Icarus with a host's UART in Python (hdl_tests/uart_bench.py): real
samples of a small net in, every answered class against the evaluator, back to back at a host clock 1.5% off
the board's; a partial sample dropped by a quiet line and by a break. Then the whole path: ``lgn board-run``
through pyserial on a pseudo-terminal that the simulated board serves."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lgn.cli import main
from lgn.cli.common import save_graph
from lgn.compiler import evaluate, fpga, hdl_sim, uart
from tests.test_fpga import raw_samples, streamable

pytestmark = [
    pytest.mark.hdl,
    pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed (bash .ci/bootstrap)"),
]
ROOT = Path(__file__).resolve().parents[1]
LINK = uart.Uart(125_000, 1_000_000, idle_ms=0.3)  # 8 cycles per bit; a quiet line of 300 cycles resyncs


def _build(graph, tmp_path: Path, core: str = "luts"):
    from cocotb_tools.runner import get_runner

    files = fpga.stream_files(graph, fpga.make_core(graph, core), uart=LINK)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    models = [hdl_sim.ice40_cell_models()] if core == "luts" else []  # the luts core is SB_LUT4 cells
    runner = get_runner("icarus")
    runner.build(sources=[tmp_path / n for n in sorted(files)] + models, hdl_toplevel="lgn_top",
                 build_dir=tmp_path / "sim", defines={"NO_ICE40_DEFAULT_ASSIGNMENTS": 1}, timescale=("1ns", "1ps"),
                 log_file=tmp_path / "build.log")  # fmt: skip
    return runner


def _run(runner, tmp_path: Path, env: dict[str, str]) -> None:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    runner.test(test_module="hdl_tests.uart_bench", hdl_toplevel="lgn_top", build_dir=tmp_path / "sim",
                test_dir=tmp_path / "sim", log_file=tmp_path / "sim.log",
                extra_env={"PYTHONPATH": path, "LGN_UART_DIVIDER": str(LINK.divider), **env})  # fmt: skip


def test_uart_top_answers_as_the_evaluator_and_resyncs(tmp_path):
    graph = streamable()
    raw = raw_samples(30)
    classes = evaluate.predict(graph, evaluate.encode(graph, raw)).tolist()
    junk = np.random.default_rng(5).integers(0, 256, 12).astype(np.uint8)
    stream = np.concatenate([raw[:20].ravel(), junk[:5], raw[20:25].ravel(), junk[5:], raw[25:].ravel()])
    # (bytes, then a pause in bit times, a break of so many bit times before them)
    segments = [(20 * 14, 0, 0), (5, 60, 0), (5 * 14, 0, 0), (7, 0, 0), (5 * 14, 0, 20)]
    np.savez(tmp_path / "send.npz", bytes=stream, segments=np.array(segments))
    _run(_build(graph, tmp_path), tmp_path,
         {"LGN_UART_SEND": str(tmp_path / "send.npz"), "LGN_UART_OUT": str(tmp_path / "got.npy"),
          "LGN_UART_SKEW": "1.015"})  # fmt: skip
    got = np.load(tmp_path / "got.npy").tolist()
    assert got == classes, f"board {got}\nevaluator {classes}"


def test_board_run_through_a_simulated_board(tmp_path, capsys):
    """lgn board-run opens a pseudo-terminal with pyserial; the simulated UART top answers on it."""
    pytest.importorskip("serial")
    graph = streamable(seed=5)
    raw = raw_samples(24)
    save_graph(graph, str(tmp_path / "net.npz"))
    header = ",".join(f"f{i}" for i in range(14))
    np.savetxt(tmp_path / "rows.csv", raw, fmt="%d", delimiter=",", header=header, comments="")
    runner = _build(graph, tmp_path, "gates")
    name_file = tmp_path / "pty"
    sim = threading.Thread(target=_run, args=(runner, tmp_path, {"LGN_UART_PTY": str(name_file)}))
    sim.start()
    try:
        deadline = time.monotonic() + 60
        while not name_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        port = name_file.read_text()
        code = main(["board-run", port, str(tmp_path / "net.npz"), "--data", str(tmp_path / "rows.csv"),
                     "--baud", str(LINK.baud), "--timeout", "60", "--quiet"])  # fmt: skip
    finally:
        Path(str(name_file) + ".done").touch()
        sim.join(120)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "board vs evaluator: 24 rows, 0 mismatches" in out
