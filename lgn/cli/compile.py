"""``lgn compile``: a standalone C library or a Verilog module from a graph or a trained model."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from lgn.compiler import c_build, c_emit, fpga, hardware, lut_verilog, pipeline, verilog_emit
from lgn.compiler.errors import ParameterError

from .common import EXIT_OK, load_any, write_files


def _luts(graph, args, out: Path) -> int:
    """LUT-native Verilog (our mapping, the head lowered to LUTs), or the iCE40 streaming top around it."""
    k = 4 if args.cells == "ice40" else 6
    raw = {"auto": None, "bits": False, "u8": True}[args.input]
    if args.stream:
        if args.cells != "ice40":
            raise ParameterError("stream writes the iCE40 streaming top: use --cells ice40", "stream")
        files = fpga.stream_files(graph, fpga.make_core(graph, "luts", args.pipeline))
        files["lgn_top.pcf"] = fpga.constraints(fpga.DEVICES[args.device], fpga.core_design(graph).class_width)
        write_files(out, files)
        print(f"wrote {', '.join(sorted(files))} to {out} (streaming top, {args.device} pins)")
        return EXIT_OK
    design = hardware.lower(graph, k, raw_input=raw, with_scores=args.ports == "all")
    design = dataclasses.replace(design, netlist=pipeline.simplify(design.netlist, lut=k))
    emitted = lut_verilog.emit_design(design, args.module, args.cells, args.pipeline)
    write_files(out, emitted.files)
    latency = emitted.geometry.latency(args.pipeline)
    timing = f"pipelined, latency {latency} cycles" if args.pipeline else "combinational"
    print(
        f"wrote {', '.join(sorted(emitted.files))} to {out} ({design.netlist.n_gates} {args.cells} LUTs of at most "
        f"{k} inputs, {timing})"
    )
    return EXIT_OK


def cmd_compile(args) -> int:
    graph = load_any(args.graph)
    if args.simplify:
        graph = pipeline.simplify(graph)
    out = Path(args.out)
    if args.target == "verilog" and args.style == "luts":
        return _luts(graph, args, out)
    if args.target == "verilog":
        raw = {"auto": None, "bits": False, "u8": True}[args.input]
        emitted = verilog_emit.package_files(graph, module=args.module, pipeline=args.pipeline, raw_input=raw)
        write_files(out, emitted.files)
        latency = emitted.geometry.latency(args.pipeline)
        timing = f"pipelined, latency {latency} cycles" if args.pipeline else "combinational"
        print(f"wrote {', '.join(sorted(emitted.files))} to {args.out} ({graph.n_gates} gates, {timing})")
        return EXIT_OK
    isa = c_build.resolve_isa(args.isa)
    start = time.perf_counter()
    emitted = c_emit.library_files(graph, isa=isa, shape=args.shape, prefix=args.prefix)
    write_files(out, emitted.files)
    shape = c_emit.choose_shape(graph, args.shape)
    print(
        f"wrote {len(emitted.files)} files to {out} ({isa}, {shape} shape, {graph.n_gates} gates) in "
        f"{time.perf_counter() - start:.2f} s: {', '.join(sorted(emitted.files))}"
    )
    print(f"build: make -C {out}")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("compile", help="compile a graph to a standalone library")
    p.add_argument("graph")
    p.add_argument("--target", choices=["c", "verilog"], default="c")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--isa", default="native", help="native, avx512, avx2 or portable (plain C99)")
    p.add_argument("--shape", default="auto", choices=["auto", "straight", "table"])
    p.add_argument("--prefix", default="lgn_net", help="C identifier prefix of the library's names")
    p.add_argument("--no-simplify", dest="simplify", action="store_false", help="compile the graph as it is")
    p.add_argument("--module", default="lgn_net", help="Verilog module name")
    p.add_argument("--pipeline", type=int, help="Verilog: a register stage every N logic levels")
    p.add_argument(
        "--input",
        choices=["auto", "bits", "u8"],
        default="auto",
        help="Verilog input: encoded bits, or raw uint8 features through the encoder (auto: u8 "
        "when the graph has an encoder)",
    )
    p.add_argument(
        "--style", choices=["gates", "luts"], default="gates",
        help="Verilog: gate-level (synthesis maps it), or LUT-native (our LUT mapping of the whole design, the "
        "GroupSum compressor trees and the argmax comparator tree included)",
    )  # fmt: skip
    p.add_argument("--cells", choices=["generic", "ice40", "xilinx"], default="generic",
                   help="with --style luts: plain tables, SB_LUT4 or LUT6 cells")  # fmt: skip
    p.add_argument("--ports", choices=["all", "class"], default="all", help="with --style luts: scores and class, "
                   "or class_out only")  # fmt: skip
    p.add_argument("--stream", action="store_true", help="with --style luts --cells ice40: the streaming top "
                   "(a byte per cycle in, the class out) and a pin constraint file")  # fmt: skip
    p.add_argument("--device", choices=sorted(fpga.DEVICES), default="up5k", help="with --stream: the pins' package")
    p.set_defaults(func=cmd_compile)
