"""``lgn compile``: a standalone C library or a Verilog module from a graph or a trained model."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from lgn.compiler import c_build, c_emit, c_tune, evaluate, fpga, hardware, hdl_sim, lut_verilog, pipeline, verilog_emit
from lgn.compiler.errors import LgnError, ParameterError
from lgn.compiler.ir import GateGraph
from lgn.compiler.names import check_c_prefix
from lgn.compiler.outputs import OutputFolder, claim_folder
from lgn.compiler.raw_input import U8, RawFormat, resolve_input
from lgn.compiler.verify import Comparison, test_vectors, verify_c

from .common import EXIT_CHECK_FAILED, EXIT_OK, integer, load_any

VERIFY_VECTORS = 2_000  # structured vectors, then random ones: what `--verify` simulates


def _vectors(graph: GateGraph, fmt: RawFormat | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Input bits (and the raw features they encode, for a design that takes them in format ``fmt``) for
    ``--verify``: bytes at random, or words of the format at random and at every threshold's edges."""
    if fmt is None:
        return test_vectors(graph.n_inputs, VERIFY_VECTORS, seed=0)[0], None
    assert graph.encoder is not None
    if fmt == U8:
        raw = np.random.default_rng(0).integers(0, 256, (VERIFY_VECTORS, graph.encoder.n_features)).astype(np.uint8)
    else:
        raw = edge_values(graph, fmt, VERIFY_VECTORS, seed=0)
    return evaluate.encode(graph, raw), raw


def edge_values(graph: GateGraph, fmt: RawFormat, n: int, seed: int = 0) -> np.ndarray:
    """``float64[n, n_features]`` values of format ``fmt``: each feature's word at random, and, row by row, at
    one of its thresholds' edges (the word of the threshold and the one above it) or at the format's ends."""
    assert graph.encoder is not None
    e, rng = graph.encoder, np.random.default_rng(seed)
    words = rng.integers(fmt.lo, fmt.hi, (n, e.n_features), endpoint=True)
    edges = [[fmt.lo, fmt.hi] for _ in range(e.n_features)]
    for f, t in zip(e.feature.tolist(), fmt.threshold_words(e.threshold).tolist()):
        edges[f] += [w for w in (t, t + 1) if fmt.lo <= w <= fmt.hi]
    for f, candidates in enumerate(edges):
        pick = rng.random(n) < 0.5
        words[pick, f] = rng.choice(candidates, int(pick.sum()))
    return words / float(1 << fmt.frac)


def _check_stream_input(graph: GateGraph, spec: str) -> None:
    """``--stream`` takes raw features one byte per clock: only ``--input`` auto or u8, on a model whose
    thresholds bytes can carry (:func:`lgn.compiler.fpga.check_streamable`)."""
    if spec not in ("auto", "u8"):
        raise ParameterError(f"input {spec}: the streaming top takes raw features one byte per clock (u8)", "input")
    fpga.check_streamable(graph)


def _report(result: Comparison | hdl_sim.SimResult, what: str) -> int:
    """Print ``what``'s verdict against the graph as given; the exit code of ``--verify``."""
    print(f"verify: {what} vs the evaluator on the graph as given: {result.summary()}")
    first = result.first if isinstance(result, Comparison) else result.comparison.first
    if first is not None:
        print(first.describe())
    return EXIT_OK if result.ok else EXIT_CHECK_FAILED


def _verify_c(given: GateGraph, shipped: GateGraph, isa: str, shape: str) -> int:
    """The written library's code (same graph, ISA and shape, built under the cffi names) against the evaluator."""
    bits, exhaustive = test_vectors(given.n_inputs, VERIFY_VECTORS, seed=0)
    net = c_build.compile_c(shipped, isa=isa, shape=shape) if isa in c_build.host_isas() else None
    if net is None:
        raise LgnError(f"--verify cannot run {isa} code on this machine: verify with --isa auto")
    return _report(verify_c(given, net, bits, exhaustive), f"C ({isa}, {shape})")


def _c_choice(graph: GateGraph, isa: str, shape: str) -> tuple[str, str]:
    """(ISA, code shape): ``--isa auto`` measures the ISAs, and with ``--shape auto`` the shapes, together on
    this machine (lgn.compiler.c_tune), saying what it chose and what the others gave."""
    if isa != "auto":
        return c_build.resolve_isa(isa), c_emit.choose_shape(graph, shape)
    try:
        choice = c_tune.fastest(graph, "auto", shape)
    except c_build.BuildError as exc:  # emitting source needs no compiler: fall back to the widest ISA
        native = c_build.resolve_isa("native")
        print(f"isa auto: cannot measure here ({exc}); writing {native}, the widest this machine runs")
        return native, c_emit.choose_shape(graph, shape)
    if choice.rates:
        print(f"isa auto: {choice.said()}")
    return choice.isa, choice.shape


