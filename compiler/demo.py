"""``lgn demo``: the main job on the embedded default.

Training and the C/Verilog backends are separate issues; until they land, the demo runs the part
that exists on a random network shaped like a trained MNIST net (784 inputs, 6 layers of 2,000
2-input gates, half of them pass-throughs): simplify, merge into LUT6, prove both equivalent to the
original with the reference evaluator, and write a report.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import formats, pipeline
from .errors import LgnError
from .random_graph import random_layered
from .verify import compare_graphs


def run_demo(args) -> int:
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LgnError(f"{out}: cannot create the output folder: {exc.strerror or exc}") from None
    rows: list[tuple[str, str]] = []

    def step(message: str) -> None:
        print(f"[demo] {message}", flush=True)

    step("generating a random 784 -> 6 x 2000 network (50% pass-throughs, 10 classes)")
    graph = random_layered(784, 6, 2000, arity=2, classes=10, pass_through=0.5, seed=args.seed)
    formats.save_npz(graph, out / "graph.npz")

    step("simplifying")
    start = time.perf_counter()
    simple = pipeline.simplify(graph)
    t_simplify = time.perf_counter() - start
    formats.save_npz(simple, out / "graph.simplified.npz")

    step("merging into 6-input LUTs")
    start = time.perf_counter()
    luts = pipeline.simplify(simple, lut=6)
    t_lut = time.perf_counter() - start
    formats.save_npz(luts, out / "graph.lut6.npz")

    step("verifying both against the original with the reference evaluator")
    checks = [("simplified", compare_graphs(graph, simple)), ("LUT6", compare_graphs(graph, luts))]

    passes = pipeline.pass_through_count(graph)
    rows += [
        ("gates (input)", f"{graph.n_gates} ({passes} pass-throughs, {passes / graph.n_gates:.0%})"),
        ("gates after simplify (pass-throughs removed)", f"{simple.n_gates} in {t_simplify:.2f} s"),
        ("6-input LUTs after merging", f"{luts.n_gates} in {t_lut:.2f} s"),
    ]
    rows += [(f"original vs {name}", report.summary()) for name, report in checks]
    report = ["# lgn demo report", "", "| figure | value |", "|---|---|"]
    report += [f"| {k} | {v} |" for k, v in rows]
    report += [
        "",
        "Reproduce: `lgn random --inputs 784 --layers 6 --width 2000 --pass-through 0.5 --out g.npz`, "
        "`lgn simplify g.npz --out s.npz`, `lgn simplify g.npz --lut 6 --out l.npz`, "
        "`lgn verify g.npz --against l.npz`.",
        "",
        "Training, the C library and the Verilog are separate issues; this demo grows with them.",
    ]
    (out / "report.md").write_text("\n".join(report) + "\n")
    for k, v in rows:
        print(f"  {k:48s} {v}")
    print(f"[demo] wrote {out}/report.md")
    return 0 if all(r.ok for _, r in checks) else 1
