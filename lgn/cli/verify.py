"""``lgn verify``: hold an implementation against the reference evaluator, bit for bit.

- ``lgn verify MODEL --dataset D``: the discretized torch model against its IR on a test split;
- ``lgn verify G --against G2``: the evaluator on G2 against G;
- ``lgn verify G --backend c``: every runnable ISA and code shape of the C library;
- ``lgn verify G --backend verilog``: the Verilog under a simulator;
- ``lgn verify G --backend netlist --target ice40|ecp5|gowin``: the synthesized netlist of the streaming top, as
  ``lgn synth --pnr`` synthesizes it for that family, on yosys' cell models (:mod:`.verify_netlist`);
- ``lgn verify MODEL --data FILE [--backend evaluator|c|verilog]``: the rows of a table file through the
  backend (and, for a checkpoint, the discretized torch model) against the evaluator.

``--formal`` has one meaning: prove with ABC that the implementation's gate network computes the reference
graph's output bits (G2 against G; the emitted Verilog against G). Every verify prints
``N vectors, M mismatches`` last and exits 1 unless M is 0.
"""

from __future__ import annotations

import time

import numpy as np

from lgn.compiler import c_build, c_emit, c_tune, evaluate, formal, formats, hdl_sim, netlist_sim, pipeline, toolchain
from lgn.compiler.errors import LgnError, ParameterError
from lgn.compiler.ir import GateGraph
from lgn.compiler.verify import Comparison, test_vectors, verify_c, verify_c_features, verify_graphs

from .common import EXIT_CHECK_FAILED, EXIT_OK, integer, load_any
from .verify_netlist import check_options, verify_netlist

VERIFY_BOTH_SHAPES_MAX_GATES = 10_000


def _report(comparison: Comparison, extra_mismatches: int = 0) -> int:
    """Print the first mismatch and ``N vectors, M mismatches`` (``extra_mismatches``: failures that are
    not a vector's, such as a wrong latency); the exit code."""
    if comparison.first is not None:
        print(comparison.first.describe())
    mismatches = comparison.mismatches + extra_mismatches
    print(f"{comparison.vectors} vectors, {mismatches} mismatches")
    return EXIT_OK if mismatches == 0 else EXIT_CHECK_FAILED


def _dataset(graph: GateGraph, args) -> tuple[np.ndarray, np.ndarray]:
    """Raw features and input bits of the test split (through the graph's encoder)."""
    from lgn.training.data import encoded_test_split

    if graph.encoder is None:
        raise LgnError("--dataset needs a graph with encoder thresholds (exported from a trained model)")
    raw, bits, _ = encoded_test_split(graph.encoder, args.dataset, args.data_dir)
    return raw, bits


def _vectors(graph: GateGraph, args) -> tuple[np.ndarray | None, np.ndarray, bool, str]:
    """(raw features or None, input bits, exhaustive, how they were chosen), limited by ``--limit``."""
    if args.dataset:
        raw, bits = _dataset(graph, args)
        exhaustive, how = False, f"{args.dataset} test split"
    else:
        raw = None
        bits, exhaustive = test_vectors(graph.n_inputs, args.vectors, args.seed)
        how = "exhaustive" if exhaustive else f"structured + {args.vectors} random, seed {args.seed}"
    if args.limit is not None:
        bits = bits[: args.limit]
        raw = raw[: args.limit] if raw is not None else None
    return raw, bits, exhaustive, how


def _verify_model(args) -> int:
    from lgn.training.checkpoint import load_checkpoint
    from lgn.training.data import encoded_test_split
    from lgn.training.export import to_graph, verify_model

    model, encoder, info = load_checkpoint(args.graph)
    graph = to_graph(model, encoder, info["names"])
    _, bits, labels = encoded_test_split(encoder, args.dataset, args.data_dir)
    start = time.perf_counter()
    comparison = verify_model(model, graph, bits)
    assert comparison.got is not None and comparison.expected is not None
    print(
        f"discretized torch accuracy {np.mean(comparison.got.classes == labels):.4f}, IR evaluator accuracy "
        f"{np.mean(comparison.expected.classes == labels):.4f} ({args.dataset} test split, "
        f"{time.perf_counter() - start:.1f} s)"
    )
    return _report(comparison)


