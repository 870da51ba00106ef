"""``lgn compile``: a standalone C library or a Verilog module from a graph or a trained model."""

from __future__ import annotations

import time
from pathlib import Path

from lgn.compiler import c_build, c_emit, pipeline, verilog_emit

from .common import EXIT_OK, load_any, write_files


def cmd_compile(args) -> int:
    graph = load_any(args.graph)
    if args.simplify:
        graph = pipeline.simplify(graph)
    out = Path(args.out)
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
    p.set_defaults(func=cmd_compile)
