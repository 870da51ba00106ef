"""Verilog backend benchmark (not a test). See docs/benchmarks.md.

    python bench/verilog.py [--quick] [--model MODEL]

1. Simulation speed: Verilator (and Icarus on fewer vectors) on a random 784-input net of 4 x 5,000
   2-input gates (20k; --quick: 4 x 1,250) with GroupSum and argmax, every vector checked against the IR
   evaluator; build time reported separately.
2. With --model: the LUT6 count (yosys, generic) after simplification, and after LUT merging, against the
   gate count, with GroupSum's share.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lgn.compiler import hdl_sim, hdl_tools, pipeline
from lgn.compiler.random_graph import random_layered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", help="a trained model or graph for the LUT report")
    args = parser.parse_args()
    width = 1250 if args.quick else 5000
    graph = random_layered(784, 4, width, classes=10, seed=1)
    rng = np.random.default_rng(0)
    root = Path(tempfile.gettempdir()) / "lgn-bench-hdl"  # builds are reused by design hash between runs
    for sim, n in (("verilator", 10_000), ("icarus", 300 if args.quick else 200)):
        bits = rng.integers(0, 2, size=(n, 784)).astype(bool)
        result = hdl_sim.simulate(graph, bits, sim=sim, build_root=root)
        print(
            f"{sim}: {graph.n_gates:,} gates + GroupSum + argmax, {n} vectors: build {result.build_seconds:.1f} s, "
            f"simulation {result.sim_seconds:.1f} s = {n / result.sim_seconds:.0f} vectors/s including the "
            f"simulator's start; {result.summary()}"
        )
    if args.model:
        from lgn.cli.common import load_any

        model = load_any(args.model)
        simple = pipeline.simplify(model)
        for name, g in (("simplified", simple), ("simplified + LUT6 merging", pipeline.simplify(model, lut=6))):
            start = time.perf_counter()
            parts = {p.name: p for p in hdl_tools.synth_report(g)}
            whole = parts["whole design (flat)"].luts
            share = parts["GroupSum"].luts / max(1, sum(p.luts for k, p in parts.items() if k != "whole design (flat)"))
            print(
                f"{name}: {g.n_gates} gates -> {whole} LUT6 for the whole design (gate network alone "
                f"{parts['gate network'].luts}, GroupSum {parts['GroupSum'].luts}, argmax {parts['argmax'].luts}; "
                f"GroupSum is {share:.0%} of the parts) in {time.perf_counter() - start:.0f} s"
            )


if __name__ == "__main__":
    main()