def _shipped(graph: GateGraph, args) -> GateGraph:
    """The graph that ``lgn compile`` and ``lgn synth`` emit: simplified, unless ``--no-simplify``. The backends
    build it and are held against the evaluator on the graph as given, so one check covers the passes too."""
    if not args.simplify:
        return graph
    shipped = pipeline.simplify(graph)
    print(
        f"checking what lgn compile emits (the simplified graph, {shipped.n_gates} of {graph.n_gates} gates) "
        "against the graph as given"
    )
    return shipped


def _verify_c(graph: GateGraph, args) -> int:
    shipped = _shipped(graph, args)
    raw, bits, exhaustive, how = _vectors(graph, args)
    return _report(_c_comparison(graph, shipped, args, raw, bits, exhaustive, how))


def _c_comparison(
    graph: GateGraph, shipped: GateGraph, args, raw: np.ndarray | None, bits: np.ndarray, exhaustive: bool, how: str
) -> Comparison:
    """``shipped`` built as C (each ISA of ``--isa``, both code shapes where small) against the evaluator on
    ``graph``: from input bits, and from raw features where they are given as uint8 or float32."""
    isas = c_build.host_isas() if args.isa == "all" else [c_build.choose_isa(shipped, args.isa)]
    # both code shapes where gcc takes seconds for the straight one (about 1.2 ms a gate), the shipped one past that
    both = shipped.n_gates <= VERIFY_BOTH_SHAPES_MAX_GATES
    if both:
        shapes = ["table", "straight"]
    else:  # the shape lgn compile ships: with --isa auto, measured with the ISA (cached: no second measurement)
        shapes = [c_tune.fastest(shipped).shape if args.isa == "auto" else c_emit.choose_shape(shipped, "auto")]
    total = Comparison(0, np.zeros(0, dtype=np.int64), exhaustive)
    for isa in isas:
        for shape in shapes:
            start = time.perf_counter()
            net = c_build.compile_c(shipped, isa=isa, shape=shape)
            report = verify_c(graph, net, bits, exhaustive)
            print(f"C {isa}/{shape} vs evaluator ({how}): {report.summary()} in {time.perf_counter() - start:.2f} s")
            total += report
            if raw is not None and raw.dtype in (np.uint8, np.float32):
                # The raw-feature entry points too: the thresholds applied in C.
                from_raw = verify_c_features(graph, net, raw)
                print(f"C {isa}/{shape} from raw {raw.dtype}: {from_raw.summary()}")
                total += from_raw
    return total


def _prove(reference: GateGraph, other: GateGraph, what: str, verilog: bool = False) -> bool:
    start = time.perf_counter()
    proven = formal.prove_verilog(reference, other) if verilog else formal.prove_graphs(reference, other)
    verdict = "equivalent" if proven else "NOT equivalent"
    print(f"formal (ABC cec), {what}: {verdict} in {time.perf_counter() - start:.1f} s")
    return proven


def _verify_verilog(graph: GateGraph, args) -> int:
    shipped = _shipped(graph, args)
    what = f"the Verilog's gate network vs the graph ({graph.n_gates} gates)"
    if args.formal and not _prove(graph, shipped, what, verilog=True):
        return EXIT_CHECK_FAILED
    raw, bits, _, how = _vectors(graph, args)
    result = _simulate(graph, shipped, args, raw, bits, how)
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_CHECK_FAILED


def _simulate(
    graph: GateGraph, shipped: GateGraph, args, raw: np.ndarray | None, bits: np.ndarray, how: str
) -> hdl_sim.SimResult:
    """The Verilog of ``shipped`` under ``--sim`` against the evaluator on ``graph``: fed the raw features
    when they are bytes, else the encoded input bits (tabular features: the Verilog takes the bits)."""
    if raw is not None and raw.dtype != np.uint8:
        raw = None
    mode = "bubbles" if args.bubbles else "back-to-back"
    result = hdl_sim.simulate(
        shipped, bits, sim=args.sim, pipeline=args.pipeline, raw=raw, mode=mode, seed=args.seed, reference=graph
    )
    timing = f", latency {result.latency} cycles" if args.pipeline else ""
    print(
        f"Verilog on {args.sim} vs evaluator ({how}{timing}): build {result.build_seconds:.1f} s, "
        f"simulation {result.sim_seconds:.1f} s ({result.vectors / max(result.sim_seconds, 1e-9):.0f} vectors/s)"
    )
    if not result.latency_ok:
        print(f"latency: outputs came after {result.latency} cycles, the design documents a different latency")
    return result


