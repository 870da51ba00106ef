"""The cocotb bench of the UART top (compiler/uart.py), run by hdl_tests/test_uart.py: a host's UART in Python
drives ``rx`` bit by bit and decodes ``tx``, the board's answers.

Two modes, by environment:
- ``LGN_UART_SEND`` (an .npz): send its ``bytes`` in ``segments`` (each a count of bytes, then a pause of so
  many bit times), optionally a ``break`` (rx held low for ``break_bits``) before a segment; write every byte
  the board answered to ``LGN_UART_OUT`` (.npy).
- ``LGN_UART_PTY`` (a file name): open a pseudo-terminal, write its name there, and serve it as the board's
  serial port (bytes the host writes go out on rx, bytes decoded from tx come back) until the file
  ``LGN_UART_PTY + ".done"`` appears: ``lgn board-run`` talks to the simulated board through pyserial.

The bit time is ``LGN_UART_DIVIDER`` clock cycles of 10 ns, times ``LGN_UART_SKEW`` (the host's clock off the
board's, e.g. 1.01).
"""

from __future__ import annotations

import os
import tty
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

CLOCK_NS = 10


def _bit_ns() -> int:
    return round(int(os.environ["LGN_UART_DIVIDER"]) * CLOCK_NS * float(os.environ.get("LGN_UART_SKEW", "1")))


async def _send_byte(dut, value: int, bit_ns: int) -> None:
    for level in [0, *((value >> i) & 1 for i in range(8)), 1]:
        dut.rx.value = level
        await Timer(bit_ns, unit="ns")


async def _receive(dut, bit_ns: int, answers: list[int]) -> None:
    """Decode tx forever: a falling edge starts a frame; sample each bit in its middle."""
    while True:
        await FallingEdge(dut.tx)
        await Timer(bit_ns + bit_ns // 2, unit="ns")
        value = 0
        for i in range(8):
            value |= int(dut.tx.value) << i
            await Timer(bit_ns, unit="ns")
        assert int(dut.tx.value) == 1, "the board's stop bit is low"
        answers.append(value)


async def _start(dut) -> int:
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rx.value = 1
    await Timer(50 * CLOCK_NS, unit="ns")
    return _bit_ns()


@cocotb.test()
async def uart_top(dut) -> None:
    bit_ns = await _start(dut)
    answers: list[int] = []
    cocotb.start_soon(_receive(dut, bit_ns, answers))
    if "LGN_UART_PTY" in os.environ:
        await _serve_pty(dut, bit_ns, answers, Path(os.environ["LGN_UART_PTY"]))
        return
    data = np.load(os.environ["LGN_UART_SEND"])
    stream = data["bytes"].tolist()
    at = 0
    for count, pause, break_bits in data["segments"].tolist():
        if break_bits:
            dut.rx.value = 0
            await Timer(break_bits * bit_ns, unit="ns")
            dut.rx.value = 1
            await Timer(2 * bit_ns, unit="ns")
        for value in stream[at : at + count]:
            await _send_byte(dut, value, bit_ns)
        at += count
        await Timer(max(pause, 1) * bit_ns, unit="ns")
    await Timer(30 * bit_ns, unit="ns")  # the last answer's frame
    np.save(os.environ["LGN_UART_OUT"], np.asarray(answers, dtype=np.int64))


async def _serve_pty(dut, bit_ns: int, answers: list[int], name_file: Path) -> None:
    """Serve a pseudo-terminal as the board's port until ``name_file`` + ``.done`` exists."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    name_file.write_text(os.ttyname(slave))
    done = Path(str(name_file) + ".done")
    returned = 0
    while not done.exists():
        try:
            chunk = os.read(master, 4096)
        except BlockingIOError:
            chunk = b""
        for value in chunk:
            await _send_byte(dut, value, bit_ns)
        if returned < len(answers):
            os.write(master, bytes(answers[returned:]))
            returned = len(answers)
        if not chunk:
            await Timer(10 * bit_ns, unit="ns")
    os.close(master)
    os.close(slave)
