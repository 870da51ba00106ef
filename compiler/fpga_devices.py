"""The FPGA parts lgn places and routes for: their logic cells and package pins (the iCE40 pin lists are those
of the icestorm chip database, kept here so that a pip-only toolchain needs no Debian package), the pin
constraints of the streaming top, and the check that a plain circuit's I/O bits fit a package at all."""

from __future__ import annotations

import dataclasses

from .errors import LgnError


@dataclasses.dataclass(frozen=True)
class Device:
    flag: str
    package: str
    chipdb: str
    logic_cells: int


DEVICES = {
    "up5k": Device("--up5k", "sg48", "chipdb-5k.txt", 5280),
    "hx8k": Device("--hx8k", "ct256", "chipdb-8k.txt", 7680),
    "hx1k": Device("--hx1k", "tq144", "chipdb-1k.txt", 1280),
}


@dataclasses.dataclass(frozen=True)
class Ecp5Device:
    flag: str
    package: str  # CABGA381, the ULX3S's (25F-85F) and most boards'
    luts: int  # LUT4 slots
    io: int  # user I/O of the package
    dp16kd: int  # DP16KD block RAMs (18 Kbit each)


ECP5_DEVICES = {
    "25k": Ecp5Device("--25k", "CABGA381", 24288, 197, 56),
    "45k": Ecp5Device("--45k", "CABGA381", 43848, 203, 108),
    "85k": Ecp5Device("--85k", "CABGA381", 83640, 205, 208),
}


@dataclasses.dataclass(frozen=True)
class GowinDevice:
    part: str  # nextpnr-himbaechel's --device: the part number with its package and speed grade
    family: str  # the chip database (--vopt family=, gowin_pack -d)
    synth: str  # synth_gowin's -family
    board: str  # the board that carries this part, whose pins constraints are given where known
    luts: int  # LUT4
    ffs: int
    pins: str  # the package's general-purpose I/O pins in order (JTAG, configuration and MODE pins left out)
    clock: str  # the board's oscillator pin (27 MHz on both Tang Nanos)
    leds: str  # the board's LEDs (active low), which carry the class bits


GOWIN_DEVICES = {
    "GW1NR-9": GowinDevice(
        "GW1NR-LV9QN88PC6/I5", "GW1N-9C", "gw1n", "Tang Nano 9K", 8640, 6480,
        "3 10 11 13 14 15 16 17 18 19 20 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 47 48 49 50 51 52 63 "
        "68 69 70 71 72 73 74 75 76 77 79 80 81 82 83 84 85 86",
        "52", "10 11 13 14 15 16",
    ),
    "GW2AR-18": GowinDevice(
        "GW2AR-LV18QN88C8/I7", "GW2A-18C", "gw2a", "Tang Nano 20K", 20736, 15552,
        "4 10 11 13 15 16 17 18 19 20 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 48 49 51 63 69 70 71 72 "
        "73 74 75 76 77 79 80 81 82 83 84 85 86",
        "4", "15 16 17 18 19 20",
    ),
}  # fmt: skip

# package -> (its I/O pins in the order constraints() hands them out, those that reach a global buffer)
_PINS = {
    "sg48": (
        "2 3 4 6 9 10 11 12 13 14 15 16 17 18 19 20 21 23 25 26 27 28 31 32 34 35 36 37 38 39 40 41 42 43 44 45 46 "
        "47 48",
        "20 23 35 37 41 44",
    ),
    "ct256": (
        "A1 A2 A5 A6 A7 A9 B1 B2 B3 B4 B5 B6 B7 B8 B9 C1 C2 C3 C4 C5 C6 C7 C8 C9 D1 D2 D3 D4 D5 D6 D7 D8 D9 E2 E3 E4 "
        "E5 E6 E9 F1 F2 F3 F4 F5 F7 F9 G1 G2 G3 G4 G5 H1 H2 H3 H4 H5 H6 J1 J2 J3 J4 J5 K1 K3 K4 K5 K9 L1 L3 L4 L5 L6 "
        "L7 L9 M1 M2 M3 M4 M5 M6 M7 M8 M9 N2 N3 N4 N5 N6 N7 N9 P1 P2 P4 P5 P6 P7 P8 P9 R1 R2 R3 R4 R5 R6 R9 T1 T2 T3 "
        "T5 T6 T7 T8 T9 A10 A11 A15 A16 B10 B11 B12 B13 B14 B15 B16 C10 C11 C12 C13 C14 C16 D10 D11 D13 D14 D15 D16 "
        "E10 E11 E13 E14 E16 F11 F12 F13 F14 F15 F16 G10 G11 G12 G13 G14 G15 G16 H11 H12 H13 H14 H16 J10 J11 J12 J13 "
        "J14 J15 J16 K11 K12 K13 K14 K15 K16 L10 L11 L12 L13 L14 L16 M11 M12 M13 M14 M15 M16 N10 N12 N16 P10 P11 P12 "
        "P13 P14 P15 P16 R10 R11 R12 R14 R15 R16 T10 T11 T13 T14 T15 T16",
        "C8 F7 G1 J3 K9 R9 H11 H16",
    ),
    "tq144": (
        "1 2 3 4 7 8 9 10 11 12 19 20 21 22 23 24 25 26 28 29 31 32 33 34 37 38 39 41 42 43 44 45 47 48 49 50 52 56 "
        "58 60 61 62 63 64 67 68 70 71 73 74 75 76 78 79 80 81 87 88 90 91 93 94 95 96 97 98 99 101 102 104 105 106 "
        "107 112 113 114 115 116 117 118 119 120 121 122 128 129 134 135 136 137 138 139 141 142 143 144",
        "20 21 49 50 93 94 128 129",
    ),
}


