"""A conv logic net's C library against an FC net of as many gates (not a test): images per second on one
core from uint8 pixels, measured side by side in one run (issue 31, item 4). See docs/benchmarks.md.

    python bench/conv_c.py MODEL            # MODEL: a conv checkpoint or its graph (.npz); MNIST's test split
    python bench/conv_c.py MODEL --layers 6 # the FC twin's depth (default 4)

The twin: ``random_layered`` two-input gates over the same input bits and encoder, as many layers of equal
width as ``--layers`` says, its width chosen so that it has as many gates after simplification as the conv
graph; both compiled by ``lgn.compiler.c_build.compile_c`` with one thread and their ISA and code shape chosen
as ``lgn compile`` chooses them, each checked against the evaluator before it is timed.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from lgn.benchmark import alternating_rates
from lgn.cli.common import load_any
from lgn.compiler import c_build, pipeline
from lgn.compiler.random_graph import random_layered
from lgn.compiler.verify import verify_c_features
from lgn.training.data import load_dataset


def twin(graph, layers: int):
    """A random FC graph over ``graph``'s inputs and encoder with about as many gates after simplification."""
    classes = graph.n_classes
    width = max(classes, round(graph.n_gates / layers / classes) * classes)
    fc = random_layered(graph.n_inputs, layers, width, arity=2, classes=classes, seed=1)
    return pipeline.simplify(fc.replace(encoder=graph.encoder))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dataset", default="mnist")
    args = parser.parse_args(argv)
    conv = pipeline.simplify(load_any(args.model))
    fc = twin(conv, args.layers)
    raw = load_dataset(args.dataset).x_test
    nets = {}
    for name, graph in (("conv", conv), ("fc", fc)):
        net = c_build.compile_c(graph, threads=1)
        check = verify_c_features(graph, net, raw)
        if not check.ok:
            raise SystemExit(f"{name}: the C library disagrees with the evaluator ({check.summary()})")
        nets[name] = net
        print(f"{name}: {graph.n_gates:,} gates after simplification, depth {graph.depth}; C {check.summary()}")
    rates = alternating_rates([nets["conv"].predict_features, nets["fc"].predict_features], np.concatenate([raw] * 3))
    print(
        f"one core, from uint8 pixels: conv {rates[0] / 1e6:.3f} M images/s, FC twin {rates[1] / 1e6:.3f} M "
        f"images/s: conv {rates[0] / rates[1]:.2f}x the FC net's rate ({conv.n_gates / fc.n_gates:.2f}x its gates)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
