"""What :class:`lgn.LogicClassifier` reads, as the rest of lgn reads tables: a pandas DataFrame or a numeric array
turned into :class:`~lgn.training.columns.Columns`, so that :func:`lgn.training.tables.infer_names` and
:func:`~lgn.training.tables.features` give the estimator exactly the schema and the raw features that
``lgn train --data`` gives a CSV of the same columns (and ``lgn predict`` then reads such a CSV).

The cells follow what a CSV written by ``DataFrame.to_csv`` holds: numbers stay numbers (NaN where one is
missing), and every other column is text, a missing cell the empty string (a category of its own, as an empty
CSV cell is). Labels become the text a CSV cell of them reads as.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import numpy as np

from lgn.compiler.names import MAX_NAME_LENGTH
from lgn.training.columns import Columns

WHERE = Path("X")  # how messages name the table: "X: column 'age', row 3: ..." (rows counted from 0)


def _pandas():
    try:
        import pandas
    except ModuleNotFoundError:
        return None
    return pandas


def is_frame(X: Any) -> bool:
    pd = _pandas()
    return pd is not None and isinstance(X, pd.DataFrame)


def checked(X: Any) -> Any:
    """A DataFrame as it is; anything else as a 2-D numeric array (sklearn's ``check_array``: dense, at least
    one row and one column; NaN and infinities are left to the fill policy and the table checks)."""
    if is_frame(X):
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X has {X.shape[0]} sample(s) and {X.shape[1]} feature(s): at least 1 of each is needed")
        return X
    from sklearn.utils.validation import check_array

    return check_array(X, dtype="numeric", ensure_all_finite=False)


def column_names(X: Any) -> list[str]:
    """The names lgn gives the columns: a DataFrame's own (as text), an array's ``x0, x1, ...`` (the names
    ``lgn train`` gives the columns of an ``.npy`` file)."""
    if is_frame(X):
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(X.shape[1])]


def columns(X: Any, names: list[str]) -> Columns:
    """``X`` (from :func:`checked`) as :class:`Columns` whose columns are called ``names``, in order."""
    if is_frame(X):
        cells = [_series_cells(X.iloc[:, i], names[i]) for i in range(X.shape[1])]
    else:
        cells = [np.asarray(X[:, i], dtype=np.float64) for i in range(X.shape[1])]
    return Columns(WHERE, list(names), cells, 0, "row")


def _series_cells(series, name: str) -> np.ndarray:
    pd = _pandas()
    assert pd is not None
    dtype = series.dtype
    text = pd.api.types.is_object_dtype(dtype) or isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype))
    if text or pd.api.types.is_bool_dtype(dtype):
        values = series.to_numpy(dtype=object)
        missing = pd.isna(values)
        return np.array(["" if gone else str(v) for v, gone in zip(values, missing)], dtype=object)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    raise ValueError(f"column {name!r} has dtype {dtype}: LogicClassifier reads numbers, booleans, categories and text")


def categorical_columns(X: Any, names: list[str], requested: Any) -> list[str]:
    """The columns one-hot encoded: a DataFrame's ``bool``, ``category`` and string columns, and those
    ``requested`` (names or positions; object columns of text are categorical anyway, as in a CSV)."""
    chosen = set()
    if is_frame(X):
        pd = _pandas()
        assert pd is not None
        for i, dtype in enumerate(X.dtypes):
            if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype)):
                chosen.add(names[i])
    original = list(X.columns) if is_frame(X) else names
    items = [] if requested is None else [requested] if isinstance(requested, (str, numbers.Integral)) else requested
    for item in items:
        named = [i for i, c in enumerate(original) if type(c) is type(item) and c == item]
        if named:
            chosen.add(names[named[0]])
        elif (
            isinstance(item, numbers.Integral) and not isinstance(item, bool) and -len(names) <= int(item) < len(names)
        ):
            chosen.add(names[int(item)])
        else:
            raise ValueError(f"categorical: no column {item!r} (columns: {', '.join(map(str, original))})")
    return [n for n in names if n in chosen]


def label_texts(classes: np.ndarray) -> tuple[str, ...]:
    """The name of each class as a CSV cell of it reads: integers (and floats that are whole) without a
    fraction, booleans ``False``/``True``, text stripped. Two labels with one name are an error."""
    texts = tuple(_label_text(c) for c in classes)
    seen: dict[str, Any] = {}
    for value, text in zip(classes, texts):
        if text in seen:
            raise ValueError(f"the labels {seen[text]!r} and {value!r} both read as {text!r}: make them distinct")
        if len(text) > MAX_NAME_LENGTH or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            raise ValueError(f"label {text[:40]!r} is longer than {MAX_NAME_LENGTH} or holds control characters")
        seen[text] = value
    return texts


def _label_text(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip()
    return str(value).strip()


def label_name(y: Any, names: list[str]) -> str:
    """The label column's name: a pandas Series' own, else the first of y, label, target not taken by a feature."""
    own = getattr(y, "name", None)
    candidates = ([own] if isinstance(own, str) and own.strip() else []) + ["y", "label", "target"]
    for candidate in candidates:
        if candidate not in names:
            return candidate
    return next(f"y{i}" for i in range(len(names) + 1) if f"y{i}" not in names)
