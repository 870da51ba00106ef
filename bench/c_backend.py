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
import tempfile
import time
from pathlib import Path

import numpy as np

from lgn.benchmark import inference_benchmark, rate
from lgn.compiler import c_build, evaluate
from lgn.compiler.random_graph import random_layered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="skip the slow difflogic-style build")
    args = parser.parse_args()
    width = 1000 if args.quick else 8000
    big_width = 10_000 if args.quick else 100_000
    inference_benchmark(random_layered(784, 6, width, classes=10, seed=1), baseline=not args.no_baseline)

    big = random_layered(784, 10, big_width, classes=10, seed=2)
    start = time.perf_counter()
    big_net = c_build.compile_c(big, isa="native", threads=1, cache_dir=Path(tempfile.mkdtemp(prefix="lgn-bench-")))
    compile_big = time.perf_counter() - start
    x = np.random.default_rng(1).integers(0, 2, size=(5000, 784), dtype=np.uint8)
    if not (big_net.predict(x[:500]) == evaluate.predict(big, x[:500])).all():
        raise SystemExit("the 1,000,000-gate library disagrees with the evaluator")
    print(
        f"{big.n_gates:,}-gate net (10 x {big_width:,}): emit + compile + load {compile_big:.1f} s; "
        f"{rate(big_net.predict, x, 1) / 1e3:.1f} k samples/s on one core "
        "(the difflogic-style -O1 build does not finish at this size; not attempted)"
    )


if __name__ == "__main__":
    main()
