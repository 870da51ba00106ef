"""The UART top for a board a user owns (``templates/verilog/lgn_uart.v.j2``): serial 8N1 in and out around the
streaming top (:func:`~.fpga.stream_top`, here as module ``lgn_stream``). The host sends a sample's raw feature
bytes; the board answers one byte, the class index. A quiet line (``idle_ms``) or a framing error drops a
partial sample (docs/fpga.md, "A board you own").

Also the host's half of that protocol (:func:`exchange`): the bytes of each row out, one class byte back per
row, over any port object with ``write`` and ``read`` (pyserial's, or a test's fake).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from .boards import Board
from .errors import InputError, LgnError, ParameterError
from .ir import GateGraph
from .lowering import VERSION, model_hash
from .templating import environment

MIN_DIVIDER = 4  # clock cycles per bit: the receiver samples the middle of a bit, half a bit after its edge
MAX_BAUD_ERROR = 0.02  # both ends' error adds up over a 10-bit frame; 8N1 tolerates about 4-5% in all
IDLE_MS = 100.0  # a quiet line this long resynchronises the board (a host pauses this long after a timeout)


@dataclasses.dataclass(frozen=True)
class Uart:
    """The serial line of a UART top: ``baud`` from a ``clock_hz`` clock; ``idle_ms`` of a quiet line drop a
    partial sample; the pins of ``board`` (None: the bare part's, :func:`~.boards.uart_pins`)."""

    baud: int
    clock_hz: int
    idle_ms: float = IDLE_MS
    board: Board | None = None

    @property
    def divider(self) -> int:
        return divider(self.clock_hz, self.baud)

    @property
    def idle_cycles(self) -> int:
        return max(20 * self.divider, round(self.clock_hz * self.idle_ms / 1000))


def divider(clock_hz: int, baud: int) -> int:
    """Clock cycles per bit, ``round(clock_hz / baud)``. Refuses, in one line, a baud rate that the clock
    cannot make: fewer than :data:`MIN_DIVIDER` cycles per bit, or a rate more than :data:`MAX_BAUD_ERROR`
    off the nominal one."""
    if baud <= 0 or clock_hz <= 0:
        raise ParameterError(f"uart {baud} baud from a {clock_hz} Hz clock: both must be positive", "uart")
    cycles = round(clock_hz / baud)
    if cycles < MIN_DIVIDER:
        raise ParameterError(
            f"uart {baud} baud is too fast for a {clock_hz:,} Hz clock: {clock_hz / baud:.2f} cycles per bit, "
            f"the receiver needs at least {MIN_DIVIDER} (at most {clock_hz // MIN_DIVIDER:,} baud)",
            "uart",
        )
    error = abs(clock_hz / cycles - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ParameterError(
            f"uart {baud} baud from a {clock_hz:,} Hz clock: {cycles} cycles per bit give "
            f"{clock_hz / cycles:,.0f} baud, {100 * error:.1f}% off (at most {100 * MAX_BAUD_ERROR:.0f}%); "
            "choose a baud rate closer to the clock divided by a whole number",
            "uart",
        )
    return cycles


def check_answerable(graph: GateGraph) -> None:
    """Refuse a model whose class index does not fit the one byte the board answers."""
    if graph.n_classes > 256:
        raise LgnError(f"the UART top answers the class as one byte: {graph.n_classes} classes do not fit")


def uart_top(graph: GateGraph, class_width: int, uart: Uart, module: str = "lgn_top",
             stream: str = "lgn_stream") -> str:  # fmt: skip
    """The UART top's Verilog around streaming top ``stream`` (whose class port is ``class_width`` bits)."""
    check_answerable(graph)
    cycles = uart.divider
    error = abs(uart.clock_hz / cycles - uart.baud) / uart.baud
    pad = 8 - class_width
    return (
        environment("verilog")
        .get_template("lgn_uart.v.j2")
        .render(
            module=module,
            stream=stream,
            version=VERSION,
            model_hash=model_hash(graph),
            baud=uart.baud,
            clock_hz=uart.clock_hz,
            divider=cycles,
            error=f"{100 * error:.2f}%",
            idle_cycles=uart.idle_cycles,
            idle_ms=f"{uart.idle_cycles * 1000 / uart.clock_hz:g}",
            count_width=max(cycles, uart.idle_cycles).bit_length(),
            n_features=graph.encoder.n_features if graph.encoder is not None else 0,
            n_classes=graph.n_classes,
            class_width=class_width,
            class_byte=f"{{{pad}'d0, class_out}}" if pad else "class_out",
        )
    )


def uart_files(graph: GateGraph, core, uart: Uart) -> dict[str, str]:
    """The UART top (``lgn_top.v``), the streaming top it feeds (``lgn_stream.v``) and the core (``lgn_core.v``)."""
    from .fpga import stream_top

    return {
        "lgn_top.v": uart_top(graph, core.class_width, uart),
        "lgn_stream.v": stream_top(graph, core, "lgn_stream"),
        "lgn_core.v": core.text,
    }


# ---- the host's side ----------------------------------------------------------------------------------------


class Port(Protocol):
    """What :func:`exchange` needs of a serial port (pyserial's ``Serial`` has it): ``read(n)`` returns fewer
    than ``n`` bytes when its timeout passes."""

    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int = 1) -> bytes: ...


def sample_bytes(graph: GateGraph, raw: np.ndarray, names: list[str] | None = None) -> np.ndarray:
    """Each row's raw features as the bytes the board takes (``uint8[N, n_features]``). Refuses, naming the
    first row and column, a value that is not a whole number in 0..255."""
    raw = np.asarray(raw)
    bad = ~(np.isfinite(raw) & (raw == np.round(raw)) & (raw >= 0) & (raw <= 255))
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        name = names[column] if names and column < len(names) else f"feature {column}"
        raise InputError(
            f"row {row}, {name}: {float(raw[row, column]):g} is not a byte (0..255): the board takes raw features one "
            "byte each"
        )
    return raw.astype(np.uint8)


class NoAnswer(LgnError):
    """The board sent no class byte within the timeout."""


def exchange(
    port: Port, rows: np.ndarray, window: int = 8, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Send each row's bytes and read one class byte per row, keeping up to ``window`` rows in flight (the
    board answers in order); the classes. Raises :class:`NoAnswer` naming the first row left unanswered when
    a read returns short (the port's timeout passed)."""
    n = len(rows)
    classes = np.zeros(n, dtype=np.int64)
    sent = received = 0
    while received < n:
        while sent < n and sent - received < window:
            port.write(rows[sent].tobytes())
            sent += 1
        answer = port.read(1)
        if len(answer) != 1:
            raise NoAnswer(f"no answer to row {received} ({received} of {n} rows answered)")
        classes[received] = answer[0]
        received += 1
        if progress is not None:
            progress(received)
    return classes


def settle(port, seconds: float) -> None:
    """Let the board resynchronise (a quiet line drops a partial sample) and drop stale bytes from the port."""
    time.sleep(seconds)
    reset = getattr(port, "reset_input_buffer", None)
    if reset is not None:
        reset()
