"""``lgn synth``: yosys synthesis of the emitted Verilog, LUTs and flip-flops part by part, each reported as it
finishes, all within a time limit."""

from __future__ import annotations

import time

from lgn.compiler import pipeline
from lgn.compiler.errors import ParameterError
from lgn.compiler.hdl_tools import synth_report

from .common import EXIT_OK, load_any


def cmd_synth(args) -> int:
    if not args.timeout > 0:
        raise ParameterError(f"timeout must be positive, got {args.timeout}", "timeout")
    graph = load_any(args.graph)
    if args.simplify:
        graph = pipeline.simplify(graph)
    start = time.perf_counter()
    parts = synth_report(
        graph,
        target=args.target,
        pipeline=args.pipeline,
        timeout=args.timeout,
        progress=lambda line: print(f"  {line}", flush=True),
    )
    print(
        f"yosys {args.target} synthesis of {graph.n_gates} gates ({time.perf_counter() - start:.1f} s); "
        "no latches, no combinational loops"
    )
    print(f"  {'part':24s} {'LUTs':>8s} {'FFs':>8s}  script")
    for part in parts:
        print(f"  {part.name:24s} {part.luts:8d} {part.ffs:8d}  {part.script}")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("synth", help="synthesize the Verilog with yosys: LUTs and FFs by part")
    p.add_argument("graph")
    p.add_argument("--target", choices=["generic", "ice40", "xilinx"], default="generic")
    p.add_argument("--pipeline", type=int)
    p.add_argument("--no-simplify", dest="simplify", action="store_false")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds for all parts together (default: 1800)")
    p.set_defaults(func=cmd_synth)
