"""Benchmark of the compiler foundation (not a test). Prints figures; see docs/benchmarks.md.

    python bench/simplify.py            # full: 1M-gate simplify, 48k-gate evaluator, LUT6 vs ABC
    python bench/simplify.py --quick    # the same at a tenth of the size, under a minute

1. Simplify a random 2-input network with 50% pass-throughs (1,000,000 gates): seconds and peak memory
   (tracemalloc peak of the simplification, and the process's peak RSS).
2. The reference evaluator on a 6 x 8,000-gate net: sample-gates per second, gate network alone and
   with GroupSum scores.
3. LUT6 count of `simplify --lut 6` against ABC's `strash; dc2; if -K 6` on the same random
   non-degenerate 2-input nets (20k = 4 x 5,000 and 50k = 10 x 5,000 gates, 784 inputs).
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from lgn.compiler import evaluate, pipeline
from lgn.compiler.blif import to_blif
from lgn.compiler.formal import find_abc
from lgn.compiler.random_graph import random_layered


def bench_simplify(gates: int) -> None:
    layers = 10
    graph = random_layered(784, layers, gates // layers, classes=10, pass_through=0.5, seed=1)
    tracemalloc.start()
    start = time.perf_counter()
    out = pipeline.simplify(graph)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"simplify {graph.n_gates:,} gates ({layers} x {gates // layers:,}, 50% pass-throughs) -> "
        f"{out.n_gates:,} in {seconds:.2f} s; peak traced memory {peak / 2**20:.0f} MiB, "
        f"process peak RSS {rss:.0f} MiB  [target: < 3 s, < 1 GB]"
    )


def bench_evaluator(width: int, samples: int) -> None:
    graph = random_layered(784, 6, width, classes=10, seed=2)
    bits = np.random.default_rng(0).integers(0, 2, size=(samples, 784), dtype=np.uint8)
    packed = evaluate.pack_bits(bits)
    evaluate.evaluate_packed(graph, packed)  # warm-up: levels are cached on the graph
    start = time.perf_counter()
    evaluate.evaluate_packed(graph, packed)
    net = time.perf_counter() - start
    start = time.perf_counter()
    evaluate.scores(graph, bits)
    full = time.perf_counter() - start
    work = graph.n_gates * samples
    print(
        f"evaluator, {graph.n_gates:,} gates x {samples:,} samples: gate network {work / net / 1e9:.2f} G "
        f"sample-gates/s; with packing and GroupSum {work / full / 1e9:.2f} G/s  [target: >= 1.0]"
    )


def abc_lut6(graph, abc: str) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.blif"
        path.write_text(to_blif(graph))
        start = time.perf_counter()
        proc = subprocess.run(
            [abc, "-q", f"read {path}; strash; dc2; if -K 6; print_stats"],
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = time.perf_counter() - start
    match = re.search(r"nd\s*=\s*(\d+)", proc.stdout)
    if not match:
        raise RuntimeError(f"cannot read ABC's statistics: {proc.stdout[-300:]}")
    return int(match[1]), seconds


def bench_lut6(shapes: list[tuple[int, int]]) -> None:
    abc = find_abc()
    for layers, width in shapes:
        graph = random_layered(784, layers, width, classes=10, seed=1)
        start = time.perf_counter()
        ours = pipeline.simplify(graph, lut=6)
        seconds = time.perf_counter() - start
        line = (
            f"LUT6, {graph.n_gates:,} random 2-input gates ({layers} x {width:,}): "
            f"ours {ours.n_gates:,} in {seconds:.1f} s"
        )
        if abc is None:
            print(line + "; ABC not installed (apt-get install berkeley-abc)")
            continue
        theirs, abc_seconds = abc_lut6(graph, abc)
        print(
            f"{line}; ABC {theirs:,} in {abc_seconds:.1f} s; ours / ABC = {ours.n_gates / theirs:.3f}"
            "  [target: <= 1.10]"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    bench_simplify(1_000_000 // scale)
    bench_evaluator(8000 // scale, 10_000)
    bench_lut6([(4, 5000 // scale), (10, 5000 // scale)])


if __name__ == "__main__":
    main()
