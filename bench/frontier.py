"""The accuracy-per-gate frontier (not a test): a sweep of training runs, each measured the same way, side by
side. See docs/results.md for the table and bench/results/frontier.png for the plot.

    python bench/frontier.py                 # every point (hours on 2 CPU cores); results accumulate
    python bench/frontier.py --quick         # every point with 150 steps: a smoke run of the pipeline
    python bench/frontier.py --only NAME,... # some points (the others keep their earlier results)
    python bench/frontier.py --report        # the table and the plot from the results so far

Per point: the test accuracy of the checkpoint chosen on the validation split, gates after simplification
(pass-throughs removed, as the literature counts), LUT6 after `lgn simplify --lut 6`, the LUT6 count of
the whole design (encoder, network, compressor-tree GroupSum, argmax: our LUT6 mapping of the lowered design,
emitted as LUT6 cells and counted by yosys `synth_xilinx`, as `lgn synth --target xilinx` reports it), C images per
second on one core from uint8 pixels, and the training minutes on this machine. The command that trains
each point is printed in the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from lgn.benchmark import rate
from lgn.cli.options import command_line
from lgn.compiler import c_build, fpga, pipeline
from lgn.compiler.verify import verify_c_features
from lgn.training.checkpoint import load_checkpoint
from lgn.training.config import TrainConfig
from lgn.training.data import encoded_test_split
from lgn.training.export import to_graph
from lgn.training.trainer import train

RESULTS = Path(__file__).parent / "results"

# name -> (TrainConfig fields, what the point shows). Width beats depth: two or three layers throughout.
LEARNED = dict(connections="learned", estimator="soft,ste", wiring_lr=0.05)
POINTS: dict[str, dict] = {
    "mnist-fixed-2x4000": dict(dataset="mnist", widths=(4000, 4000), steps=20_000),
    "mnist-fixed-6x8000": dict(dataset="mnist", widths=(8000,) * 6, crop=20, steps=20_000),
    "mnist-learned-2x4000-soft": dict(
        dataset="mnist", widths=(4000, 4000), steps=20_000, candidates="16,8", **{**LEARNED, "estimator": "soft"}
    ),
    "mnist-learned-2x4000": dict(dataset="mnist", widths=(4000, 4000), steps=20_000, candidates="16,8", **LEARNED),
    "mnist-learned-2x4000-gumbel": dict(
        dataset="mnist", widths=(4000, 4000), steps=20_000, candidates="16,8", **{**LEARNED, "estimator": "soft,gumbel"}
    ),
    "mnist-learned-2x1000": dict(dataset="mnist", widths=(1000, 1000), steps=20_000, candidates="16,8", **LEARNED),
    "mnist-learned-a4-1500-500": dict(
        dataset="mnist", widths=(1500, 500), arity=4, steps=20_000, candidates="16,8", **LEARNED
    ),
    "mnist-learned-a6-1500-500": dict(
        dataset="mnist", widths=(1500, 500), arity=6, steps=20_000, candidates="16,8", **LEARNED
    ),
    "mnist-fixed-a6-1500-500": dict(dataset="mnist", widths=(1500, 500), arity=6, steps=20_000),
    "fashion-fixed-2x4000": dict(dataset="fashion-mnist", widths=(4000, 4000), steps=20_000),
    "fashion-learned-2x4000": dict(
        dataset="fashion-mnist", widths=(4000, 4000), steps=20_000, candidates="16,8", **LEARNED
    ),
    "fashion-learned-a6-1500-500": dict(
        dataset="fashion-mnist", widths=(1500, 500), arity=6, steps=20_000, candidates="16,8", **LEARNED
    ),
}
# Published points (their authors' figures; see shared docs/anchors.md), drawn beside ours.
ANCHORS = [
    ("difflogic 2022 (fixed wiring)", "mnist", 48_000, 0.9769),
    ("LILogic (learned, Top-K)", "mnist", 4_000, 0.9796),
    ("LILogic (learned, Top-K)", "mnist", 8_000, 0.9845),
    ("LILogic (learned, Top-K)", "mnist", 32_000, 0.9895),
    ("Mommen et al. (learned)", "mnist", 8_000, 0.98),
    ("DWN (LUT6 nodes, ~LUTs)", "mnist", 1_400, 0.979),
    ("difflogic 2022 (fixed wiring)", "fashion-mnist", 48_000, 0.87),
]


def config_of(name: str, quick: bool) -> TrainConfig:
    fields = dict(POINTS[name])
    if quick:
        fields["steps"] = 150
    steps = fields["steps"]
    return TrainConfig(
        **fields,
        batch_size=128,
        eval_every=max(1, steps // 20),
        seed=1,
        out=str(RESULTS / "frontier" / f"{name}.safetensors"),
        progress=False,
    )


def measure(name: str, quick: bool) -> dict:
    """Train one point and measure everything about it."""
    cfg = config_of(name, quick)
    start = time.perf_counter()
    train(cfg)
    return measure_checkpoint(Path(cfg.out), name, (time.perf_counter() - start) / 60, quick)


def config_of_checkpoint(info: dict) -> TrainConfig:
    """The TrainConfig a checkpoint was trained with (its metadata keeps every field)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    stored = {k: tuple(v) if isinstance(v, list) else v for k, v in info["config"].items() if k in fields}
    return TrainConfig(**stored)


def training_minutes(path: Path) -> float | None:
    """The run's own wall-clock minutes, from the final record of its metrics file."""
    metrics = Path(f"{path}.metrics.jsonl")
    if not metrics.exists():
        return None
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    final = [r for r in records if r.get("final")]
    return round(final[-1]["seconds"] / 60, 2) if final else None


