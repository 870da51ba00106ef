"""The GroupSum temperature of a small table, cross-validated on its training rows (training/tau_search.py):
the folds partition the rows by class, the search keeps the best score and breaks ties as documented, and a
run on defaults says what it chose while a given --tau skips the search."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")

from lgn.cli import main  # noqa: E402
from lgn.training import sizing, tau_search  # noqa: E402
from lgn.training.config import TrainConfig  # noqa: E402
from lgn.training.data import Dataset  # noqa: E402


def _table(rows: int, classes: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = rng.integers(0, classes, rows)
    return Dataset("t", x, y, x[:10], y[:10], classes, None)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(6, 300), classes=st.integers(1, 5), k=st.integers(2, 5), seed=st.integers(0, 2**32))
def test_folds_hold_every_training_row_once_and_deal_each_class_evenly(rows, classes, k, seed):
    data = _table(rows, classes, seed % 7)
    splits = tau_search.folds(data, k, seed)
    held = np.concatenate([s.x_test[:, 0] for s in splits])
    assert sorted(held) == sorted(data.x_train[:, 0])  # a partition of the training rows
    for split in splits:
        assert len(split.y_train) + len(split.y_test) == rows
        assert not set(split.x_test[:, 0]) & set(split.x_train[:, 0])
    for c in np.unique(data.y_train):  # each class dealt round the folds: sizes differ by at most one
        sizes = [int(np.sum(s.y_test == c)) for s in splits]
        assert max(sizes) - min(sizes) <= 1
    again = tau_search.folds(data, k, seed)
    assert all(np.array_equal(a.y_test, b.y_test) for a, b in zip(splits, again))  # seeded


def _fake_trainer(by_tau: dict[float, float]):
    calls: list[tuple[float, int]] = []

    def train(cfg: TrainConfig, data: Dataset) -> float:
        assert cfg.tau is not None and not cfg.progress and cfg.metrics is None
        calls.append((cfg.tau, len(data.y_test)))
        return by_tau[cfg.tau]

    return train, calls


@pytest.mark.parametrize(
    "scores, chosen",
    [
        ({3.0: 0.9, 10.0: 0.8, 30.0: 0.7}, 3.0),
        ({3.0: 0.7, 10.0: 0.8, 30.0: 0.9}, 30.0),
        ({3.0: 0.8, 10.0: 0.8, 30.0: 0.8}, 10.0),  # a tie: the default
        ({3.0: 0.8, 10.0: 0.7, 30.0: 0.8}, 3.0),  # a tie without the default: the lower tau
    ],
)
def test_the_search_keeps_the_best_cross_validated_tau(scores, chosen):
    data = _table(90, 2)
    cfg, _ = sizing.resolve(TrainConfig(), data)
    train, calls = _fake_trainer(scores)
    resolved, line = tau_search.search(cfg, data, train)
    assert resolved.tau == chosen and resolved.resolved
    assert len(calls) == len(tau_search.CHOICES) * tau_search.FOLDS
    assert sum(n for tau, n in calls if tau == 3.0) == 90  # every training row scored once per tau
    assert line.startswith(f"tau {chosen:g}, the best of 3 in 3-fold cross-validation") and "--tau overrides" in line


def test_a_large_table_and_images_keep_tau_10_without_a_search():
    cfg, _ = sizing.resolve(TrainConfig(), _table(tau_search.SEARCH_ROWS + 1, 2))
    assert cfg.tau == tau_search.DEFAULT and cfg.resolved


def _csv(path, rows=120):
    rng = np.random.default_rng(4)
    a = rng.uniform(0, 10, rows).round(2)
    b = rng.uniform(0, 10, rows).round(2)
    lines = ["a,b,y", *(f"{x},{z},{'hi' if x + z > 10 else 'lo'}" for x, z in zip(a, b))]
    path.write_text("\n".join(lines) + "\n")
    return path


FAST = ["--steps", "40", "--eval-every", "40", "--width", "20", "--seed", "1"]


def test_a_small_table_on_defaults_searches_tau_and_says_so(tmp_path, capsys):
    data = _csv(tmp_path / "t.csv")
    out = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(data), "--label", "y", "--out", str(out), "--no-progress", *FAST]) == 0
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if line.startswith("tau ")]
    assert "3-fold cross-validation on the training rows (3: " in line and "; 9 runs in " in line
    lines = err.splitlines()  # said before the quiet search, after the table's line: no silent wait
    assert lines.index(tau_search.ANNOUNCE) == lines.index(line) - 1 and lines[0].startswith("table of ")
    chosen = float(line.split(",")[0].split()[1])
    assert chosen in tau_search.CHOICES
    records = [json.loads(r) for r in (tmp_path / "m.safetensors.metrics.jsonl").read_text().splitlines()]
    assert records  # the trials wrote none of their own metrics here: only the run's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "m.safetensors.metrics.jsonl", "t.csv"]
    again = tmp_path / "again.safetensors"
    argv = ["train", "--data", str(data), "--label", "y", "--out", str(again), "--no-progress", *FAST]
    assert main(argv) == 0
    scores = line.split("; 9 runs in ")[0]  # the seconds differ; the search is seeded: same scores, same tau
    assert any(again_line.startswith(scores) for again_line in capsys.readouterr().err.splitlines())


def test_a_given_tau_skips_the_search(tmp_path, capsys):
    data = _csv(tmp_path / "t.csv")
    out = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(data), "--label", "y", "--out", str(out), "--tau", "7", *FAST]) == 0
    err = capsys.readouterr().err
    assert not any(line.startswith("tau ") for line in err.splitlines())
    assert re.search(r"\(given: [a-z_, ]*\btau\)", err), err


def test_a_trial_whose_loss_stops_being_a_number_scores_zero(monkeypatch):
    from lgn.training import trainer

    def diverging(cfg, data, say=None):
        raise trainer.TrainingFailed("the loss became nan at step 3")

    monkeypatch.setattr(trainer, "_train", diverging)
    assert trainer._held_out_score(TrainConfig(tau=3.0), _table(30, 2)) == 0.0
