"""``lgn synth``: LUTs and flip-flops part by part, two ways: yosys on the gate-level Verilog, and our own LUT
mapping of the lowered design (compressor-tree GroupSum, comparator-tree argmax) written LUT by LUT; which is
smaller. With ``--pnr`` (iCE40, ECP5, Gowin): the streaming top placed and routed, a bitstream, the clock it
reaches."""

from __future__ import annotations

import functools
import time
from collections.abc import Collection

from lgn.compiler import boards, ecp5, fpga, gowin, hardware, pipeline, toolchain, uart
from lgn.compiler.errors import ParameterError
from lgn.compiler.fpga_devices import ECP5_DEVICES, GOWIN_DEVICES
from lgn.compiler.hdl_tools import synth_report
from lgn.compiler.outputs import OutputFolder, claim_folder
from lgn.compiler.raw_input import encoder_format, resolve_input

from .common import EXIT_CHECK_FAILED, EXIT_OK, integer, load_any, number


def _print(part_name: str, luts: int, ffs: int | str, script: str) -> None:
    print(f"  {part_name:36s} {luts:8d} {ffs!s:>8s}  {script}")


# What place and route writes in its folder (compiler/fpga.py): reserved before it runs, so that none of them
# replaces a file lgn did not write; what else appears there is recorded as lgn's afterwards.
PNR_FILES = (
    "lgn_top.v", "lgn_core.v", "lgn_top.json", "stat.txt", "lgn_top.pcf", "report.json", "lgn_top.asc",
    "lgn_net.bin", "lgn_program.bin", "nextpnr-ice40.log", "yosys.log", "icepack.log", "luts/", "gates/",
    "stat.json", "synth.ys", "lgn_top.config", "lgn_net.bit", "nextpnr-ecp5.log", "ecppack.log", "lgn_net.svf",
    "lgn_top.cst", "lgn_pnr.json", "lgn_net.fs", "nextpnr-himbaechel.log", "gowin_pack.log", "lgn_stream.v",
    "lgn_top.lpf",
)  # fmt: skip


def _uart(args):
    """The UART top's settings from --uart, --board, --clock-hz (None without --uart); refused in one line
    where they do not fit together."""
    if args.uart is None:
        if args.board is not None or args.clock_hz is not None:
            raise ParameterError(
                "board and clock_hz go with uart (the UART top for a board)", "board", "clock_hz", "uart"
            )
        return None
    if not args.pnr or args.target not in ("ice40", "ecp5", "gowin"):
        raise ParameterError("uart builds a bitstream: it goes with pnr and target ice40, ecp5 or gowin", "uart", "pnr")
    spec = boards.board(args.board, args.target) if args.board is not None else None
    if spec is None and args.clock_hz is None:
        raise ParameterError(
            f"uart without board needs clock_hz (boards: {', '.join(boards.BOARDS)})", "uart", "board", "clock_hz"
        )
    clock = args.clock_hz if args.clock_hz is not None else spec.clock_hz
    uart.divider(clock, args.uart)  # refuse a baud rate the clock cannot make before any tool runs
    return uart.Uart(args.uart, clock, board=spec)