def measure_checkpoint(path: Path, name: str, minutes: float | None, quick: bool = False) -> dict:
    """Measure a trained checkpoint: its test accuracy (chosen on validation), gates, LUT6, yosys LUT6 of the
    whole design, C images/s on one core, all checked (C against the evaluator on every test image)."""
    model, encoder, info = load_checkpoint(path)
    cfg = config_of_checkpoint(info)
    graph = to_graph(model, encoder, info["names"])
    simple = pipeline.simplify(graph)
    luts = pipeline.simplify(graph, lut=6)
    raw, bits, labels = encoded_test_split(encoder, cfg.dataset, cfg.data_dir)
    net = c_build.compile_c(simple, threads=1)
    check = verify_c_features(simple, net, raw)
    if not check.ok:
        raise SystemExit(f"{name}: the C library disagrees with the evaluator ({check.summary()})")
    assert check.got is not None
    whole = ours = None
    if not quick:  # the whole design (encoder, network, compressor-tree GroupSum, argmax), LUT-native
        part, ours = fpga.synth_lut_native(simple, "xilinx", timeout=1800)
        whole = part.luts
    return {
        "name": name,
        "dataset": cfg.dataset,
        "command": command_line("lgn train", cfg, skip=("progress", "metrics", "out", "eval_every")),
        "arity": cfg.arity,
        "learned": cfg.connections == "learned",
        "estimator": cfg.estimator,
        "validation_acc": info.get("acc_discrete"),
        "test_acc": info["test_acc_discrete"],
        "c_accuracy": float(np.mean(check.got.classes == labels)),
        "gates": graph.n_gates,
        "gates_simplified": simple.n_gates,
        "lut6": luts.n_gates,
        "yosys_lut6_whole": whole,
        "lut6_whole_ours": ours,
        "c_images_per_s_one_core": rate(net.predict_features, np.concatenate([raw] * 5)),
        "train_minutes": minutes,
        "quick": quick,
    }


def load_results(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text()) if path.exists() else {}


def table(results: dict[str, dict]) -> str:
    lines = [
        "| point | test acc | gates (simplified) | LUT6 (mapped) | LUT6, whole design | C images/s, 1 core "
        "| training | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(results.values(), key=lambda r: (r["dataset"], -r["test_acc"])):
        whole = f"{r['yosys_lut6_whole']:,}" if r.get("yosys_lut6_whole") else "-"
        lines.append(
            f"| {r['name']} | {100 * r['test_acc']:.2f}% | {r['gates_simplified']:,} (arity {r['arity']}) | "
            f"{r['lut6']:,} | {whole} | {r['c_images_per_s_one_core'] / 1e6:.1f} M | {_minutes(r)} | "
            f"`{r['command']}` |"
        )
    return "\n".join(lines)


def _minutes(r: dict) -> str:
    return f"{r['train_minutes']:.0f} min" if r.get("train_minutes") is not None else "-"


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    datasets = sorted({r["dataset"] for r in results.values()} | {"mnist"})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.0 * len(datasets), 4.4), dpi=110, squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        ours = [r for r in results.values() if r["dataset"] == dataset]
        for learned, marker, label in ((False, "o", "lgn, fixed wiring"), (True, "s", "lgn, learned wiring")):
            points = [r for r in ours if r["learned"] == learned]
            ax.scatter([r["gates_simplified"] for r in points], [100 * r["test_acc"] for r in points],
                       marker=marker, label=label, zorder=3)  # fmt: skip
            for r in points:
                ax.annotate(f"a{r['arity']}", (r["gates_simplified"], 100 * r["test_acc"]), fontsize=7)
        anchors = [a for a in ANCHORS if a[1] == dataset]
        ax.scatter([a[2] for a in anchors], [100 * a[3] for a in anchors], marker="x", color="gray",
                   label="published (their counts)", zorder=2)  # fmt: skip
        for label, _, gates, acc in anchors:
            ax.annotate(label, (gates, 100 * acc), fontsize=6, color="gray")
        ax.set(xscale="log", title=f"{dataset}: accuracy vs gates", xlabel="gates (a LUT6 counts as one)")
        ax.set(ylabel="test accuracy, %")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labelled minor ticks overlap
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="150 steps per point (a smoke run)")
    parser.add_argument("--only", help="comma-separated point names (default: all)")
    parser.add_argument("--report", action="store_true", help="only print the table and draw the plot")
    parser.add_argument(
        "--measure", nargs="+", metavar="CHECKPOINT",
        help="measure trained checkpoints (named by their file stem) instead of training the sweep; each row's "
        "command comes from the config the checkpoint stores",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.measure:
        path = RESULTS / "frontier.json"
        results = load_results(path)
        for checkpoint in map(Path, args.measure):
            print(f"== {checkpoint}", flush=True)
            results[checkpoint.stem] = measure_checkpoint(checkpoint, checkpoint.stem, training_minutes(checkpoint))
            RESULTS.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=1))
        print(table(results))
        plot(results, path.with_suffix(".png"))
        return 0
    names = args.only.split(",") if args.only else list(POINTS)
    unknown = [n for n in names if n not in POINTS]
    if unknown:
        parser.error(f"unknown points {unknown}; choose from {', '.join(POINTS)}")
    path = RESULTS / ("frontier-quick.json" if args.quick else "frontier.json")
    results = load_results(path)
    if not args.report:
        print(f"{os.cpu_count()} cores; {len(names)} points", flush=True)
        for name in names:
            print(f"== {name}", flush=True)
            results[name] = measure(name, args.quick)
            RESULTS.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(results, indent=1))
    print(table(results))
    plot(results, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
