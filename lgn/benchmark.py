"""The inference benchmark behind ``lgn bench`` and ``bench/c_backend.py``: samples per second of the compiled
C library (every ISA on one core, the best on every core), the numpy evaluator and a difflogic-style C
baseline, measured side by side in one run.

Every figure runs end to end from sample-major uint8 input bits to classes: packing, the gate network,
GroupSum and argmax; the "from packed bits" rows start from input already in the library's block layout
(``predict_packed``), which skips the transpose. "one core" = one thread.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from lgn.compiler import c_build, c_emit, evaluate
from lgn.compiler.errors import LgnError
from lgn.compiler.ir import GateGraph
from lgn.compiler.verify import Answers, Comparison, compare, evaluator_answers

from .difflogic_style import BaselineNet


def _must_agree(what: str, comparison: Comparison) -> None:
    """A benchmark of a wrong implementation is worthless: stop."""
    if not comparison.ok:
        raise LgnError(f"{what} disagrees with the evaluator: {comparison.summary()}")


def rate(predict, x: np.ndarray, repeats: int = 3) -> float:
    """Best-of-``repeats`` samples per second."""
    predict(x[:256])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predict(x)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def _packed_rate(net, packed: np.ndarray, samples: int, repeats: int = 3) -> float:
    """Samples per second of ``predict_packed`` (the input already in the block layout: no transpose)."""
    net.predict_packed(packed[:1], min(samples, net.lanes))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        net.predict_packed(packed, samples)
        best = min(best, time.perf_counter() - start)
    return samples / best


def inference_benchmark(graph: GateGraph, samples: int = 50_000, baseline: bool = True, seed: int = 0) -> list[tuple]:
    """Print and return the table: lgn C (every ISA on one core, in the code shape ``lgn compile`` ships and
    the table shape; the best ISA on all cores), the numpy evaluator, and the difflogic-style baseline, with
    ratios to the baseline and compile times."""
    cache = Path(tempfile.mkdtemp(prefix="lgn-bench-"))  # cold builds: compile times are real
    x = np.random.default_rng(seed).integers(0, 2, size=(samples, graph.n_inputs), dtype=np.uint8)
    print(
        f"net: {graph.n_inputs} inputs, {graph.n_gates:,} gates (arity {graph.arity}), {graph.n_classes} "
        f"classes; {samples:,} random samples; {os.cpu_count()} cores"
    )
    rows = []
    # The code shape lgn compile ships (auto), and the table shape beside it where auto picks straight-line.
    shipped = c_emit.choose_shape(graph, "auto")
    shapes = ["table"] + (["straight"] if shipped == "straight" else [])
    build_seconds, nets = {}, {}
    for shape in shapes:
        start = time.perf_counter()
        for isa in c_build.host_isas():
            nets[isa, shape] = c_build.compile_c(graph, isa=isa, shape=shape, threads=1, cache_dir=cache)
        build_seconds[shape] = time.perf_counter() - start
    best_isa = c_build.host_isas()[0]
    expected = evaluator_answers(graph, x[:2000], with_outputs=False)
    for (isa, shape), net in nets.items():
        what = f"lgn C, {isa}, {shape}"
        _must_agree(what, compare(expected, Answers(net.scores(x[:2000]), net.predict(x[:2000]))))
        rows.append((f"{what}, 1 thread", rate(net.predict, x)))
        packed = c_build.pack_bits(x, net.lanes)
        _must_agree(f"{what} packed", compare(expected, Answers(None, net.predict_packed(packed, samples)[:2000])))
        rows.append((f"{what}, 1 thread, from packed bits", _packed_rate(net, packed, samples)))
    net = nets[best_isa, shipped]
    net.threads = os.cpu_count() or 1
    rows.append((f"lgn C, {best_isa}, {shipped}, {net.threads} threads", rate(net.predict, x)))
    rows.append(("numpy reference evaluator", rate(lambda v: evaluate.predict(graph, v), x[:10_000], 1)))
    base_rate, baseline_line = None, "baseline skipped"
    if baseline and graph.arity == 2:
        start = time.perf_counter()
        base = BaselineNet(graph)
        compile_base = time.perf_counter() - start
        classes = base.predict(x[:2000])
        _must_agree("the baseline", compare(expected, Answers(expected.scores, classes)))
        base_rate = rate(base.predict, x[:20_000])
        rows.append(("baseline: difflogic-style C, gcc -O1, 1 thread", base_rate))
        base.close()
        baseline_line = f"baseline build (gcc -O1): {compile_base:.1f} s"
    print(f"\n{'implementation':56s} {'samples/s':>14s} {'vs baseline':>12s} {'gate-evals/s':>14s}")
    for name, r in rows:
        ratio = f"{r / base_rate:10.1f}x" if base_rate else "-"
        print(f"{name:56s} {r / 1e6:11.3f} M {ratio:>12s} {r * graph.n_gates / 1e9:11.2f} G")
    builds = ", ".join(f"{shape} {seconds:.1f} s" for shape, seconds in build_seconds.items())
    print(f"\nlgn build + load, all {len(c_build.host_isas())} ISAs: {builds}; {baseline_line}")
    return rows
