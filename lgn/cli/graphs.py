"""``lgn random``, ``lgn info`` and ``lgn simplify``: making, describing and simplifying graphs."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np

from lgn.compiler import formats, outputs, pipeline, truth
from lgn.compiler.ir import MAX_INPUTS, GateGraph
from lgn.compiler.random_graph import random_layered

from .common import EXIT_OK, add_force, integer, load_any, number, save_graph


def cmd_random(args) -> int:
    outputs.check_file(args.out, "out", outputs.GRAPH, force=args.force, parents=False)
    graph = random_layered(
        n_inputs=args.inputs,
        layers=args.layers,
        width=args.width,
        arity=args.arity,
        classes=args.classes,
        pass_through=args.pass_through,
        seed=args.seed,
    )
    save_graph(graph, args.out)
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
    if graph.names is not None:
        lines += _names_lines(graph.names)
    return lines


def _names_lines(names) -> list[str]:
    lines = []
    if names.classes:
        label = f" (label column {names.label!r})" if names.label else ""
        lines.append(f"class names {_listed(names.classes)}{label}")
    if names.numeric:
        lines.append(f"numeric     {_listed(names.numeric)}")
    for i, (column, categories) in enumerate(names.categorical):
        common = f"; most frequent {names.most_frequent[i]!r}" if names.most_frequent else ""
        lines.append(f"categorical {column!r}: {_listed(categories)} (one feature each{common})")
    if names.ignored:
        lines.append(f"ignored     {_listed(names.ignored)}")
    if names.tau:
        lines.append(f"tau         {names.tau:g} (the GroupSum temperature it was trained with: lgn predict --proba)")
    return lines


def _listed(values, limit: int = 12) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _sizes_text(sizes: np.ndarray) -> str:
    unique = sorted(set(sizes.tolist()))
    return str(unique[0]) if len(unique) == 1 else ", ".join(map(str, sizes.tolist()))


def cmd_info(args) -> int:
    lines = []
    if formats.looks_like_checkpoint(args.graph):  # loaded once: its architecture, then its graph
        from lgn.training.checkpoint import load_checkpoint
        from lgn.training.export import to_graph

        model, encoder, info = load_checkpoint(args.graph)
        graph = to_graph(model, encoder, info["names"])
        lines.append(_network_line(model.config))
    else:
        graph = load_any(args.graph)
    print(f"{args.graph}")
    for line in lines + describe(graph):
        print(f"  {line}")
    return EXIT_OK


def _network_line(config: dict[str, Any]) -> str:
    """A checkpoint's architecture as trained (the graph's gates are its unrolled, discretized form)."""
    fc = f"{' + '.join(f'{w:,}' for w in config['widths'])} gates of {config['arity']} inputs"
    if "conv" not in config:
        return f"network     {fc}, {config['parametrization']}"
    colors, height, width, thresholds = config["image"]
    blocks = ", ".join(
        f"{b['channels']} trees of depth {b['depth']} over {b['kernel']}x{b['kernel']}"
        + (f" (groups {b['groups']})" if b["groups"] > 1 else "")
        + (f", OR pool {b['pool']}x{b['pool']}" if b["pool"] > 1 else "")
        for b in config["conv"]
    )
    image = f"{colors * thresholds} channels ({colors} x {thresholds} thresholds) of {height}x{width}"
    return f"network     conv on {image}: {blocks}; then {fc}, {config['parametrization']}"


def cmd_simplify(args) -> int:
    outputs.check_file(args.out, "out", outputs.GRAPH, {"the graph": args.graph}, args.force, parents=False)
    graph = load_any(args.graph)
    stats: list[pipeline.PassStat] = []
    start = time.perf_counter()
    result = pipeline.simplify(graph, lut=args.lut, check=args.check, stats=stats)
    seconds = time.perf_counter() - start
    save_graph(result, args.out)
    if args.verbose:
        for s in stats:
            print(f"  {s.name:22s} {s.gates_in:>9d} -> {s.gates_out:>9d}  {s.seconds * 1e3:8.1f} ms")
    passes = pipeline.pass_through_count(graph)
    share = passes / graph.n_gates if graph.n_gates else 0.0
    print(f"pass-throughs in the input: {passes} of {graph.n_gates} gates ({share:.1%})")
    kind = f"{args.lut}-input LUTs" if args.lut else "gates"
    print(f"gates: {graph.n_gates} -> {result.n_gates} {kind} in {seconds:.2f} s; wrote {args.out}")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("random", help="write a random layered network (for tests and benchmarks)")
    p.add_argument("--inputs", type=integer(1, MAX_INPUTS), default=784)
    p.add_argument("--layers", type=integer(0, 10_000), default=6)
    p.add_argument("--width", type=integer(1, 2**24), default=8000)
    p.add_argument("--arity", type=integer(1, 6), default=2)
    p.add_argument("--classes", type=integer(1, 2**20), default=10)
    p.add_argument("--pass-through", type=number(0.0, 1.0), default=0.0, help="fraction of wires/inverters (0..1)")
    p.add_argument("--seed", type=integer(), default=0)
    p.add_argument("--out", required=True, help="output graph (.npz, or .txt for the text form)")
    add_force(p, "--out", "a graph")
    p.set_defaults(func=cmd_random)

    p = sub.add_parser("info", help="describe a graph")
    p.add_argument("graph")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("simplify", help="run the simplification passes")
    p.add_argument("graph")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--lut", type=integer(1, 6), default=None, help="merge gates into LUTs of at most K inputs (FPGA: 6)"
    )
    p.add_argument("--check", action="store_true", help="check equivalence after every pass")
    p.add_argument("-v", "--verbose", action="store_true", help="print every pass's statistics")
    add_force(p, "--out", "a graph")
    p.set_defaults(func=cmd_simplify)
