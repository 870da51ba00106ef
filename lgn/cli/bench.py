"""``lgn bench``: the inference benchmark for a model or graph (default: a random 6 x 8,000 net)."""

from __future__ import annotations

from lgn.compiler import pipeline
from lgn.compiler.errors import ParameterError
from lgn.compiler.random_graph import random_layered

from .common import EXIT_OK, integer, load_any


def cmd_bench(args) -> int:
    from lgn.benchmark import inference_benchmark

    if args.samples < 1:
        raise ParameterError(f"samples must be at least 1, got {args.samples}", "samples")
    if args.graph:
        graph = load_any(args.graph)
        if args.simplify:
            graph = pipeline.simplify(graph)
    else:
        graph = random_layered(784, 6, 8000, classes=10, seed=1)
    inference_benchmark(graph, samples=args.samples, baseline=not args.no_baseline)
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser(
        "bench", help="inference benchmark: C (1 core, all cores) vs numpy vs a difflogic-style baseline"
    )
    p.add_argument("graph", nargs="?", help="a model or graph (default: a random 6 x 8,000 net)")
    p.add_argument("--samples", type=integer(1, 10**9), default=50_000)
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline (its gcc -O1 build is slow)")
    p.add_argument("--no-simplify", dest="simplify", action="store_false")
    p.set_defaults(func=cmd_bench)
