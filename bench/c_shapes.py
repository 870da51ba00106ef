"""The C library's two code shapes side by side (not a test): where does straight-line code beat the table kernel?

    python bench/c_shapes.py [GRAPH.npz | random:INPUTSxLAYERSxWIDTH ...] [--isa avx512,avx2] [--rounds 5]

For each graph (default: every models/*.npz and three random two-input nets of 6,000-8,000 gates), simplified as
``lgn compile`` does, builds the table shape and the straight shape for each ISA (a private build cache, so the
gcc time is real), checks that both give the same classes, and times ``predict_packed`` on the same random
packed blocks, alternating between the shapes (best of ``--rounds`` rounds of 7 calls each), so a busy moment of a
shared machine slows both alike. Prints images/s per shape, the ratio and each build's seconds; ``auto`` is the
shape ``compile_c`` picks (``c_emit.STRAIGHT_LINE_MAX_GATES``, ``STRAIGHT_LINE_MAX_LUTS``). See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lgn.benchmark import _packed_rate
from lgn.compiler import c_build, c_emit, formats, pipeline
from lgn.compiler.ir import GateGraph
from lgn.compiler.random_graph import random_layered

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RANDOM = ("random:784x2x3000", "random:784x4x2000", "random:256x3x2500")
SAMPLES = 51_200


def load(spec: str) -> GateGraph:
    """A model file, or ``random:INPUTSxLAYERSxWIDTH`` (two-input gates, 10 classes, seed 1); simplified."""
    if spec.startswith("random:"):
        try:
            inputs, layers, width = (int(part) for part in spec.removeprefix("random:").split("x"))
        except ValueError:
            raise SystemExit(f"{spec!r}: write random:INPUTSxLAYERSxWIDTH, e.g. random:784x2x3000") from None
        return pipeline.simplify(random_layered(inputs, layers, width, classes=10, seed=1))
    return pipeline.simplify(formats.load_npz(spec))


def compare(spec: str, isa: str, rounds: int) -> str:
    graph = load(spec)
    x = np.random.default_rng(0).integers(0, 2, size=(SAMPLES, graph.n_inputs), dtype=np.uint8)
    nets, build = {}, {}
    with tempfile.TemporaryDirectory() as cache:
        for shape in ("table", "straight"):
            start = time.perf_counter()
            nets[shape] = c_build.compile_c(graph, isa=isa, shape=shape, threads=1, cache_dir=Path(cache))
            build[shape] = time.perf_counter() - start
        packed = c_build.pack_bits(x, nets["table"].lanes)
        first = [net.predict_packed(packed, SAMPLES) for net in nets.values()]
        if not np.array_equal(*first):
            raise SystemExit(f"{spec} {isa}: the two shapes disagree on the classes")
        best = dict.fromkeys(nets, 0.0)
        for _ in range(rounds):
            for shape, net in nets.items():
                best[shape] = max(best[shape], _packed_rate(net, packed, SAMPLES))
    auto = c_emit.choose_shape(graph, "auto")
    return (
        f"{spec} ({graph.n_gates:,} gates, arity {graph.arity}) {isa}: table {best['table'] / 1e6:.1f} M/s "
        f"(gcc {build['table']:.1f} s), straight {best['straight'] / 1e6:.1f} M/s (gcc {build['straight']:.1f} s): "
        f"straight / table {best['straight'] / best['table']:.2f}x; auto picks {auto}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graphs", nargs="*")
    parser.add_argument("--isa", default=",".join(i for i in c_build.host_isas() if i != "portable") or "portable")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    graphs = args.graphs or [*map(str, sorted((ROOT / "models").glob("*.npz"))), *DEFAULT_RANDOM]
    isas = [c_build.resolve_isa(isa) for isa in args.isa.split(",")]
    for spec in graphs:
        for isa in isas:
            print(compare(spec, isa, max(1, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
