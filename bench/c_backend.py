"""C backend benchmark (not a test): samples per second side by side in one run. See docs/benchmarks.md.

    python bench/c_backend.py            # 6 x 8,000 gates (48k) and a 1,000,000-gate net; the baseline's
                                         # gcc -O1 build of 48k gates alone takes many minutes
    python bench/c_backend.py --quick    # 6 x 1,000 gates and a 100,000-gate net, about a minute
    lgn bench [MODEL | G.npz]            # the same table for your own model (or the 48k random net)

Every figure is end to end from sample-major uint8 input bits to classes: packing, the gate network,
GroupSum and argmax. "one core" = one thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Appended, not prepended: bench/kernels.py must never shadow the kernels package (lgn bench imports
# this file as a module, so bench/ would otherwise come first on the path).
sys.path.append(str(Path(__file__).resolve().parent))

from difflogic_style import BaselineNet  # noqa: E402

from compiler import c_build, evaluate  # noqa: E402
from compiler.ir import GateGraph  # noqa: E402
from compiler.random_graph import random_layered  # noqa: E402


def rate(predict, x: np.ndarray, repeats: int = 3) -> float:
    """Best-of-``repeats`` samples per second."""
    predict(x[:256])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        predict(x)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def compare(graph: GateGraph, samples: int = 50_000, baseline: bool = True, seed: int = 0) -> list[tuple]:
    """Print and return the table: lgn C (every ISA, one core; best ISA, all cores), the numpy evaluator,
    and the difflogic-style baseline, with ratios to the baseline and compile times."""
    cache = Path(tempfile.mkdtemp(prefix="lgn-bench-"))  # cold builds: compile times are real
    x = np.random.default_rng(seed).integers(0, 2, size=(samples, graph.n_inputs), dtype=np.uint8)
    print(
        f"net: {graph.n_inputs} inputs, {graph.n_gates:,} gates (arity {graph.arity}), {graph.n_classes} "
        f"classes; {samples:,} random samples; {os.cpu_count()} cores"
    )
    rows = []
    start = time.perf_counter()
    nets = {
        isa: c_build.compile_c(graph, isa=isa, shape="table", threads=1, cache_dir=cache) for isa in c_build.host_isas()
    }
    compile_ours = time.perf_counter() - start
    best_isa = c_build.host_isas()[0]
    reference = evaluate.predict(graph, x[:2000])
    for isa, net in nets.items():
        assert (net.predict(x[:2000]) == reference).all(), f"{isa} disagrees with the evaluator"
        rows.append((f"lgn C, {isa}, 1 thread", rate(net.predict, x)))
    net = nets[best_isa]
    net.threads = os.cpu_count() or 1
    rows.append((f"lgn C, {best_isa}, {net.threads} threads", rate(net.predict, x)))
    rows.append(("numpy reference evaluator", rate(lambda v: evaluate.predict(graph, v), x[:10_000], 1)))
    base_rate, baseline_line = None, "baseline skipped"
    if baseline and graph.arity == 2:
        start = time.perf_counter()
        base = BaselineNet(graph)
        compile_base = time.perf_counter() - start
        assert (base.predict(x[:2000]) == reference).all(), "baseline disagrees with the evaluator"
        base_rate = rate(base.predict, x[:20_000])
        rows.append(("baseline: difflogic-style C, gcc -O1, 1 thread", base_rate))
        base.close()
        baseline_line = f"baseline build (gcc -O1): {compile_base:.1f} s"
    print(f"\n{'implementation':48s} {'samples/s':>14s} {'vs baseline':>12s} {'gate-evals/s':>14s}")
    for name, r in rows:
        ratio = f"{r / base_rate:10.1f}x" if base_rate else "-"
        print(f"{name:48s} {r / 1e6:11.3f} M {ratio:>12s} {r * graph.n_gates / 1e9:11.2f} G")
    print(f"\nlgn build + load, all {len(nets)} ISAs: {compile_ours:.1f} s; {baseline_line}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow difflogic-style build")
    args = parser.parse_args()
    width = 1000 if args.quick else 8000
    big_width = 10_000 if args.quick else 100_000
    compare(random_layered(784, 6, width, classes=10, seed=1), baseline=not args.no_baseline)

    big = random_layered(784, 10, big_width, classes=10, seed=2)
    start = time.perf_counter()
    big_net = c_build.compile_c(big, threads=1, cache_dir=Path(tempfile.mkdtemp(prefix="lgn-bench-")))
    compile_big = time.perf_counter() - start
    x = np.random.default_rng(1).integers(0, 2, size=(5000, 784), dtype=np.uint8)
    assert (big_net.predict(x[:500]) == evaluate.predict(big, x[:500])).all()
    print(
        f"{big.n_gates:,}-gate net (10 x {big_width:,}): emit + compile + load {compile_big:.1f} s; "
        f"{rate(big_net.predict, x, 1) / 1e3:.1f} k samples/s on one core "
        "(the difflogic-style -O1 build does not finish at this size; not attempted)"
    )


if __name__ == "__main__":
    main()
