"""The GroupSum temperature of a small table, chosen on a held-out share of its training rows.

tau sets how far the class scores (popcounts) must part before the loss is satisfied, and on tables it is the
strongest single setting we measured (bench/tabular.py, 3 seeds): a low tau fits a clean rule exactly
(tic-tac-toe 98.7% at tau 3 against 80.3% at 30; MONK-2 81.1% against 70.8%), a high tau keeps a net from
learning the label noise of a small table (MONK-3 97.6% at 30 against 94.2% at 3; heart 81.9% against
77.0%). No row count or column count tells the two kinds apart, so on tables of at most
:data:`SEARCH_ROWS` training rows (where a run takes seconds) each of :data:`CHOICES` is cross-validated
on the training rows (:data:`FOLDS` folds) and the one most accurate (discretized) over all folds wins; a
single held-out share was too small to tell them apart on the tables where it matters. Larger tables,
whose validation split alone is large, and images keep tau 10.

The search never touches the test split, writes nothing outside a temporary folder, and is seeded: the same
configuration and data choose the same tau.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .config import TrainConfig
from .data import Dataset

CHOICES = (3.0, 10.0, 30.0)
DEFAULT = 10.0  # images and large tables; the first choice on a tie
SEARCH_ROWS = 2000
FOLDS = 3

# Said before the search, which runs quietly: on a small table it takes longer than the run it chooses for.
ANNOUNCE = (
    f"choosing tau: {FOLDS}-fold cross-validation of {', '.join(f'{t:g}' for t in CHOICES)} on the training rows "
    f"({len(CHOICES) * FOLDS} short runs; --tau skips it)"
)

# (configuration, data) -> the discretized accuracy of the run's chosen checkpoint on data's test split
Trainer = Callable[[TrainConfig, Dataset], float]


def folds(data: Dataset, k: int, seed: int) -> list[Dataset]:
    """``k`` copies of ``data``, the i-th with its test split replaced by the i-th fold of its training rows and
    its training split by the other folds. Folds are stratified (each class dealt round the folds in a seeded
    order) and together hold every training row once."""
    rng = np.random.default_rng([seed, 0x7A0])
    fold_of = np.empty(len(data.y_train), dtype=np.int64)
    for c in np.unique(data.y_train):
        members = rng.permutation(np.flatnonzero(data.y_train == c))
        fold_of[members] = np.arange(len(members)) % k
    return [
        dataclasses.replace(
            data,
            x_train=data.x_train[fold_of != i],
            y_train=data.y_train[fold_of != i],
            x_test=data.x_train[fold_of == i],
            y_test=data.y_train[fold_of == i],
        )  # fmt: skip
        for i in range(k)
    ]


def search(cfg: TrainConfig, data: Dataset, train: Trainer) -> tuple[TrainConfig, str]:
    """(``cfg`` with the tau of :data:`CHOICES` that scored best over :func:`folds`, the line that says so).
    ``cfg`` is resolved except for tau; ``train`` runs one quiet training and returns its held-out accuracy.
    Ties go to :data:`DEFAULT`, then to the lower tau."""
    start = time.perf_counter()
    splits = folds(data, FOLDS, cfg.seed)
    scores: dict[float, float] = {}
    with tempfile.TemporaryDirectory(prefix="lgn-tau-") as folder:
        for tau in CHOICES:
            correct = 0.0
            for i, split in enumerate(splits):
                out = str(Path(folder) / f"tau-{tau:g}-{i}.safetensors")
                trial = cfg.replace(tau=tau, out=out, metrics=None, progress=False, strict=False)
                correct += train(trial, split) * len(split.y_test)
            scores[tau] = correct / len(data.y_train)
    best = max(CHOICES, key=lambda t: (round(scores[t], 9), t == DEFAULT, -t))
    said = ", ".join(f"{t:g}: {100 * s:.1f}%" for t, s in scores.items())
    how = f"the best of {len(CHOICES)} in {FOLDS}-fold cross-validation on the training rows"
    took = f"{len(CHOICES) * FOLDS} runs in {time.perf_counter() - start:.0f} s"
    line = f"tau {best:g}, {how} ({said}; {took}); --tau overrides"
    return cfg.replace(tau=best), line
