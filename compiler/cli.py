"""The ``lgn`` command line. Exit codes: 0 success, 1 a check failed, 2 bad usage or bad input."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from . import evaluate, formats, pipeline, truth
from .errors import LgnError
from .ir import GateGraph
from .random_graph import random_layered
from .verify import compare_graphs

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _save(graph: GateGraph, path: str) -> None:
    target = Path(path)
    try:
        if target.suffix == ".txt":
            target.write_text(formats.to_text(graph))
        else:
            formats.save_npz(graph, target)
    except OSError as exc:
        raise LgnError(f"{target}: cannot write: {exc.strerror or exc}") from None


def load_any(path: str) -> GateGraph:
    """A graph file, or a trained-model checkpoint exported on the fly (that loads torch)."""
    if formats.looks_like_checkpoint(path):
        from training.commands import graph_from_model

        return graph_from_model(path)
    return formats.load_graph(path)


def cmd_random(args) -> int:
    graph = random_layered(
        n_inputs=args.inputs,
        layers=args.layers,
        width=args.width,
        arity=args.arity,
        classes=args.classes,
        pass_through=args.pass_through,
        seed=args.seed,
    )
    _save(graph, args.out)
    print(f"wrote {args.out}: {graph.n_inputs} inputs, {graph.n_gates} gates, {graph.n_classes} classes")
    return EXIT_OK


def describe(graph: GateGraph) -> list[str]:
    """The lines ``lgn info`` prints."""
    sizes = pipeline.support_sizes(graph)
    by_arity = Counter(sizes.tolist())
    lines = [
        f"inputs      {graph.n_inputs}",
        f"gates       {graph.n_gates} (fan-in slots per gate: {graph.arity})",
        "  by arity  " + ", ".join(f"{a}-input: {n}" for a, n in sorted(by_arity.items())),
        f"  pass-throughs (wires and inverters): {int(by_arity.get(1, 0))}",
        f"  without pass-throughs and constants: {int((sizes >= 2).sum())}",
        f"depth       {graph.depth}",
        f"outputs     {graph.n_outputs} ({int(graph.output_negated.sum())} negated)",
        f"classes     {graph.n_classes} (group sizes {_sizes_text(graph.class_sizes)})",
    ]
    if graph.n_gates:
        names = Counter(
            truth.gate_name(int(t), graph.arity) if graph.arity <= 2 else f"{int(s)}-input LUT"
            for t, s in zip(graph.tables.tolist(), sizes.tolist())
        )
        lines.append("by function " + ", ".join(f"{name}: {n}" for name, n in names.most_common()))
    if graph.encoder is not None:
        lines.append(f"encoder     {graph.encoder.n_features} raw features -> {graph.n_inputs} threshold bits")
    return lines


def _sizes_text(sizes: np.ndarray) -> str:
    unique = sorted(set(sizes.tolist()))
    return str(unique[0]) if len(unique) == 1 else ", ".join(map(str, sizes.tolist()))


def cmd_info(args) -> int:
    graph = load_any(args.graph)
    print(f"{args.graph}")
    for line in describe(graph):
        print(f"  {line}")
    return EXIT_OK


def cmd_simplify(args) -> int:
    graph = load_any(args.graph)
    stats: list[pipeline.PassStat] = []
    start = time.perf_counter()
    result = pipeline.simplify(graph, lut=args.lut, check=args.check, stats=stats)
    seconds = time.perf_counter() - start
    _save(result, args.out)
    if args.verbose:
        for s in stats:
            print(f"  {s.name:22s} {s.gates_in:>9d} -> {s.gates_out:>9d}  {s.seconds * 1e3:8.1f} ms")
    passes = pipeline.pass_through_count(graph)
    share = passes / graph.n_gates if graph.n_gates else 0.0
    print(f"pass-throughs in the input: {passes} of {graph.n_gates} gates ({share:.1%})")
    kind = f"{args.lut}-input LUTs" if args.lut else "gates"
    print(f"gates: {graph.n_gates} -> {result.n_gates} {kind} in {seconds:.2f} s; wrote {args.out}")
    return EXIT_OK


def _write_files(out: Path, files: dict[str, str]) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text)
    except OSError as exc:
        raise LgnError(f"{out}: cannot write: {exc.strerror or exc}") from None


def cmd_compile(args) -> int:
    from . import c_build, c_emit

    graph = load_any(args.graph)
    if args.simplify:
        graph = pipeline.simplify(graph)
    if args.target == "verilog":
        from . import verilog_emit

        raw = {"auto": None, "bits": False, "u8": True}[args.input]
        files = verilog_emit.package_files(graph, module=args.module, pipeline=args.pipeline, raw_input=raw)
        _write_files(Path(args.out), files)
        iface = verilog_emit.interface(graph, args.module, args.pipeline, raw)
        timing = f"pipelined, latency {iface.latency} cycles" if iface.pipelined else "combinational"
        print(f"wrote {', '.join(sorted(files))} to {args.out} ({graph.n_gates} gates, {timing})")
        return EXIT_OK
    isa = c_build.resolve_isa(args.isa)
    start = time.perf_counter()
    files = c_emit.library_files(graph, isa=isa, shape=args.shape, prefix=args.prefix)
    out = Path(args.out)
    _write_files(out, files)
    shape = c_emit.choose_shape(graph, args.shape)
    print(
        f"wrote {len(files)} files to {out} ({isa}, {shape} shape, {graph.n_gates} gates) in "
        f"{time.perf_counter() - start:.2f} s: {', '.join(sorted(files))}"
    )
    print(f"build: make -C {out}")
    return EXIT_OK


def _verify_c(graph: GateGraph, args) -> int:
    from . import c_build, c_emit
    from .verify import compare_compiled, test_vectors

    if args.dataset:
        from training.commands import dataset_bits

        raw, bits, _ = dataset_bits(graph, args.dataset, args.data_dir)
        exhaustive = False
        how = f"{args.dataset} test split"
    else:
        raw = None
        bits, exhaustive = test_vectors(graph.n_inputs, args.vectors, args.seed)
        how = "exhaustive" if exhaustive else f"structured + {args.vectors} random, seed {args.seed}"
    isas = c_build.host_isas() if args.isa == "all" else [c_build.resolve_isa(args.isa)]
    shapes = ["table"] + (["straight"] if graph.n_gates <= 5 * c_emit.STRAIGHT_LINE_MAX_GATES else [])
    total = bad = 0
    for isa in isas:
        for shape in shapes:
            start = time.perf_counter()
            net = c_build.compile_c(graph, isa=isa, shape=shape)
            report = compare_compiled(graph, net, bits, exhaustive)
            print(f"C {isa}/{shape} vs evaluator ({how}): {report.summary()} in {time.perf_counter() - start:.2f} s")
            total += report.vectors
            bad += report.mismatches
            if raw is not None and raw.dtype in (np.uint8, np.float32):
                # The raw-feature entry points too: the thresholds applied in C.
                wrong = int((net.predict_features(raw) != evaluate.predict(graph, bits)).sum())
                print(f"C {isa}/{shape} from raw {raw.dtype}: {len(raw)} vectors, {wrong} mismatches")
                total += len(raw)
                bad += wrong
    print(f"{total} vectors, {bad} mismatches")
    return EXIT_OK if bad == 0 else EXIT_CHECK_FAILED


def _verify_verilog(graph: GateGraph, args) -> int:
    from . import hdl_sim
    from .verify import test_vectors

    if args.formal:
        from .hdl_tools import formal_verilog

        start = time.perf_counter()
        simple = pipeline.simplify(graph)
        proven = formal_verilog(graph, simple)
        print(
            f"formal (yosys + ABC cec), Verilog of the graph vs of its simplification "
            f"({graph.n_gates} -> {simple.n_gates} gates): {'equivalent' if proven else 'NOT equivalent'} "
            f"in {time.perf_counter() - start:.1f} s"
        )
        if not proven:
            return EXIT_CHECK_FAILED
    raw = None
    if args.dataset:
        from training.commands import dataset_bits

        raw, bits, _ = dataset_bits(graph, args.dataset, args.data_dir)
        if raw.dtype != np.uint8:
            raw = None  # tabular features: the Verilog takes the encoded bits
        how = f"{args.dataset} test split"
    else:
        bits, exhaustive = test_vectors(graph.n_inputs, args.vectors, args.seed)
        how = "exhaustive" if exhaustive else f"structured + {args.vectors} random"
    if args.limit is not None:
        bits = bits[: args.limit]
        raw = raw[: args.limit] if raw is not None else None
    result = hdl_sim.simulate(
        graph,
        bits,
        sim=args.sim,
        pipeline=args.pipeline,
        raw=raw,
        mode="bubbles" if args.bubbles else "back-to-back",
        seed=args.seed,
    )
    timing = f", latency {result.latency} cycles" if args.pipeline else ""
    print(
        f"Verilog on {args.sim} vs evaluator ({how}{timing}): build {result.build_seconds:.1f} s, "
        f"simulation {result.sim_seconds:.1f} s ({result.vectors / max(result.sim_seconds, 1e-9):.0f} vectors/s)"
    )
    print(result.summary())
    return EXIT_OK if result.mismatches == 0 else EXIT_CHECK_FAILED


def cmd_synth(args) -> int:
    from .hdl_tools import synth_report

    graph = load_any(args.graph)
    if args.simplify:
        graph = pipeline.simplify(graph)
    start = time.perf_counter()
    parts = synth_report(graph, target=args.target, pipeline=args.pipeline)
    print(
        f"yosys {args.target} synthesis of {graph.n_gates} gates ({time.perf_counter() - start:.1f} s); "
        "no latches, no combinational loops"
    )
    print(f"  {'part':24s} {'LUTs':>8s} {'FFs':>8s}")
    for part in parts:
        print(f"  {part.name:24s} {part.luts:8d} {part.ffs:8d}")
    return EXIT_OK


def cmd_verify(args) -> int:
    if args.dataset and args.backend is None and args.against is None:
        if not formats.looks_like_checkpoint(args.graph):
            raise LgnError("verify --dataset without --backend compares a trained MODEL with its IR: give a model")
        from training.commands import verify_model_on_dataset

        return verify_model_on_dataset(args)
    graph = load_any(args.graph)
    if args.backend == "c":
        return _verify_c(graph, args)
    if args.backend == "verilog":
        return _verify_verilog(graph, args)
    if args.against is None:
        raise LgnError("nothing to verify against: give --against G2.npz or --backend c")
    other = load_any(args.against)
    start = time.perf_counter()
    report = compare_graphs(graph, other, n_random=args.vectors, seed=args.seed)
    how = "exhaustive" if report.exhaustive else f"structured + {args.vectors} random, seed {args.seed}"
    print(f"evaluator vs evaluator ({how}) in {time.perf_counter() - start:.2f} s")
    if report.first_mismatch is not None:
        print(f"first mismatch at vector {report.first_mismatch}")
    proven = True
    if args.formal:
        from .formal import abc_equivalent

        start = time.perf_counter()
        proven = abc_equivalent(graph, other)
        verdict = "equivalent" if proven else "NOT equivalent"
        print(f"formal (ABC cec): {verdict} in {time.perf_counter() - start:.2f} s")
    print(report.summary())
    return EXIT_OK if report.ok and proven else EXIT_CHECK_FAILED


def cmd_bench(args) -> int:
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "bench" / "c_backend.py"
    if not script.exists():
        raise LgnError(f"{script} is missing: lgn bench runs from a checkout of the repository")
    spec = importlib.util.spec_from_file_location("lgn_bench_c_backend", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if args.graph:
        graph = load_any(args.graph)
        if args.simplify:
            graph = pipeline.simplify(graph)
    else:
        graph = random_layered(784, 6, 8000, classes=10, seed=1)
    module.compare(graph, samples=args.samples, baseline=not args.no_baseline)
    return EXIT_OK


def cmd_demo(args) -> int:
    from training.demo import run_demo

    return run_demo(args)


def _torch_command(name: str):
    def run(args) -> int:
        from training import commands

        return getattr(commands, name)(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lgn", description="Logic gate networks: train, compile, verify.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("random", help="write a random layered network (for tests and benchmarks)")
    p.add_argument("--inputs", type=int, default=784)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--width", type=int, default=8000)
    p.add_argument("--arity", type=int, default=2)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--pass-through", type=float, default=0.0, help="fraction of wires/inverters (0..1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output graph (.npz, or .txt for the text form)")
    p.set_defaults(func=cmd_random)

    p = sub.add_parser("info", help="describe a graph")
    p.add_argument("graph")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("simplify", help="run the simplification passes")
    p.add_argument("graph")
    p.add_argument("--out", required=True)
    p.add_argument("--lut", type=int, default=None, help="merge gates into LUTs of at most K inputs (FPGA: 6)")
    p.add_argument("--check", action="store_true", help="check equivalence after every pass")
    p.add_argument("-v", "--verbose", action="store_true", help="print every pass's statistics")
    p.set_defaults(func=cmd_simplify)

    p = sub.add_parser("verify", help="check that two implementations agree bit for bit")
    p.add_argument("graph")
    p.add_argument("--against", help="a second graph to compare with the first")
    p.add_argument("--vectors", type=int, default=10_000, help="random vectors (beyond the structured ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--formal", action="store_true", help="also prove equivalence with ABC cec")
    p.add_argument("--backend", choices=["c", "verilog"], help="check a compiled backend against the evaluator")
    p.add_argument("--sim", choices=["icarus", "verilator"], default="icarus", help="with --backend verilog")
    p.add_argument("--pipeline", type=int, help="with --backend verilog: register stage every N logic levels")
    p.add_argument("--bubbles", action="store_true", help="pipelined: random gaps between inputs")
    p.add_argument("--limit", type=int, help="use only the first N vectors")
    p.add_argument("--isa", default="all", help="with --backend c: native, avx512, avx2, portable or all")
    p.add_argument("--dataset", help="verify on a dataset's test split (a model, or a graph with an encoder)")
    p.add_argument("--data-dir", help="folder of the dataset (cifar10, cifar100, idx)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("train", help="train a logic gate network (OP or IWP) on an offline dataset")
    p.add_argument(
        "--dataset",
        default="mnist",
        help="mnist, fashion-mnist, digits, breast-cancer, iris, "
        "cifar10, cifar100 or idx (the last three need --data-dir)",
    )
    p.add_argument("--data-dir")
    p.add_argument("--parametrization", choices=["iwp", "op"], default="iwp")
    p.add_argument("--arity", type=int, default=2)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=2000)
    p.add_argument("--tau", type=float, default=10.0)
    p.add_argument("--thresholds", type=int, default=1, help="thermometer thresholds per feature")
    p.add_argument("--threshold-method", choices=["uniform", "quantile"], default="uniform")
    p.add_argument("--crop", type=int, help="square images: read only the central CROP x CROP pixels (MNIST: 20)")
    p.add_argument("--rho", choices=["sin01", "sigmoid"], default="sin01")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--init", choices=["residual", "gaussian", "and-or", "uniform"], default="residual")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--eval-samples", type=int, help="evaluate on the first N test samples (default: all)")
    p.add_argument("--out", default="model.safetensors")
    p.add_argument("--metrics", help="JSONL metrics file (default: OUT.metrics.jsonl)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: the GPU if any")
    p.add_argument(
        "--implementation",
        choices=["auto", "torch", "kernels"],
        default="auto",
        help="gate math: auto = our CUDA kernels on a GPU, the pure-torch reference on the CPU",
    )
    p.add_argument(
        "--activations",
        choices=["float32", "bfloat16"],
        default="float32",
        help="activation type between layers (bfloat16 halves the kernels' memory traffic)",
    )
    p.set_defaults(func=_torch_command("cmd_train"))

    p = sub.add_parser("export", help="export a trained model's discretized network as an IR graph")
    p.add_argument("model")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_torch_command("cmd_export"))

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

    p = sub.add_parser("synth", help="synthesize the Verilog with yosys: LUTs and FFs by part")
    p.add_argument("graph")
    p.add_argument("--target", choices=["generic", "ice40", "xilinx"], default="generic")
    p.add_argument("--pipeline", type=int)
    p.add_argument("--no-simplify", dest="simplify", action="store_false")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "bench", help="inference benchmark: C (1 core, all cores) vs numpy vs a difflogic-style baseline"
    )
    p.add_argument("graph", nargs="?", help="a model or graph (default: a random 6 x 8,000 net)")
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline (its gcc -O1 build is slow)")
    p.add_argument("--no-simplify", dest="simplify", action="store_false")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="the main job: train, compile to C and Verilog, verify, report")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir")
    p.add_argument("--parametrization", choices=["iwp", "op"], default="iwp")
    p.add_argument("--arity", type=int, default=2)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=2000)
    p.add_argument("--steps", type=int, default=10000)  # about 2 minutes on 2 cores with the CPU operators
    p.add_argument("--tau", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--icarus-sample", type=int, default=300, help="test samples simulated on Icarus")
    p.add_argument("--no-synth", action="store_true", help="skip the yosys synthesis")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="out/demo")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("vectors", "inputs", "layers", "width"):
        if getattr(args, name, 1) is not None and getattr(args, name, 1) < 0:
            parser.error(f"--{name} must not be negative")
    try:
        return args.func(args)
    except LgnError as exc:
        print(f"lgn: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        print("lgn: error: out of memory (try a smaller network or fewer vectors)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("lgn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