def _verify_against(graph: GateGraph, args) -> int:
    other = load_any(args.against)
    start = time.perf_counter()
    bits, exhaustive = test_vectors(graph.n_inputs, args.vectors, args.seed)
    report = verify_graphs(graph, other, bits, exhaustive)
    how = "exhaustive" if exhaustive else f"structured + {args.vectors} random, seed {args.seed}"
    print(f"evaluator vs evaluator ({how}) in {time.perf_counter() - start:.2f} s")
    proven = _prove(graph, other, "the second graph vs the first") if args.formal else True
    code = _report(report)
    return code if proven else EXIT_CHECK_FAILED


def _verify_graph_on_dataset(graph: GateGraph, args) -> int:
    """A graph file (a shipped model): the evaluator's accuracy on the test split through the graph's own
    encoder, from raw features; then this machine's C library against the evaluator on every sample."""
    from lgn.compiler import evaluate
    from lgn.training.data import encoded_test_split

    if graph.encoder is None:
        raise LgnError("--dataset needs a graph with encoder thresholds (exported from a trained model)")
    _, bits, labels = encoded_test_split(graph.encoder, args.dataset, args.data_dir)
    accuracy = float(np.mean(evaluate.predict(graph, bits) == labels))
    print(f"IR evaluator accuracy {accuracy:.4f} ({args.dataset} test split, {len(labels)} samples, raw features)")
    args.isa = "auto"
    return _verify_c(graph, args)


DATA_BACKENDS = ("evaluator", "c", "verilog")


def _model_and_graph(path: str):
    """(the discretized torch model or None, the graph): a checkpoint gives both, a graph file the graph."""
    if not formats.looks_like_checkpoint(path):
        return None, load_any(path)
    from lgn.training.checkpoint import load_checkpoint
    from lgn.training.export import to_graph

    model, encoder, info = load_checkpoint(path)
    return model, to_graph(model, encoder, info["names"])


def _verify_data(args) -> int:
    """The rows of a table file (``--data``), read as ``lgn predict`` reads them: the evaluator's accuracy
    where the file has the label column; a checkpoint's discretized torch model against its IR; then the
    backend against the evaluator on the graph as given (``evaluator``: the simplified graph that ``lgn
    compile`` emits, under the evaluator; ``c``: the C library from input bits and from the float32
    features; ``verilog``: the simulated Verilog, fed the encoded bits), every score of every row."""
    from .predict import read_rows

    backend = args.backend or "evaluator"
    if backend not in DATA_BACKENDS or args.dataset or args.against:
        raise LgnError("--data goes with --backend evaluator, c or verilog, and without --dataset or --against")
    if args.formal and backend != "verilog":
        raise LgnError("--formal with --data applies to --backend verilog")
    model, graph = _model_and_graph(args.graph)
    raw, truth = read_rows(graph, args.data, args.labels)
    shipped = _shipped(graph, args)
    if args.limit is not None:
        raw, truth = raw[: args.limit], None if truth is None else truth[: args.limit]
    bits = evaluate.encode(graph, raw)
    how = f"{len(raw)} rows of {args.data}"
    if truth is not None:
        accuracy = float(np.mean(evaluate.predict(graph, bits) == truth))
        print(f"IR evaluator accuracy {accuracy:.4f} on the {len(truth)} labelled rows of {args.data}")
    total, extra = Comparison(0, np.zeros(0, dtype=np.int64)), 0
    if model is not None:
        from lgn.training.export import verify_model

        start = time.perf_counter()
        versus_torch = verify_model(model, graph, bits)
        assert versus_torch.got is not None
        torch_accuracy = "" if truth is None else f", its accuracy {np.mean(versus_torch.got.classes == truth):.4f}"
        print(
            f"discretized torch vs IR evaluator ({how}): {versus_torch.summary()}{torch_accuracy} "
            f"in {time.perf_counter() - start:.2f} s"
        )
        total += versus_torch
    if backend == "evaluator":
        shipped_answers = verify_graphs(graph, shipped, bits)
        print(f"evaluator on the graph lgn compile emits vs the graph as given ({how}): {shipped_answers.summary()}")
        total += shipped_answers
    elif backend == "c":
        total += _c_comparison(graph, shipped, args, raw, bits, False, how)
    else:
        what = f"the Verilog's gate network vs the graph ({graph.n_gates} gates)"
        if args.formal and not _prove(graph, shipped, what, verilog=True):
            extra += 1
        result = _simulate(graph, shipped, args, raw, bits, how)
        total += result.comparison
        extra += result.mismatches - result.comparison.mismatches  # a wrong latency
    return _report(total, extra)


