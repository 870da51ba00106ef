"""Thermometer encoding of raw features into input bits; the thresholds travel with the model.

Input bit ``f * k + j`` is ``raw[f] > thresholds[f, j]``: the comparison the IR's encoder metadata
describes, computed with the same numpy float64 comparison by the evaluator and in training, so a
model's bits are the compiled artifact's bits.
"""

from __future__ import annotations

import math

import numpy as np

from lgn.compiler.errors import ParameterError
from lgn.compiler.ir import Encoder

METHODS = ("uniform", "quantile", "supervised")  # and "auto" in a TrainConfig: the dataset's own default


def fit_thresholds(
    x_train: np.ndarray, k: int, method: str = "uniform", value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """``float64[features, k]`` thresholds in raw units.

    uniform: t_j = lo + (hi - lo) * j / (k + 1), j = 1..k, with (lo, hi) the fixed range of the data
    (0..255 for images) or each feature's training min/max; quantile: each feature's training
    quantiles at j / (k + 1).
    """
    if k < 1:
        raise ParameterError(f"thresholds must be at least 1, got {k}", "thresholds")
    if method not in METHODS:
        raise ParameterError(f"threshold_method must be one of {METHODS}, got {method!r}", "threshold_method")
    x = np.asarray(x_train, dtype=np.float64)
    steps = np.arange(1, k + 1) / (k + 1)
    if method == "supervised":
        raise ParameterError("supervised thresholds need the labels: use fit_encoder", "threshold_method")
    if method == "quantile":
        return np.quantile(x, steps, axis=0).T.copy()
    if value_range is not None:
        lo = np.full(x.shape[1], value_range[0])
        hi = np.full(x.shape[1], value_range[1])
    else:
        lo, hi = x.min(axis=0), x.max(axis=0)
    return lo[:, None] + (hi - lo)[:, None] * steps[None, :]


def supervised_thresholds(column: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """At most ``k`` thresholds of one numeric column, ascending: ``k // 2`` at its quantiles and the rest
    where a decision tree on this column alone splits the classes best (each leaf holding at least 0.5% of the
    rows, and 5), so that a cut a rule makes on the column is an input bit rather than the quantile next to
    it. Thresholds that every value or none exceeds are left out (such a bit is a constant)."""
    values = np.asarray(column, dtype=np.float64)
    at_quantiles = np.quantile(values, np.arange(1, k // 2 + 1) / (k // 2 + 1))
    return _with_tree_cuts(values, labels, k, at_quantiles)


def _with_tree_cuts(values: np.ndarray, labels: np.ndarray, k: int, at_quantiles: np.ndarray) -> np.ndarray:
    """The quantile thresholds of one column and its tree's cuts, ascending, without those no value or every
    value exceeds. The tree is grown only where a split is possible (two leaves of the minimum size, and
    values that differ): a tree costs about a millisecond, which a wide table of few rows pays per column."""
    lo, hi = values.min(), values.max()
    min_leaf = max(5, len(values) // 200)
    cuts = np.zeros(0)
    if len(values) >= 2 * min_leaf and lo < hi:
        from sklearn.tree import DecisionTreeClassifier

        tree = DecisionTreeClassifier(max_leaf_nodes=k - k // 2 + 1, min_samples_leaf=min_leaf, random_state=0)
        tree.fit(values[:, None], labels)
        cuts = tree.tree_.threshold[tree.tree_.feature >= 0]
    row = np.unique(np.concatenate([at_quantiles, cuts]))
    return row[(row >= lo) & (row < hi)]


MAX_INTERACTION_ROWS = 200_000  # rows the tree over all columns is grown on (a sample beyond: seconds, not minutes)


def _with_interaction_cuts(x: np.ndarray, labels: np.ndarray, numeric: int, rows: list) -> list:
    """``rows`` (each numeric column's thresholds) with the cuts of one decision tree over all the columns
    (2 leaves per numeric column, at least 8): a cut that only matters together with another column (the
    parity of two thresholded columns splits neither alone) is then an input bit too. xor-rule: 97.8% -> 99.7%."""
    min_leaf = max(5, len(labels) // 200)
    if numeric == 0 or len(labels) < 2 * min_leaf:
        return rows
    from sklearn.tree import DecisionTreeClassifier

    take = np.random.default_rng(0).permutation(len(labels))[:MAX_INTERACTION_ROWS]
    tree = DecisionTreeClassifier(max_leaf_nodes=max(8, 2 * numeric), min_samples_leaf=min_leaf, random_state=0)
    tree.fit(x[take], labels[take])
    feature, threshold = tree.tree_.feature, tree.tree_.threshold
    out = list(rows)
    for f in range(numeric):
        cuts = threshold[feature == f]
        if len(cuts):
            values = x[:, f]
            row = np.unique(np.concatenate([rows[f], cuts]))
            out[f] = row[(row >= values.min()) & (row < values.max())]
    return out


def fit_encoder(data, k: int, method: str) -> Encoder:
    """The encoder of a dataset (:class:`~lgn.training.data.Dataset`): ``k`` thresholds per numeric feature
    (``method`` auto: supervised for tables, the dataset's own default for images), duplicates merged when they
    come from quantiles or a tree, and one threshold, 0.5, for each one-hot feature of a categorical column (the
    last features of a table)."""
    if method == "auto":
        method = "supervised" if data.value_range is None else data.threshold_method
    one_hot = sum(len(c) for _, c in data.names.categorical) if data.names is not None else 0
    numeric = data.x_train.shape[1] - one_hot
    rows: list[np.ndarray] = []
    if method == "supervised" and numeric:  # every column's quantiles at once (as supervised_thresholds does)
        x = np.asarray(data.x_train[:, :numeric], dtype=np.float64)
        quantiles = np.quantile(x, np.arange(1, k // 2 + 1) / (k // 2 + 1), axis=0).T
        rows = [_with_tree_cuts(x[:, f], data.y_train, k, quantiles[f]) for f in range(numeric)]
        rows = _with_interaction_cuts(data.x_train, data.y_train, numeric, rows)
    elif numeric:
        thresholds = fit_thresholds(data.x_train[:, :numeric], k, method, data.value_range)
        if method == "uniform" and not one_hot:
            return encoder_from_thresholds(thresholds)  # built-in sets: k bits per feature, as always
        rows = [np.unique(t) if method == "quantile" else t for t in thresholds]
    features, values = [], []
    for f, row in enumerate(rows):
        features += [f] * len(row)
        values += row.tolist()
    features += list(range(numeric, numeric + one_hot))
    values += [0.5] * one_hot
    return Encoder(data.x_train.shape[1], np.asarray(features, np.int64), np.asarray(values, np.float64))


def encoder_from_thresholds(thresholds: np.ndarray) -> Encoder:
    features, k = thresholds.shape
    return Encoder(features, np.repeat(np.arange(features), k), thresholds.reshape(-1).astype(np.float64))


def center_crop(encoder: Encoder, side: int) -> Encoder:
    """Keep the bits of the central ``side`` x ``side`` pixels of square images (the 2022 paper's 20 x 20
    MNIST crop). Bits still index the raw pixels, so the model keeps taking whole images: the border
    pixels are simply never read."""
    image = math.isqrt(encoder.n_features)
    if image * image != encoder.n_features:
        raise ParameterError(f"crop needs square images; {encoder.n_features} features are not a square", "crop")
    if not 1 <= side <= image:
        raise ParameterError(f"crop must be between 1 and the image side {image}, got {side}", "crop")
    start = (image - side) // 2
    rows, cols = np.divmod(encoder.feature, image)
    keep = (rows >= start) & (rows < start + side) & (cols >= start) & (cols < start + side)
    return Encoder(encoder.n_features, encoder.feature[keep], encoder.threshold[keep])


def encode(encoder: Encoder, raw: np.ndarray) -> np.ndarray:
    """Raw features ``[N, features]`` -> ``bool[N, features * k]`` (the IR evaluator's encode())."""
    return np.ascontiguousarray(np.asarray(raw)[:, encoder.feature] > encoder.threshold)
