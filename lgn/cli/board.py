"""``lgn board-run``: stream the rows of a table file through a board running the UART top (``lgn synth
--pnr --uart BAUD``) over a serial port; the board's accuracy, its agreement with the evaluator row by row,
and samples per second. The protocol is in docs/fpga.md ("A board you own") and compiler/uart.py.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from lgn.compiler import evaluate, fpga, uart
from lgn.compiler.errors import LgnError

from .common import EXIT_CHECK_FAILED, EXIT_OK, integer, load_any, number

SHOWN_MISMATCHES = 5


def open_serial(port: str, baud: int, timeout: float):
    """The serial port ``port`` at ``baud`` 8N1 with read timeout ``timeout`` (pyserial, from the [fpga]
    extra). Tests replace this function to plug in a fake port."""
    import serial  # pyserial

    try:
        return serial.Serial(port, baudrate=baud, timeout=timeout, write_timeout=timeout)
    except (serial.SerialException, ValueError, OSError) as exc:
        why = str(exc).split(":", 1)[-1].strip() if "could not open port" in str(exc) else str(exc)
        raise LgnError(f"{port}: cannot open the serial port: {why}") from None


def _rows(args, graph):
    """(the rows' bytes, their labels or None, the evaluator's classes), limited by ``--limit``."""
    from .predict import read_rows

    fpga.check_streamable(graph)
    uart.check_answerable(graph)
    raw, truth = read_rows(graph, args.data, args.labels)
    if args.limit is not None:
        raw, truth = raw[: args.limit], None if truth is None else truth[: args.limit]
    if len(raw) == 0:
        raise LgnError(f"{args.data}: no rows to send")
    names = list(graph.names.features) if graph.names is not None and graph.names.features else None
    rows = uart.sample_bytes(graph, raw, names)
    expected = evaluate.predict(graph, evaluate.encode(graph, rows.astype(np.float64)))
    return rows, truth, expected


def cmd_board_run(args) -> int:
    graph = load_any(args.model)
    if graph.encoder is None:
        raise LgnError(f"{args.model}: a graph without an encoder takes input bits, not a table of features")
    rows, truth, expected = _rows(args, graph)
    port = open_serial(args.port, args.baud, args.timeout)
    n, width = rows.shape
    print(f"{args.port} at {args.baud} baud: {n} rows of {args.data}, {width} bytes each, one class byte back")
    progress = None if args.quiet else (lambda done: print(f"\r{done} of {n} rows", end="", file=sys.stderr))
    try:
        uart.settle(port, args.settle)
        start = time.perf_counter()
        try:
            got = uart.exchange(port, rows, args.window, progress)
        except uart.NoAnswer as exc:
            raise LgnError(
                f"{args.port}: {exc} within --timeout {args.timeout:g} s: is the board running this model's UART "
                f"top at --baud {args.baud}? (it drops a partial sample after {uart.IDLE_MS:g} ms of quiet)"
            ) from None
        seconds = time.perf_counter() - start
    finally:
        close = getattr(port, "close", None)
        if close is not None:
            close()
    if progress is not None:
        print(file=sys.stderr)
    wrong = np.flatnonzero(got != expected)
    rate = f"{n / seconds:,.1f} samples/s" if seconds > 0 else "instantly"
    line = f"{n} rows in {seconds:.2f} s ({rate}; the line carries {args.baud / (10 * width):,.1f} samples/s)"
    if truth is not None:
        line += f"; board accuracy {np.mean(got == truth):.4f}, evaluator {np.mean(expected == truth):.4f}"
    print(line)
    for i in wrong[:SHOWN_MISMATCHES].tolist():
        print(f"row {i}: the board answered class {got[i]}, the evaluator {expected[i]}")
    print(f"board vs evaluator: {n} rows, {len(wrong)} mismatches")
    return EXIT_OK if len(wrong) == 0 else EXIT_CHECK_FAILED


def register(sub) -> None:
    p = sub.add_parser("board-run", help="stream a table file through a board's UART top (lgn synth --uart)")
    p.add_argument("port", help="the serial port (/dev/ttyUSB1, /dev/ttyACM0, COM3, ...)")
    p.add_argument("model", help="the model the board runs (.npz graph or checkpoint)")
    p.add_argument("--data", required=True, help="the rows to send (CSV, TSV, .npz, .npy, Parquet), read as "
                   "lgn predict reads them; a label column gives accuracy")  # fmt: skip
    p.add_argument("--labels", help="with an .npy --data: its labels (optional)")
    p.add_argument("--baud", type=integer(1), default=115_200, help="the UART top's baud rate (default: 115200)")
    p.add_argument("--limit", type=integer(1), help="send only the first N rows")
    p.add_argument("--timeout", type=number(0.0, 3600.0, low_open=True), default=5.0,
                   help="seconds to wait for each answer (default: 5)")  # fmt: skip
    p.add_argument("--window", type=integer(1, 1024), default=8, help="rows in flight before reading answers")
    p.add_argument("--settle", type=number(0.0, 60.0), default=0.2,
                   help="seconds of quiet before the first row, so that the board drops a partial sample")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_board_run)
