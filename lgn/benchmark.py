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
from lgn.compiler.ir import FIRST_INPUT, GateGraph
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


def streaming_floor_graph(graph: GateGraph) -> GateGraph:
    """``graph``'s encoder and inputs with no network: one input per class as its output. Its C library reads,
    thresholds and packs the same raw features and does next to nothing else: the pixel-streaming floor."""
    n = graph.n_classes
    outputs = [FIRST_INPUT + c % max(graph.n_inputs, 1) for c in range(n)]
    return GateGraph.build(graph.n_inputs, [], [], outputs, class_offsets=list(range(n + 1)), encoder=graph.encoder)


def _c_rows(graph: GateGraph, nets: dict, x: np.ndarray, pixels: np.ndarray | None) -> list[tuple]:
    """One thread: each (ISA, shape) from 0/1 bytes, from packed bits and (with an encoder) from raw uint8
    features; every path first checked against the evaluator."""
    expected = evaluator_answers(graph, x[:2000], with_outputs=False)
    from_pixels = None if pixels is None else evaluator_answers(graph, evaluate.encode(graph, pixels[:2000]), False)
    rows = []
    for (isa, shape), net in nets.items():
        what = f"lgn C, {isa}, {shape}, 1 thread"
        _must_agree(what, compare(expected, Answers(net.scores(x[:2000]), net.predict(x[:2000]))))
        rows.append((f"{what}, from 0/1 bytes", rate(net.predict, x)))
        packed = c_build.pack_bits(x, net.lanes)
        _must_agree(f"{what} packed", compare(expected, Answers(None, net.predict_packed(packed, len(x))[:2000])))
        rows.append((f"{what}, from packed bits", _packed_rate(net, packed, len(x))))
        if pixels is not None:
            _must_agree(f"{what} pixels", compare(from_pixels, Answers(None, net.predict_features(pixels[:2000]))))
            rows.append((f"{what}, from uint8 pixels", rate(net.predict_features, pixels)))
    return rows


def inference_benchmark(graph: GateGraph, samples: int = 50_000, baseline: bool = True, seed: int = 0) -> list[tuple]:
    """Print and return the table: lgn C (every ISA on one core, in the code shape ``lgn compile`` ships and
    the table shape, from 0/1 bytes, packed bits and raw uint8 features; the best ISA on all cores), the
    pixel-streaming floor, the numpy evaluator, and the difflogic-style baseline, with ratios to the baseline
    and compile times."""
    cache = Path(tempfile.mkdtemp(prefix="lgn-bench-"))  # cold builds: compile times are real
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(samples, graph.n_inputs), dtype=np.uint8)
    pixels = None if graph.encoder is None else rng.integers(0, 256, (samples, graph.encoder.n_features), np.uint8)
    print(
        f"net: {graph.n_inputs} inputs, {graph.n_gates:,} gates (arity {graph.arity}), {graph.n_classes} "
        f"classes; {samples:,} random samples; {os.cpu_count()} cores"
    )
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
    rows = _c_rows(graph, nets, x, pixels)
    net = nets[best_isa, shipped]
    net.threads = os.cpu_count() or 1
    rows.append((f"lgn C, {best_isa}, {shipped}, {net.threads} threads, from 0/1 bytes", rate(net.predict, x)))
    if pixels is not None:
        floor = c_build.compile_c(streaming_floor_graph(graph), isa=best_isa, threads=1, cache_dir=cache)
        rows.append(
            (f"pixel-streaming floor ({best_isa}): encoder + packing only", rate(floor.predict_features, pixels))
        )
    rows.append(("numpy reference evaluator", rate(lambda v: evaluate.predict(graph, v), x[:10_000], 1)))
    base_rate, baseline_line = None, "baseline skipped"
    if baseline and graph.arity == 2:
        start = time.perf_counter()
        base = BaselineNet(graph)
        compile_base = time.perf_counter() - start
        expected = evaluator_answers(graph, x[:2000], with_outputs=False)
        _must_agree("the baseline", compare(expected, Answers(expected.scores, base.predict(x[:2000]))))
        base_rate = rate(base.predict, x[:20_000])
        rows.append(("baseline: difflogic-style C, gcc -O1, 1 thread", base_rate))
        base.close()
        baseline_line = f"baseline build (gcc -O1): {compile_base:.1f} s"
    print(f"\n{'implementation':64s} {'samples/s':>14s} {'vs baseline':>12s} {'gate-evals/s':>14s}")
    for name, r in rows:
        ratio = f"{r / base_rate:10.1f}x" if base_rate else "-"
        print(f"{name:64s} {r / 1e6:11.3f} M {ratio:>12s} {r * graph.n_gates / 1e9:11.2f} G")
    builds = ", ".join(f"{shape} {seconds:.1f} s" for shape, seconds in build_seconds.items())
    print(f"\nlgn build + load, all {len(c_build.host_isas())} ISAs: {builds}; {baseline_line}")
    return rows
