"""C backend benchmark (not a test): samples per second side by side in one run. See docs/benchmarks.md.

    python bench/c_backend.py            # 6 x 8,000 gates (48k) and a 1,000,000-gate net; the baseline's
                                         # gcc -O1 build of 48k gates alone takes several minutes
    python bench/c_backend.py --quick    # 6 x 1,000 gates and a 100,000-gate net, about a minute

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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from difflogic_style import BaselineNet  # noqa: E402

from compiler import c_build, evaluate  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow difflogic-style build")
    args = parser.parse_args()
    width = 1000 if args.quick else 8000
    big_width = 10_000 if args.quick else 100_000
    cache = Path(tempfile.mkdtemp(prefix="lgn-bench-"))  # cold builds: compile times are real
    rng = np.random.default_rng(0)

    graph = random_layered(784, 6, width, classes=10, seed=1)
    x = rng.integers(0, 2, size=(50_000, 784), dtype=np.uint8)
    print(
        f"net: 784 inputs, 6 x {width:,} random 2-input gates (no pass-throughs), 10 classes; "
        f"{len(x):,} samples; {os.cpu_count()} cores"
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
        rows.append((f"lgn C, {isa}, table, 1 thread", rate(net.predict, x)))
    net = nets[best_isa]
    net.threads = os.cpu_count() or 1
    rows.append((f"lgn C, {best_isa}, {net.threads} threads", rate(net.predict, x)))
    net.threads = 1
    rows.append(("numpy reference evaluator", rate(lambda v: evaluate.predict(graph, v), x[:10_000], 1)))
    baseline_line = "baseline skipped (--no-baseline)"
    if not args.no_baseline:
        start = time.perf_counter()
        baseline = BaselineNet(graph)
        compile_base = time.perf_counter() - start
        assert (baseline.predict(x[:2000]) == reference).all(), "baseline disagrees with the evaluator"
        rows.append(("baseline: difflogic-style C, gcc -O1, 1 thread", rate(baseline.predict, x[:20_000])))
        baseline.close()
        baseline_line = f"baseline build (gcc -O1): {compile_base:.1f} s"
    base_rate = rows[-1][1] if not args.no_baseline else None
    print(f"\n{'implementation':48s} {'samples/s':>14s} {'vs baseline':>12s} {'gate-evals/s':>14s}")
    for name, r in rows:
        ratio = f"{r / base_rate:10.1f}x" if base_rate else "-"
        print(f"{name:48s} {r / 1e6:11.3f} M {ratio:>12s} {r * graph.n_gates / 1e9:11.2f} G")
    print(f"\ncompile + load, all {len(nets)} ISAs: {compile_ours:.1f} s; {baseline_line}")

    big = random_layered(784, 10, big_width, classes=10, seed=2)
    start = time.perf_counter()
    big_net = c_build.compile_c(big, isa=best_isa, threads=1, cache_dir=cache)
    compile_big = time.perf_counter() - start
    xb = x[:5000]
    assert (big_net.predict(xb[:500]) == evaluate.predict(big, xb[:500])).all()
    print(
        f"{big.n_gates:,}-gate net (10 x {big_width:,}): emit + compile + load {compile_big:.1f} s; "
        f"{rate(big_net.predict, xb, 1) / 1e3:.1f} k samples/s on one core "
        "(the difflogic-style -O1 build does not finish at this size; not attempted)"
    )


if __name__ == "__main__":
    main()