def cmd_verify(args) -> int:
    if args.sim is None:  # a synthesized netlist is thousands of cells: Icarus takes minutes where Verilator seconds
        args.sim = "verilator" if args.backend == "netlist" else "icarus"
    if args.vectors < 0:
        raise ParameterError(f"vectors must not be negative, got {args.vectors}", "vectors")
    if args.data is not None:
        return _verify_data(args)
    if args.labels is not None:
        raise LgnError("--labels goes with --data (the labels of an .npy table)")
    if args.backend == "evaluator":
        raise LgnError("--backend evaluator checks the rows of a table: give --data FILE")
    if args.formal and args.backend == "c":
        raise ParameterError("formal applies to --against G2 and --backend verilog, not to the C library", "formal")
    if args.dataset and args.backend is None and args.against is None:
        if not formats.looks_like_checkpoint(args.graph):
            return _verify_graph_on_dataset(load_any(args.graph), args)
        return _verify_model(args)
    graph = load_any(args.graph)
    if args.backend == "c":
        return _verify_c(graph, args)
    if args.backend == "verilog":
        return _verify_verilog(graph, args)
    if args.backend == "netlist":
        check_options(args)  # a core or part the family does not take: refused before the graph is simplified
        return verify_netlist(graph, _shipped(graph, args), args)
    if args.against is None:
        raise LgnError("nothing to verify against: give --against G2.npz or --backend c")
    return _verify_against(graph, args)


def register(sub) -> None:
    p = sub.add_parser("verify", help="check that two implementations agree bit for bit")
    p.add_argument("graph")
    p.add_argument("--against", help="a second graph to compare with the first")
    p.add_argument(
        "--vectors", type=integer(0, 10**9), default=10_000, help="random vectors (beyond the structured ones)"
    )
    p.add_argument("--seed", type=integer(), default=0)
    p.add_argument("--formal", action="store_true", help="also prove the implementation equal to the graph (ABC)")
    p.add_argument(
        "--backend", choices=["evaluator", "c", "verilog", "netlist"],
        help="check a compiled backend against the evaluator (netlist: the synthesized cells of the bitstream; "
        "evaluator, with --data: the simplified graph under the evaluator)",
    )  # fmt: skip
    p.add_argument(
        "--target", choices=list(netlist_sim.FAMILY_DEVICES), default="ice40",
        help="with --backend netlist: the FPGA family whose lgn synth --pnr synthesis is simulated",
    )  # fmt: skip
    p.add_argument(
        "--device", help="with --backend netlist: the part, as lgn synth --device (default: up5k, 25k, GW1NR-9; "
        "on Gowin the part picks synth_gowin's family)",
    )  # fmt: skip
    p.add_argument(
        "--toolchain", choices=toolchain.CHOICES, default=toolchain.current(),
        help="with --backend netlist: yosys from the system, from YoWASP, or auto (as lgn synth)",
    )  # fmt: skip
    p.add_argument(
        "--core", choices=["luts", "gates", "engine"], default="luts", help="with --backend netlist (see lgn synth)"
    )
    p.add_argument(
        "--sim", choices=["icarus", "verilator"],
        help="with --backend verilog|netlist (default: icarus for verilog, verilator for netlist)",
    )  # fmt: skip
    p.add_argument("--pipeline", type=integer(1), help="with --backend verilog: register stage every N logic levels")
    p.add_argument("--bubbles", action="store_true", help="pipelined: random gaps between inputs")
    p.add_argument("--limit", type=integer(1), help="use only the first N vectors")
    p.add_argument("--isa", default="all", help="with --backend c: auto, native, avx512, avx2, portable or all")
    p.add_argument("--dataset", help="verify on a dataset's test split (a model, or a graph with an encoder)")
    p.add_argument("--data-dir", help="folder of the dataset (cifar10, cifar100, idx)")
    p.add_argument(
        "--data", help="verify on every row of a table file (CSV, TSV, .npz, .npy, Parquet; as lgn predict reads it)"
    )
    p.add_argument("--labels", help="with an .npy --data: its labels (optional; they give the accuracy)")
    p.add_argument(
        "--no-simplify", dest="simplify", action="store_false",
        help="with --backend: build the graph as given (default: the simplified graph that lgn compile emits)",
    )  # fmt: skip
    p.set_defaults(func=cmd_verify)