def _luts(given: GateGraph, graph: GateGraph, args, out: OutputFolder) -> int:
    """LUT-native Verilog (our mapping, the head lowered to LUTs), or the iCE40 streaming top around it."""
    k = 4 if args.cells == "ice40" else 6
    if args.stream:
        if args.verify:
            raise ParameterError("verify the streaming top with lgn verify --backend netlist", "verify", "stream")
        if args.cells != "ice40":
            raise ParameterError("stream writes the iCE40 streaming top: use --cells ice40", "stream")
        _check_stream_input(graph, args.input)
        files = fpga.stream_files(graph, fpga.make_core(graph, "luts", args.pipeline))
        files["lgn_top.pcf"] = fpga.constraints(fpga.DEVICES[args.device], fpga.core_design(graph).class_width)
        out.write(files)
        print(f"wrote {', '.join(sorted(files))} to {out.path} (streaming top, {args.device} pins)")
        return EXIT_OK
    raw = resolve_input(graph, args.input)
    design = hardware.lower(graph, k, raw_input=raw or False, with_scores=args.ports == "all")
    design = dataclasses.replace(design, netlist=pipeline.simplify(design.netlist, lut=k))
    emitted = lut_verilog.emit_design(design, args.module, args.cells, args.pipeline)
    out.write(emitted.files)
    latency = emitted.geometry.latency(args.pipeline)
    timing = f"pipelined, latency {latency} cycles" if args.pipeline else "combinational"
    print(
        f"wrote {', '.join(sorted(emitted.files))} to {out.path} ({design.netlist.n_gates} {args.cells} LUTs of at "
        f"most {k} inputs, {timing})"
    )
    if not args.verify:
        return EXIT_OK
    if args.cells == "xilinx":
        raise ParameterError("verify cannot simulate xilinx cells (no free models): use --cells generic", "verify")
    bits, features = _vectors(given, design.raw)
    result = hdl_sim.simulate_design(
        given, design, bits, features, args.cells, pipeline=args.pipeline, module=args.module
    )
    return _report(result, f"LUT-native Verilog ({args.cells} cells, Icarus)")


def cmd_compile(args) -> int:
    verilog_emit.check_module_name(args.module)
    if args.target == "c":
        check_c_prefix(args.prefix)  # before any work: --isa auto builds and times libraries
    if args.lut is not None and (args.target != "c" or not args.simplify):
        raise ParameterError("--lut merges gates for the C target: drop --no-simplify (Verilog: --style luts)", "lut")
    out = claim_folder(args.out, "out", {"the graph": args.graph})
    given = load_any(args.graph)
    graph = pipeline.simplify(given, lut=args.lut) if args.simplify else given
    if args.target == "verilog" and args.style == "luts":
        return _luts(given, graph, args, out)
    if args.target == "verilog":
        raw = resolve_input(graph, args.input)
        emitted = verilog_emit.package_files(graph, module=args.module, pipeline=args.pipeline, raw_input=raw or False)
        out.write(emitted.files)
        latency = emitted.geometry.latency(args.pipeline)
        timing = f"pipelined, latency {latency} cycles" if args.pipeline else "combinational"
        port = f"raw features as {raw.name}" if raw is not None else "input bits"
        print(f"wrote {', '.join(sorted(emitted.files))} to {args.out} ({graph.n_gates} gates, {port}, {timing})")
        if not args.verify:
            return EXIT_OK
        bits, features = _vectors(given, raw)
        result = hdl_sim.simulate(
            graph, bits, pipeline=args.pipeline, module=args.module, raw=features, reference=given, raw_format=raw
        )
        return _report(result, "Verilog (Icarus)")
    isa, shape = _c_choice(graph, args.isa, args.shape)
    start = time.perf_counter()
    emitted = c_emit.library_files(graph, isa=isa, shape=shape, prefix=args.prefix)
    out.write(emitted.files)
    print(
        f"wrote {len(emitted.files)} files to {out.path} ({isa}, {shape} shape, {graph.n_gates} gates) in "
        f"{time.perf_counter() - start:.2f} s: {', '.join(sorted(emitted.files))}"
    )
    print(f"build: make -C {out.path}")
    return _verify_c(given, graph, isa, shape) if args.verify else EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("compile", help="compile a graph to a standalone library")
    p.add_argument("graph")
    p.add_argument("--target", choices=["c", "verilog"], default="c")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--isa", default="auto",
        help="auto (the ISA that runs this model fastest here, measured once and cached), native (the widest "
        "this machine runs), avx512, avx2 or portable (plain C99)",
    )  # fmt: skip
    p.add_argument("--shape", default="auto", choices=["auto", "straight", "table"])
    p.add_argument("--prefix", default="lgn_net", help="C identifier prefix of the library's names")
    p.add_argument(
        "--lut", type=integer(3, 6),
        help="C: merge the gates into LUTs of at most K inputs first (3-6); in straight-line code a LUT is a few "
        "ternary-logic operations; measure with lgn bench (on mnist-small it was not faster: docs/benchmarks.md)",
    )  # fmt: skip
    p.add_argument("--no-simplify", dest="simplify", action="store_false", help="compile the graph as it is")
    p.add_argument("--module", default="lgn_net", help="Verilog module name")
    p.add_argument("--pipeline", type=integer(1), help="Verilog: a register stage every N logic levels")
    p.add_argument(
        "--input", default="auto", metavar="auto|bits|u8|int:W|fixed:W.F",
        help="Verilog input: the encoded bits, or raw features through the encoder as bytes (u8), signed W-bit "
        "integers (int:W) or signed W-bit fixed point with F fractional bits (fixed:W.F); auto: bits for a table "
        "model, else u8 when every threshold is in 0..255 (u8 refuses a model whose thresholds are not)",
    )  # fmt: skip
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
    p.add_argument(
        "--verify", action="store_true",
        help=f"then simulate what was written ({VERIFY_VECTORS} vectors; C: built and run, Verilog: Icarus) "
        "against the evaluator on the graph as given; exit 1 on a mismatch",
    )  # fmt: skip
    p.set_defaults(func=cmd_compile)