class DoesNotFit(LgnError):
    """The design needs more of the device than it has (the CLI exits 1 with this line)."""


def package_pins(device: Device) -> tuple[list[str], set[str]]:
    """The package's I/O pin names (in the icestorm chip database's order by name) and those that reach a
    global buffer (for the clock)."""
    names, clocks = _PINS[device.package]
    return names.split(), set(clocks.split())


_STREAM_PINS = ["rst", *[f"in_data[{j}]" for j in range(8)], "in_valid", "in_ready", "out_valid"]


def constraints(device: Device, class_width: int) -> str:
    """A pin constraint file for the default package: the clock on a global-buffer pin, the rest in order."""
    pins, clocks = package_pins(device)
    signals = list(_STREAM_PINS)
    signals += [f"class_out[{j}]" for j in range(class_width)] if class_width > 1 else ["class_out"]
    clock = min(clocks, key=pins.index) if clocks else pins[0]
    rest = [p for p in pins if p != clock]
    if len(rest) < len(signals):
        raise DoesNotFit(f"package {device.package} has {len(pins)} I/O pins, the top needs {len(signals) + 1}")
    lines = [f"set_io clk {clock}"] + [f"set_io {s} {p}" for s, p in zip(signals, rest)]
    return "\n".join(lines) + "\n"


def gowin_constraints(device: GowinDevice, class_width: int) -> str:
    """A CST file for the streaming top on ``device``'s board: the clock on the board's oscillator pin, the
    class bits on its LEDs while they last, the rest on the package's other pins in order."""
    signals = list(_STREAM_PINS)
    classes = [f"class_out[{j}]" for j in range(class_width)] if class_width > 1 else ["class_out"]
    leds = device.leds.split()[: len(classes)]
    pins = [p for p in device.pins.split() if p != device.clock and p not in leds]
    signals += classes[len(leds) :]
    if len(pins) < len(signals):
        raise DoesNotFit(f"the {device.part} has {len(device.pins.split())} I/O pins, the top needs more")
    placed = [("clk", device.clock), *zip(classes, leds), *zip(signals, pins)]
    return "".join(f'IO_LOC "{signal}" {pin};\n' for signal, pin in placed)


def check_io(io_bits: int, device: str) -> None:
    """Refuse, before any synthesis, a plain circuit whose ``io_bits`` (inputs, outputs, clock) exceed the
    device package's pins: no placement can help, and the streaming top (--pnr) takes one byte per clock."""
    if device in ECP5_DEVICES:
        package, pins = ECP5_DEVICES[device].package, ECP5_DEVICES[device].io
    elif device in GOWIN_DEVICES:
        package, pins = GOWIN_DEVICES[device].part, len(GOWIN_DEVICES[device].pins.split())
    else:
        package, pins = DEVICES[device].package, len(package_pins(DEVICES[device])[0])
    if io_bits > pins:
        raise DoesNotFit(
            f"the plain circuit has {io_bits:,} I/O bits and the {device} ({package}) {pins} pins: place the "
            f"streaming top instead (--pnr: raw features one byte per clock on {len(_STREAM_PINS) + 1} pins and the "
            f"class bits)"
        )