def _pnr(graph, args, folder: OutputFolder, link=None) -> int:
    out = folder.path
    folder.reserve(PNR_FILES)
    try:
        place = fpga.place_and_route
        if args.target == "ecp5":
            place = functools.partial(ecp5.place_and_route, router=args.router)
        elif args.target == "gowin":
            place = functools.partial(gowin.place_and_route, router=args.router)
        result = place(
            graph, args.device, out, seed=args.seed, freq=args.freq, pipeline=args.pipeline, timeout=args.timeout,
            progress=lambda line: print(f"  {line}", flush=True), core=args.core, uart=link,
        )  # fmt: skip
    except fpga.DoesNotFit as exc:
        print(f"does not fit: {exc}")
        return EXIT_CHECK_FAILED
    finally:
        folder.settle()
    fmax = f"{result.fmax_mhz:.1f} MHz" if result.fmax_mhz else "not reported"
    top = "LUT engine" if result.core == "engine" else f"streaming top, {result.core} core"
    top = f"UART top around the {top}" if link is not None else top
    family = {"ecp5": f"ECP5 LFE5U-{result.device[:-1]}F", "gowin": f"Gowin {result.device}"}.get(
        args.target, f"iCE40 {result.device.upper()}"
    )
    print(f"{family} ({result.package}), {top}, seed {args.seed}:")
    print(f"  logic cells    {result.logic_cells} of {result.logic_cells_available} "
          f"({result.luts} LUT4, {result.ffs} flip-flops)")  # fmt: skip
    print(f"  block RAM      {result.ram} of {result.ram_available}")
    if result.core == "engine" and args.target == "ecp5":
        print("  program        in the bitstream (DP16KD initial values): samples follow reset, no upload")
    if result.program is not None:
        print(f"  SPRAM          {result.spram} of 4 (the program: send {result.program} after reset)")
    how = "nextpnr's timing analysis"
    if args.target == "gowin":  # nextpnr-himbaechel's Gowin timing: its critical paths hold no LUT (0.11)
        how = "nextpnr-himbaechel's Gowin timing, which leaves the LUT levels untimed: an upper bound"
    print(f"  Fmax           {fmax} ({how})")
    rate = f" ({result.fmax_mhz * 1e6 / result.cycles_per_sample:,.0f} samples/s at Fmax)" if result.fmax_mhz else ""
    print(f"  latency        {result.latency_cycles} cycles after the last feature; {result.cycles_per_sample} "
          f"cycles per sample{rate}")  # fmt: skip
    pins = f"pins {out / 'lgn_top.pcf'}" if args.target == "ice40" else "I/O placed by nextpnr: no board's pins"
    if args.target == "ecp5":
        pins = f"the clock on G2 ({out / 'lgn_top.lpf'}), the other I/O placed by nextpnr: no board's pins"
    if args.target == "gowin":
        pins = f"pins {out / 'lgn_top.cst'}: the {GOWIN_DEVICES[args.device].board}'s clock, the class on its LEDs"
    if link is not None:
        _print_uart(args, link, result, out)
        pins = f"pins {out / boards.PIN_FILES[args.target]}" if (out / boards.PIN_FILES[args.target]).exists() else pins
    print(f"wrote {result.bitstream} (and the Verilog, {pins}, nextpnr's report)")
    return EXIT_OK


def _print_uart(args, link, result, out) -> None:
    """The UART top's line, where its pins go, and how to flash and run it."""
    spec = link.board
    where = f"{spec.title}: clk {spec.clock}, rx {spec.rx}, tx {spec.tx} ({spec.serial})" if spec else "no board"
    n = result.cycles_per_sample
    print(f"  UART top       {link.baud} baud 8N1 from {link.clock_hz:,} Hz ({link.divider} cycles per bit); "
          f"{n} bytes in, 1 byte out per sample: {link.baud / (10 * n):,.1f} samples/s on the line")  # fmt: skip
    print(f"  pins           {where}")
    if spec is not None:
        dfu = " (DFU: hold the button while plugging the board in)" if spec.loader == "orangeCrab" else ""
        print(f"  next           openFPGALoader -b {spec.loader} {result.bitstream}{dfu}; then lgn board-run PORT "
              f"{args.graph} --data FILE --baud {link.baud}")  # fmt: skip


