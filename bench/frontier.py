"""The accuracy-per-gate frontier (not a test): a sweep of training runs, each measured the same way, side by
side. See docs/results.md for the table and bench/results/frontier.png for the plot.

    python bench/frontier.py                 # every point (hours on 2 CPU cores); results accumulate
    python bench/frontier.py --quick         # every point with 150 steps: a smoke run of the pipeline
    python bench/frontier.py --only NAME,... # some points (the others keep their earlier results)
    python bench/frontier.py --report        # the table and the plot from the results so far
    python bench/frontier.py --seeds 3 --only NAME  # seeds 1, 2, 3 of a point: mean, min and max in the table

Seed 1 of a point is stored under its name, seed s > 1 under ``NAME@seedS``; the table shows one row per point,
the mean of its seeds with their range, and says which rows are a single run.

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
from lgn.compiler import c_build, fpga, hardware, pipeline
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


def config_of(name: str, quick: bool, seed: int = 1) -> TrainConfig:
    fields = dict(POINTS[name])
    if quick:
        fields["steps"] = 150
    steps = fields["steps"]
    return TrainConfig(
        **fields,
        batch_size=128,
        eval_every=max(1, steps // 20),
        seed=seed,
        out=str(RESULTS / "frontier" / f"{run_key(name, seed)}.safetensors"),
        progress=False,
    )


def run_key(name: str, seed: int) -> str:
    """Where a point's run of ``seed`` is stored: seed 1 under the point's own name (the runs before seeds)."""
    return name if seed == 1 else f"{name}@seed{seed}"


def point_of(key: str) -> str:
    return key.split("@seed")[0]


def measure(name: str, quick: bool, seed: int = 1) -> dict:
    """Train one point with one seed and measure everything about it."""
    cfg = config_of(name, quick, seed)
    start = time.perf_counter()
    train(cfg)
    return measure_checkpoint(Path(cfg.out), run_key(name, seed), (time.perf_counter() - start) / 60, quick)


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
    whole = ours = packed = None
    if not quick:  # the whole design (encoder, network, compressor-tree GroupSum, argmax), LUT-native
        part, ours = fpga.synth_lut_native(simple, "xilinx", timeout=1800)
        whole = part.luts
        packed = hardware.part_sizes(simple, 6)[hardware.DUAL_OUTPUT]  # as Vivado counts (LUT6_2 sites)
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
        "lut6_whole_packed": packed,
        "seed": cfg.seed,
        "c_images_per_s_one_core": rate(net.predict_features, np.concatenate([raw] * 5)),
        "train_minutes": minutes,
        "quick": quick,
    }


def load_results(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text()) if path.exists() else {}


def grouped(results: dict[str, dict]) -> list[dict]:
    """One summary per point over its seeds' runs: the mean of each figure, the test accuracy's min and max,
    and the number of runs (a figure a run lacks is left out of its mean)."""
    points: dict[str, list[dict]] = {}
    for key, r in results.items():
        points.setdefault(point_of(key), []).append(r)
    summaries = []
    for point, runs in points.items():
        summary = dict(max(runs, key=lambda r: r.get("seed", 1) == 1), name=point, runs=len(runs))
        for field in ("test_acc", "gates_simplified", "lut6", "yosys_lut6_whole", "lut6_whole_packed",
                      "c_images_per_s_one_core", "train_minutes"):  # fmt: skip
            values = [r[field] for r in runs if r.get(field) is not None]
            summary[field] = float(np.mean(values)) if values else None
        accs = [r["test_acc"] for r in runs]
        summary["test_acc_min"], summary["test_acc_max"] = min(accs), max(accs)
        summaries.append(summary)
    return sorted(summaries, key=lambda r: (r["dataset"], -r["test_acc"]))


def table(results: dict[str, dict]) -> str:
    lines = [
        "| point | test acc | seeds | gates (simplified) | LUT6 (mapped) | LUT6, whole design: plain / LUT6_2 sites "
        "| C images/s, 1 core | training | command (seed 1) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in grouped(results):
        whole = f"{r['yosys_lut6_whole']:,.0f}" if r.get("yosys_lut6_whole") else "-"
        if r.get("lut6_whole_packed"):
            whole += f" / {r['lut6_whole_packed']:,.0f}"
        acc = f"{100 * r['test_acc']:.2f}%"
        seeds = "1 (a single run)"
        if r["runs"] > 1:
            acc += f" ({100 * r['test_acc_min']:.2f}-{100 * r['test_acc_max']:.2f})"
            seeds = f"{r['runs']}, mean (min-max)"
        lines.append(
            f"| {r['name']} | {acc} | {seeds} | {r['gates_simplified']:,.0f} (arity {r['arity']}) | "
            f"{r['lut6']:,.0f} | {whole} | {r['c_images_per_s_one_core'] / 1e6:.1f} M | {_minutes(r)} | "
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
        ours = [r for r in grouped(results) if r["dataset"] == dataset]
        for learned, marker, label in ((False, "o", "lgn, fixed wiring"), (True, "s", "lgn, learned wiring")):
            points = [r for r in ours if r["learned"] == learned]
            accs = np.array([100 * r["test_acc"] for r in points])
            spread = np.array(
                [[a - 100 * r["test_acc_min"], 100 * r["test_acc_max"] - a] for a, r in zip(accs, points)]
            )
            ax.errorbar([r["gates_simplified"] for r in points], accs, yerr=spread.T.reshape(2, -1), fmt=marker,
                        capsize=2, label=f"{label} (bars: seeds' range)", zorder=3)  # fmt: skip
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
    parser.add_argument("--seeds", type=int, default=1, help="train seeds 1..N of each point (default: 1)")
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
            for seed in range(1, args.seeds + 1):
                print(f"== {name}, seed {seed}", flush=True)
                results[run_key(name, seed)] = measure(name, args.quick, seed)
                RESULTS.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(results, indent=1))
    print(table(results))
    plot(results, path.with_suffix(".png"))
    print(f"wrote {path} and {path.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
