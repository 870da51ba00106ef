"""Defaults that follow the data (training/sizing.py), the health findings at the end of a run
(training/health.py), and what a user sees: the printed choices, the warning and --strict."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from lgn.cli import main

torch = pytest.importorskip("torch")

from lgn.training import health, sizing  # noqa: E402
from lgn.training.config import FROM_THE_DATA, TrainConfig  # noqa: E402
from lgn.training.data import Dataset, load_dataset  # noqa: E402
from lgn.training.encoding import fit_encoder, supervised_thresholds  # noqa: E402

QUIET = ["--no-progress"]


def _table(rows: int, classes: int, features: int = 3, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    y = rng.integers(0, classes, rows)
    return Dataset("t", x, y, x[:10], y[:10], classes, None)


def _write(path: Path, header: list[str], rows) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_images_keep_the_classic_defaults():
    cfg, lines = sizing.resolve(TrainConfig(dataset="digits"), load_dataset("digits"))
    assert cfg.resolved and lines == []
    assert (cfg.layers, cfg.width, cfg.thresholds, cfg.steps) == (4, 2000, 1, 10_000)
    assert (cfg.estimator, cfg.lr_schedule) == ("soft,ste", "constant")


def test_tables_get_sizes_from_their_rows_and_every_given_flag_stays():
    small, large = _table(300, 2), _table(40_000, 2)
    cfg_small, lines = sizing.resolve(TrainConfig(), small)
    cfg_large, _ = sizing.resolve(TrainConfig(), large)
    assert not cfg_small.resolved and cfg_small.tau is None  # a small table's tau: searched by the trainer
    assert cfg_large.resolved and cfg_large.tau == 10.0
    assert cfg_small.layer_widths == [300, 300] and cfg_large.layer_widths == [1000, 1000]
    assert cfg_small.steps == 2000 and cfg_large.steps == 12_000  # the bounds
    assert cfg_small.estimator == "ste" and cfg_small.thresholds == 16 and cfg_small.lr_schedule == "cosine"
    assert lines[0].startswith("table of 300 training rows, 3 columns (3 numeric, 0 categorical), 2 classes ->")
    given = TrainConfig(
        layers=3,
        width=50,
        thresholds=4,
        steps=77,
        estimator="soft",
        lr_schedule="constant",
        connections="random",
        tau=5.0,
    )
    again, lines = sizing.resolve(given, small)
    assert again == given and lines == []  # nothing left to choose, nothing said


def test_the_last_layer_rounds_to_the_classes_where_the_user_did_not_set_it():
    cfg, lines = sizing.resolve(TrainConfig(), _table(300, 7))
    assert cfg.layer_widths == [300, 294] and "294 gates instead of 300, a multiple of the 7 classes" in lines[-1]
    cfg, _ = sizing.resolve(TrainConfig(), _table(300, 400))  # more classes than gates: one gate each
    assert cfg.layer_widths[-1] == 400


def test_every_setting_from_the_data_defaults_to_none_and_refuses_use_before_resolving():
    cfg = TrainConfig()
    assert all(getattr(cfg, name) is None for name in FROM_THE_DATA) and not cfg.resolved
    with pytest.raises(Exception, match="resolve the configuration first"):
        cfg.layer_widths  # noqa: B018


@pytest.mark.parametrize("k", [1, 2, 5, 16])
def test_supervised_thresholds_find_a_rule_cut_and_stay_within_the_values(k):
    rng = np.random.default_rng(1)
    column = rng.uniform(0, 1000, 3000).round(1)
    labels = (column > 437.0).astype(int)
    found = supervised_thresholds(column, labels, k)
    assert len(found) <= k and np.all(np.diff(found) > 0)
    assert found.min() >= column.min() and found.max() < column.max()
    # the cut between the two classes is one of them: the bit of that threshold is the label
    assert any(np.array_equal(column > t, labels.astype(bool)) for t in found)


def test_a_constant_column_gets_no_threshold():
    data = Dataset("t", np.ones((50, 1)), np.arange(50) % 2, np.ones((5, 1)), np.arange(5) % 2, 2, None)
    assert len(fit_encoder(data, 8, "supervised").feature) == 0


def test_health_findings():
    assert health.findings(0.9, 0.9, 0.6, "a", 1000, "ste", 0.5) == []
    [line] = health.findings(0.51, 0.84, 0.754, "<=50K", 16_281, "soft", 0.97)
    assert "not clearly better than always answering '<=50K' (75.4%" in line and "--estimator ste" in line
    [line] = health.findings(0.70, 0.95, 0.5, "a", 1000, "soft", 0.2)  # useful, but lost in discretization
    assert "relaxed network reaches 95.0%" in line and "--estimator ste" in line
    [line] = health.findings(0.60, 0.60, 0.6, "a", 1000, "ste", 0.95)
    assert "95% of the gates stayed constants or pass-throughs; try --init gaussian or more --steps" in line
    assert health.clearly_better(0.80, 0.70, 10_000) and not health.clearly_better(0.71, 0.70, 100)


@pytest.fixture(scope="module")
def rule_csv(tmp_path_factory) -> Path:
    """A two-class rule of one numeric and one categorical column, plus noise columns."""
    rng = np.random.default_rng(5)
    n = 600
    amount = rng.uniform(0, 100, n).round(2)
    kind = rng.choice(["a", "b", "c"], n)
    noise = rng.normal(size=n).round(3)
    label = np.where((kind == "a") ^ (amount > 60), "yes", "no")
    path = tmp_path_factory.mktemp("rule") / "rule.csv"
    return _write(path, ["amount", "kind", "noise", "label"], zip(amount, kind, noise, label))


def test_the_defaults_learn_a_rule_table_and_say_what_they_chose(rule_csv, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(rule_csv), "--label", "label", "--out", str(out), "--seed", "2"]) == 0
    err = capsys.readouterr().err
    assert "table of 432 training rows, 3 columns (2 numeric, 1 categorical), 2 classes -> 2 layers x 300 gates" in err
    final = [json.loads(line) for line in Path(f"{out}.metrics.jsonl").read_text().splitlines()][-1]
    assert final["test_acc_discrete"] > final["majority_acc"] + 0.2 and final["warnings"] == []
    assert final["test_acc_discrete"] >= 0.95


def test_a_table_built_to_collapse_is_reported_and_fails_under_strict(tmp_path, capsys):
    """Labels that no column predicts: the model cannot beat the constant, and the run says so."""
    rng = np.random.default_rng(3)
    rows = zip(rng.normal(size=400).round(3), rng.choice(["x", "y"], 400), rng.choice(["p", "q"], 400, p=[0.8, 0.2]))
    data = _write(tmp_path / "noise.csv", ["v", "c", "label"], rows)
    args = ["train", "--data", str(data), "--label", "label", "--steps", "200", *QUIET]
    assert main([*args, "--out", str(tmp_path / "a.st")]) == 0
    err = capsys.readouterr().err
    assert err.count("lgn: warning: ") >= 1 and "not clearly better than always answering 'p'" in err
    final = [json.loads(line) for line in (tmp_path / "a.st.metrics.jsonl").read_text().splitlines()][-1]
    assert final["warnings"] and final["majority_acc"] > 0.7
    assert main([*args, "--out", str(tmp_path / "b.st"), "--strict"]) == 1
    assert "--strict" in capsys.readouterr().err and (tmp_path / "b.st").exists()  # the model is still written


def test_the_demo_on_a_table_takes_the_table_defaults_not_the_image_network():
    from lgn.cli import build_parser
    from lgn.cli.demo import resolve_defaults
    from lgn.training.config import DEMO

    args = build_parser().parse_args(["demo", "--data", "t.csv", "--label", "y", "--tau", "4"])
    resolve_defaults(args)
    assert args.arity == 2 and args.width is None and args.connections == TrainConfig().connections
    assert args.tau == 4  # given: kept
    args = build_parser().parse_args(["demo"])
    resolve_defaults(args)
    assert (args.arity, args.width, args.connections) == (DEMO.arity, DEMO.width, DEMO.connections)


def test_a_test_file_category_unseen_in_training_is_read_as_none_of_the_known_ones(tmp_path, capsys):
    rng = np.random.default_rng(6)
    rows = zip(rng.normal(size=200).round(2), rng.choice(["a", "b"], 200), rng.choice(["p", "q"], 200))
    train = _write(tmp_path / "train.csv", ["v", "c", "label"], rows)
    test = _write(tmp_path / "test.csv", ["v", "c", "label"], [[0.5, "a", "p"], [0.1, "new", "q"], [1.0, "b", "q"]])
    args = ["train", "--data", str(train), "--test", str(test), "--label", "label", "--steps", "50", *QUIET]
    assert main([*args, "--out", str(tmp_path / "m.st")]) == 0
    assert "column 'c': 1 row(s) with a category not seen in training" in capsys.readouterr().err


def test_the_choices_are_printed_without_the_progress_bar_too(rule_csv, tmp_path, capsys):
    args = ["train", "--data", str(rule_csv), "--label", "label", "--steps", "20", "--out", str(tmp_path / "m.st")]
    assert main([*args, *QUIET]) == 0
    err = capsys.readouterr().err
    assert err.startswith("table of 432 training rows") and "(given: steps); every flag overrides" in err


def test_a_table_whose_columns_are_all_constant_is_one_line(tmp_path, capsys):
    data = _write(tmp_path / "c.csv", ["v", "label"], [[1.0, "a" if i % 2 else "b"] for i in range(40)])
    assert main(["train", "--data", str(data), "--label", "label", "--out", str(tmp_path / "m.st"), *QUIET]) == 2
    assert "every column of c.csv is constant in the training rows" in capsys.readouterr().err


def test_supervised_thresholds_find_a_cut_that_only_matters_with_another_column():
    """The parity of two thresholded columns: neither column alone splits the classes, the tree over all of
    them does, and its cuts become input bits."""
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, size=(3000, 4)).round(3)
    y = ((x[:, 0] > 0.3) ^ (x[:, 1] < -0.2)).astype(np.int64)
    encoder = fit_encoder(Dataset("xor", x, y, x[:5], y[:5], 2, None), 16, "supervised")
    for f, cut in ((0, 0.3), (1, -0.2)):
        mine = encoder.threshold[encoder.feature == f]
        assert np.min(np.abs(mine - cut)) < 0.01, (f, mine)  # within half a percent of the range


@pytest.mark.parametrize("dataset", ["iris", "wine", "breast-cancer"])
def test_the_defaults_beat_the_majority_class_on_benchmark_tables(dataset, tmp_path):
    """Three of bench/tabular.py's tables (scikit-learn's, with their fixed split), defaults only, one seed:
    well above answering the majority class, and nothing to warn about."""
    out = tmp_path / "m.st"
    assert main(["train", "--dataset", dataset, "--seed", "1", "--out", str(out), *QUIET]) == 0
    final = [json.loads(line) for line in Path(f"{out}.metrics.jsonl").read_text().splitlines()][-1]
    assert final["test_acc_discrete"] >= final["majority_acc"] + 0.25 and final["warnings"] == []
