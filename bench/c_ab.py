"""The C kernels of two revisions side by side (not a test): has a change to the emitted C made it faster?

    python bench/c_ab.py BASE [GRAPH.npz ...] [--isa avx512] [--shape auto] [--rounds 7]
                         [--input packed|bytes|pixels] [--samples N]

For each graph (default: every models/*.npz), emits the C library as revision BASE of this repository does it
(a temporary git worktree, imported in a subprocess) and as the working tree does it, builds both with the same
compiler and flags, checks that both give the same classes, and times ``predict_packed`` on the same random
packed blocks (``--input bytes``: ``predict`` on the same 0/1 bytes, one per input; ``--input pixels``:
``predict_features`` on the same random uint8 features, for graphs with an encoder; ``--samples``: how many per
call, default 100 blocks), alternating between the two (best of ``--rounds`` each), so that a busy moment of a
shared machine slows both alike. Prints images/s per side and the ratio. The library ABI (``predict_packed``)
must be the same at BASE. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from lgn.compiler import c_build, c_emit, formats
from lgn.compiler.ir import GateGraph

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("compiler", "templates", "training", "kernels")  # lgn.<name> is the repository's folder <name>
EMIT_AT_BASE = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from lgn.compiler import c_emit, formats
graph = formats.load_npz(sys.argv[2])
for name, text in c_emit.library_files(graph, isa=sys.argv[3], shape=sys.argv[4]).files.items():
    (Path(sys.argv[5]) / name).write_text(text)
"""


def base_tree(revision: str, work: Path) -> Path:
    """A folder whose ``lgn`` package is the code of ``revision`` (the repository's folders mapped as the
    installed package maps them), for a subprocess to import instead of the installed one."""
    tree = work / "worktree"
    add = ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), revision]
    if subprocess.run(add, capture_output=True, text=True).returncode != 0:
        raise SystemExit(f"cannot check out {revision!r}: name a commit of this repository (e.g. HEAD~3)")
    shim = work / "shim" / "lgn"
    shim.mkdir(parents=True)
    for entry in (tree / "lgn").iterdir():
        (shim / entry.name).symlink_to(entry)
    for name in PACKAGES:
        (shim / name).symlink_to(tree / name)
    return shim.parent


def emit_at_base(shim: Path, path: Path, isa: str, shape: str, out: Path) -> dict[str, str]:
    out.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(shim))
    args = [str(shim), str(path), isa, shape, str(out)]
    subprocess.run([sys.executable, "-c", EMIT_AT_BASE, *args], check=True, env=env, cwd=out)
    return {p.name: p.read_text() for p in out.iterdir()}


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def compare(
    graph: GateGraph,
    base_files: dict,
    isa: str,
    shape: str,
    rounds: int,
    cache: Path,
    source: str,
    samples: int | None = None,
) -> tuple:
    """(base images/s, working tree images/s) from ``source`` (packed bits, 0/1 bytes or uint8 pixels), one
    thread, best of ``rounds`` alternating."""
    ours = c_emit.library_files(graph, isa=isa, shape=shape)
    nets = [
        c_build.CompiledNet(graph, c_build.build_shared(files, isa, cache), isa, shape, threads=1)
        for files in (base_files, ours.files)
    ]
    samples = samples or 100 * nets[0].lanes
    rng = np.random.default_rng(0)
    if source == "pixels":
        if graph.encoder is None:
            raise SystemExit("--input pixels needs graphs with an encoder")
        raw = rng.integers(0, 256, (samples, graph.encoder.n_features)).astype(np.uint8)
        runs = [partial(net.predict_features, raw) for net in nets]
    elif source == "bytes":
        bits = rng.integers(0, 2, (samples, graph.n_inputs)).astype(np.uint8)
        runs = [partial(net.predict, bits) for net in nets]
    else:
        packed = c_build.pack_bits(rng.integers(0, 2, (samples, graph.n_inputs)), nets[0].lanes)
        runs = [partial(net.predict_packed, packed, samples) for net in nets]
    if not np.array_equal(runs[0](), runs[1]()):
        raise SystemExit("the two revisions' libraries disagree: compare them with lgn verify first")
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for side, run in enumerate(runs):
            best[side] = min(best[side], seconds(run))
    return samples / best[0], samples / best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the git revision to compare the working tree with (e.g. HEAD~3)")
    parser.add_argument("graphs", nargs="*", type=Path, help="IR .npz files (default: models/*.npz)")
    parser.add_argument("--isa", default="native", help="native, avx512, avx2 or portable")
    parser.add_argument("--shape", default="auto", choices=c_emit.SHAPES)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--input", choices=("packed", "bytes", "pixels"), default="packed")
    parser.add_argument("--samples", type=int, default=None, help="samples per call (default: 100 blocks)")
    args = parser.parse_args()
    isa = c_build.resolve_isa(args.isa)
    graphs = args.graphs or sorted((ROOT / "models").glob("*.npz"))
    with tempfile.TemporaryDirectory(prefix="lgn-ab-") as tmp:
        work = Path(tmp)
        try:
            shim = base_tree(args.base, work)
            source = {"packed": "packed bits", "bytes": "0/1 bytes", "pixels": "uint8 features"}[args.input]
            print(f"C from {source}, one thread, {isa}, best of {args.rounds} alternating rounds")
            print(f"{'graph':40s} {'shape':9s} {args.base[:14]:>14s} {'working tree':>14s} {'ratio':>7s}")
            for n, path in enumerate(graphs):
                graph = formats.load_npz(path)
                shape = c_emit.choose_shape(graph, args.shape)
                base_files = emit_at_base(shim, path.resolve(), isa, shape, work / f"emit{n}")
                old, new = compare(graph, base_files, isa, shape, args.rounds, work / "cache", args.input, args.samples)
                print(f"{path.name:40s} {shape:9s} {old / 1e6:11.2f} M/s {new / 1e6:11.2f} M/s {new / old:6.2f}x")
        finally:
            remove = ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "worktree")]
            subprocess.run(remove, check=False, capture_output=True)


if __name__ == "__main__":
    main()