def cmd_synth(args) -> int:
    if not args.timeout > 0:
        raise ParameterError(f"timeout must be positive, got {args.timeout}", "timeout")
    toolchain.use(args.toolchain)
    families: dict[str, Collection[str]] = {"ice40": fpga.DEVICES, "ecp5": ECP5_DEVICES, "gowin": GOWIN_DEVICES}
    defaults = {"ice40": "up5k", "ecp5": "25k", "gowin": "GW1NR-9"}
    spec = boards.BOARDS.get(args.board or "")
    if spec is not None and spec.family == args.target and args.device is None:
        args.device = spec.device  # the board's part, unless --device names its size
    args.device = args.device or (defaults.get(args.target) if args.pnr else None)
    if args.pnr and args.target in families and args.device not in families[args.target]:
        known = ", ".join(families[args.target])
        part = f"{'an' if args.target[0] in 'aeiou' else 'a'} {args.target} part"
        raise ParameterError(f"device {args.device} is not {part}; choose {known}", "device")
    if args.pnr and args.target not in families:
        raise ParameterError("pnr places and routes for ice40, ecp5 and gowin only (--target)", "pnr")
    link = _uart(args)
    folder = claim_folder(args.out or f"synth-{args.target}", "out", {"the graph": args.graph}) if args.pnr else None
    if folder is not None:
        folder.check(PNR_FILES)
    graph = load_any(args.graph)
    if args.simplify:
        graph = pipeline.simplify(graph)
    if args.pnr:
        if args.input not in ("auto", "u8"):
            why = "the streaming top takes raw features one byte per clock"
            raise ParameterError(f"input {args.input}: {why}", "input")
        assert folder is not None
        return _pnr(graph, args, folder, link)
    raw = resolve_input(graph, args.input) or False
    start = time.perf_counter()
    say = lambda line: print(f"  {line}", flush=True)  # noqa: E731
    print(f"tools: {toolchain.find('yosys').describe()} (--toolchain {toolchain.current()})")
    if args.device is not None:  # the plain circuit on a part: its I/O bits need pins before any synthesis
        try:
            fpga.check_io(fpga.plain_io_bits(graph, raw, args.pipeline), args.device)
        except fpga.DoesNotFit as exc:
            print(f"does not fit: {exc}")
            return EXIT_CHECK_FAILED
    if graph.encoder is not None:
        fmt = encoder_format(graph, raw)
        design = f"the whole design takes {'them' if raw else 'the encoded bits'}"
        print(f"raw features: {fmt.name} ({fmt.describe()}) into the encoder; {design} (--input)")
    parts: list = []
    if args.gate_level:
        print(f"gate-level Verilog through yosys' own mapping ({args.target}):")
        parts = synth_report(
            graph, target=args.target, pipeline=args.pipeline, timeout=args.timeout, progress=say, raw_input=raw
        )
    k = 4 if args.target in ("ice40", "ecp5", "gowin") else 6
    print(f"LUT-native: our {k}-input LUT mapping of the lowered design (compressor trees, comparator tree):")
    ours = hardware.part_sizes(graph, k, raw)
    left = args.timeout - (time.perf_counter() - start)
    whole, mapped = fpga.synth_lut_native(graph, args.target, args.pipeline, left, raw, progress=say)
    print(f"yosys and our mapping of {graph.n_gates} gates ({time.perf_counter() - start:.1f} s); no latches, no loops")
    print(f"  {'part':36s} {'LUTs':>8s} {'FFs':>8s}  how")
    for part in parts:
        _print(part.name, part.luts, part.ffs, part.script)
    for name, luts in ours.items():
        how = "two LUTs of <= 5 shared pins per site, as Vivado counts" if name == hardware.DUAL_OUTPUT else ""
        _print(f"{name}, LUT-native", luts, "-", how or f"lgn simplify --lut {k}")
    _print(whole.name, whole.luts, whole.ffs, f"yosys on our netlist: {whole.script}")
    if parts:
        gates = next(p.luts for p in parts if p.name.startswith("whole design"))
        best = "LUT-native" if whole.luts < gates else "gate-level"
        smaller = f"{min(whole.luts, gates)} LUTs; the other {max(whole.luts, gates)}"
        print(f"smaller: {best} ({smaller}); our mapping: {mapped}")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("synth", help="LUTs and FFs by part (yosys and our LUT mapping); iCE40 place and route")
    p.add_argument("graph")
    p.add_argument("--target", choices=["generic", "ice40", "ecp5", "gowin", "xilinx"], default="generic")
    p.add_argument("--pipeline", type=integer(1))
    p.add_argument("--no-simplify", dest="simplify", action="store_false")
    p.add_argument(
        "--timeout",
        type=number(0.0, 1e7, low_open=True),
        default=1800.0,
        help="seconds for all parts together (default: 1800)",
    )
    p.add_argument(
        "--input", default="auto", metavar="auto|bits|u8|int:W|fixed:W.F",
        help="the design's input, as lgn compile --input (auto: bits for a table model, else u8 when every "
        "threshold is in 0..255); the encoder part takes the raw format (auto: u8, or for thresholds outside "
        "0..255 the narrowest format that holds them); --pnr takes bytes",
    )  # fmt: skip
    p.add_argument(
        "--pnr", action="store_true", help="iCE40, ECP5, Gowin: place and route the streaming top, a bitstream"
    )
    p.add_argument(
        "--device", choices=[*sorted(fpga.DEVICES), *ECP5_DEVICES, *GOWIN_DEVICES],
        help="with --pnr: the part (default: up5k; ecp5: 25k; gowin: GW1NR-9, the Tang Nano 9K's; GW2AR-18, the "
        "20K's); without: refuse before synthesis a plain "
        "circuit whose I/O bits exceed the part's package pins",
    )  # fmt: skip
    p.add_argument(
        "--toolchain", choices=toolchain.CHOICES, default=toolchain.current(),
        help="yosys and nextpnr from the system (apt), from YoWASP (pip install 'lgn[fpga]'), or auto: the "
        "system's where on PATH, else YoWASP's (default: auto, or $LGN_TOOLCHAIN)",
    )  # fmt: skip
    p.add_argument(
        "--no-gate-level", dest="gate_level", action="store_false",
        help="skip yosys' own mapping of the gate-level Verilog (the slow half): only our LUT-native netlist",
    )  # fmt: skip
    p.add_argument("--out", help="with --pnr: the folder for the bitstream (default: synth-TARGET)")
    p.add_argument(
        "--router", choices=ecp5.ROUTERS, default="router2", help="with --pnr on ecp5, gowin: nextpnr's router"
    )
    p.add_argument("--seed", type=integer(0, 2**31 - 1), default=1, help="with --pnr: nextpnr's placement seed")
    p.add_argument("--freq", type=number(0.0, 1e4, low_open=True), help="with --pnr: the target clock in MHz")
    p.add_argument(
        "--core", choices=fpga.CORES, default="auto",
        help="with --pnr: our LUT4 netlist (luts), the gate-level Verilog mapped by yosys (gates), the smaller "
        "of the two (auto), or the LUT engine (engine, up5k and ecp5: the network as a program in SPRAM or "
        "DP16KD block RAM, one LUT at a time)",
    )  # fmt: skip
    p.add_argument(
        "--uart", type=integer(1, 100_000_000), metavar="BAUD",
        help="with --pnr: the UART top (rx, tx, clk: a sample's raw feature bytes in, the class byte out; lgn "
        "board-run talks to it) at this baud rate instead of the parallel streaming pins",
    )  # fmt: skip
    p.add_argument(
        "--board", choices=list(boards.BOARDS),
        help="with --uart: the board's clock and serial pins (icebreaker: ice40 up5k; ulx3s, orangecrab: ecp5; "
        "tangnano9k: gowin GW1NR-9)",
    )  # fmt: skip
    p.add_argument(
        "--clock-hz", type=integer(1, 10**10), help="with --uart: the clock on the clk pin (default: the board's)"
    )
    p.set_defaults(func=cmd_synth)
