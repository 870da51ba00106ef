"""Boards a user owns, for the UART top (:mod:`.uart`): the part, the oscillator and the serial pins, written
as the family's pin file (iCE40 PCF, ECP5 LPF, Gowin CST). Where each pin was checked is in docs/fpga.md.

``rx`` is the pin the FPGA receives on (the USB-UART's TXD), ``tx`` the pin it sends on (the USB-UART's RXD).
"""

from __future__ import annotations

import dataclasses

from .errors import ParameterError
from .fpga_devices import DEVICES, GOWIN_DEVICES, package_pins


@dataclasses.dataclass(frozen=True)
class Board:
    title: str
    family: str  # ice40, ecp5 or gowin (lgn synth --target)
    device: str  # the default --device (a key of the family's device table)
    clock_hz: int  # the oscillator
    clock: str  # its pin
    rx: str
    tx: str
    package: str | None = None  # ECP5: a package other than the device table's
    speed: str | None = None  # ECP5: the speed grade, where not 6
    serial: str = ""  # where the serial line goes on the board
    # openFPGALoader's name for the board (its `-b`, case-sensitive), from its doc/boards.yml: the iCEBreaker is
    # its "ice40_generic" (it writes the SPI flash), the OrangeCrab "orangeCrab" (DFU)
    loader: str = ""


BOARDS = {
    "icebreaker": Board("iCEBreaker", "ice40", "up5k", 12_000_000, "35", "6", "9",
                        serial="the FT2232H's second channel, on the board's USB", loader="ice40_generic"),
    "ulx3s": Board("ULX3S", "ecp5", "25k", 25_000_000, "G2", "M1", "L4",
                   serial="the FT231X on the board's USB port US1", loader="ulx3s"),
    "orangecrab": Board("OrangeCrab", "ecp5", "25k", 48_000_000, "A9", "N17", "M18", "CSFBGA285", "8",
                        serial="no USB-UART on the board: a 3.3 V USB-UART adapter on the Feather header's pins "
                        "0 (RX, into the FPGA) and 1 (TX), and ground", loader="orangeCrab"),
    "tangnano9k": Board("Tang Nano 9K", "gowin", "GW1NR-9", 27_000_000, "52", "18", "17",
                        serial="the BL702's USB-UART on the board's USB-C", loader="tangnano9k"),
}  # fmt: skip

PIN_FILES = {"ice40": "lgn_top.pcf", "ecp5": "lgn_top.lpf", "gowin": "lgn_top.cst"}


def board(name: str, family: str) -> Board:
    """The board ``name``, which must carry a part of ``family``."""
    if name not in BOARDS:
        raise ParameterError(f"board {name!r} is unknown; choose {', '.join(BOARDS)}", "board")
    spec = BOARDS[name]
    if spec.family != family:
        raise ParameterError(f"board {name} carries an {spec.family} part, not {family} (--target)", "board")
    return spec


def uart_pins(family: str, spec: Board | None, device: str, clock_hz: int) -> str | None:
    """The UART top's pin file (clk, rx, tx) for ``spec``'s board, or, with no board, for the bare part:
    iCE40 the clock on a global-buffer pin and rx, tx on the next pins; Gowin the part's board's oscillator and
    the next pins; ECP5 none (nextpnr places them: a bitstream for measuring, not for a board)."""
    if spec is None:
        if family == "ice40":
            pins, clocks = package_pins(DEVICES[device])
            clock = min(clocks, key=pins.index)
            rx, tx = [p for p in pins if p != clock][:2]
        elif family == "gowin":
            clock = GOWIN_DEVICES[device].clock
            rx, tx = [p for p in GOWIN_DEVICES[device].pins.split() if p != clock][:2]
        else:
            return None
        spec = Board("no board", family, device, clock_hz, clock, rx, tx)
    placed = [("clk", spec.clock), ("rx", spec.rx), ("tx", spec.tx)]
    if family == "ice40":
        return "".join(f"set_io {signal} {pin}\n" for signal, pin in placed)
    if family == "gowin":
        return "".join(f'IO_LOC "{signal}" {pin};\n' for signal, pin in placed)
    lines = [f"# {spec.title}: {spec.serial}"] if spec.serial else []
    for signal, pin in placed:
        pull = " PULLMODE=UP" if signal == "rx" else ""
        lines += [f'LOCATE COMP "{signal}" SITE "{pin}";', f'IOBUF PORT "{signal}"{pull} IO_TYPE=LVCMOS33;']
    lines.append(f'FREQUENCY PORT "clk" {spec.clock_hz / 1e6:g} MHZ;')
    return "\n".join(lines) + "\n"
