"""Your own data: tables from CSV/TSV, NumPy (``.npz`` with ``X`` and ``y``, ``.npy`` with a labels file) and
Parquet files, turned into raw features the way the model's :class:`~lgn.compiler.names.Names` say.

The raw feature vector of a table is its numeric columns in file order, then one 0/1 feature per category of
each categorical column (columns in file order, categories sorted), as float32: the type the compiled C
library takes (``*_predict_f32``), so training, the evaluator and the C library see the same numbers.

A column is categorical when ``--categorical`` names it or when none of its values is a number; a column of
numbers with some text in it is an error naming the row (name it in ``--categorical`` if it is one). Every
problem is a :class:`TableError`: one line naming the file, the column and the row.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lgn.compiler.names import Names

from .arrays import check_npy, check_npz, npy_chunks, npz_chunks
from .columns import Columns, TableError, checked_header, chunk_rows
from .data import Dataset, DatasetError, load_dataset, stratified_split
from .numbers import MISSING, all_text, no_values, numbers
from .numbers import number as _number

FORMATS = (".csv", ".tsv", ".npz", ".npy", ".parquet")
MAX_CATEGORIES = 1000
csv.field_size_limit(1 << 20)  # a cell of a megabyte is a broken file, not data


# ---- reading --------------------------------------------------------------------------------------------
def read_chunks(path: str | Path, labels: str | Path | None = None, rows: int = 65_536) -> Iterator[Columns]:
    """The file in chunks of at most ``rows`` rows (memory stays bounded for CSV, ``.npy`` and Parquet)."""
    path = Path(path)
    suffix = _format(path)
    reader = {".csv": _csv, ".tsv": _csv, ".npz": npz_chunks, ".npy": npy_chunks, ".parquet": _parquet}[suffix]
    empty = True
    for chunk in reader(path, labels, rows):
        empty = empty and len(chunk) == 0
        yield chunk
    if empty:
        raise TableError(f"{path}: no data rows")


def read_table(path: str | Path, labels: str | Path | None = None) -> Columns:
    """The whole file as one :class:`Columns`."""
    check_file(path, labels, whole=True)
    chunks = list(read_chunks(path, labels))
    first = chunks[0]
    cells = [np.concatenate([c.cells[i] for c in chunks]) for i in range(len(first.names))]
    return dataclasses.replace(first, cells=cells)


def check_file(path: str | Path, labels: str | Path | None = None, whole: bool = True) -> None:
    """What can be known of a table file without reading its rows, checked: its extension, its header (the
    column names of a CSV or Parquet file; an array's shape and dtype, and the bytes behind them), and for an
    archive, or an ``.npy`` read ``whole``, the memory reading it needs. Cheap: ``lgn train`` runs it before
    loading PyTorch."""
    path = Path(path)
    suffix = _format(path)
    if suffix == ".npz":
        check_npz(path)
    elif suffix == ".npy":
        check_npy(path, labels, whole)
    else:
        reader = _parquet if suffix == ".parquet" else _csv
        next(reader(path, labels, 1, header_only=True), None)


def _format(path: Path) -> str:
    """The file's extension, lower case, once it is known to be a table's and the file to exist."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise TableError(f"{path}: unknown extension {path.suffix!r}; lgn reads {', '.join(FORMATS)}")
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    return suffix


def _csv(path: Path, labels, rows: int, header_only: bool = False) -> Iterator[Columns]:
    if labels is not None:
        raise TableError(f"{path}: --labels is for .npy files; name the label column of a CSV with --label")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise TableError(f"{path}: empty file (a header row is required)")
            names = checked_header(path, [h.strip() for h in header])
            if header_only:
                return
            rows = chunk_rows(rows, len(names))
            block: list[list[str]] = []
            start = 2
            for row in reader:
                if not row:
                    continue  # blank lines between records
                if len(row) != len(names):
                    raise TableError(f"{path}: line {reader.line_num} has {len(row)} fields, the header {len(names)}")
                block.append(row)
                if len(block) == rows:
                    yield _text_columns(path, names, block, start)
                    start, block = reader.line_num + 1, []
            yield _text_columns(path, names, block, start)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TableError(f"{path}: not a readable UTF-8 CSV ({exc})") from None
    except OSError as exc:
        raise TableError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _text_columns(path: Path, names: list[str], block: list[list[str]], start: int) -> Columns:
    table = np.array(block, dtype=object).reshape(len(block), len(names))
    return Columns(path, names, [np.asarray(table[:, i], dtype=object) for i in range(len(names))], start, "line")


def _parquet(path: Path, labels, rows: int, header_only: bool = False) -> Iterator[Columns]:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise TableError(f"{path}: reading Parquet needs pyarrow: pip install 'lgn[parquet]'") from None
    if labels is not None:
        raise TableError(f"{path}: --labels is for .npy files; name the label column with --label")
    try:
        handle = pq.ParquetFile(path, page_checksum_verification=True)  # where the writer stored CRCs
        names = checked_header(path, list(handle.schema_arrow.names))
        if header_only:
            return
        start = 1
        for batch in handle.iter_batches(batch_size=chunk_rows(rows, len(names))):
            cells = [_arrow_cells(batch.column(i)) for i in range(len(names))]
            yield Columns(path, names, cells, start, "row")
            start += batch.num_rows
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "CRC" in reason:
            raise TableError(f"{path}: damaged: a page does not match its checksum ({reason})") from None
        raise TableError(f"{path}: not a readable Parquet file ({reason})") from None


def _arrow_cells(array) -> np.ndarray:
    import pyarrow as pa

    kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.asarray(["" if v is None else str(v) for v in array.to_pylist()], dtype=object)


# ---- the schema -----------------------------------------------------------------------------------------
def infer_names(table: Columns, label: str, categorical: list[str], drop: list[str], fill_na: str) -> Names:
    """The names a model trained on ``table`` carries: which columns are numeric or categorical (with their
    categories), the class labels, and the missing-value policy."""
    for option, wanted in (("categorical", categorical), ("drop", drop), ("label", [label])):
        unknown = [c for c in wanted if c not in table.index]
        if unknown:
            raise TableError(f"{table.path}: no column {unknown[0]!r} (--{option}); columns: {', '.join(table.names)}")
    numeric, categories, most_frequent = [], [], []
    skip, text = {label, *drop}, set(categorical)
    for name in table.names:
        if name in skip:
            continue
        if no_values(table, name):  # else a constant category, or the mean of nothing
            raise TableError(f"{table.path}: column {name!r} has no values (every cell is missing): --drop it")
        if name in text or all_text(table, name):
            counts = Counter(str(v).strip() for v in table.column(name))
            found = sorted(counts)
            if len(found) > MAX_CATEGORIES:
                raise TableError(f"{table.path}: column {name!r} has {len(found)} categories (at most "
                                 f"{MAX_CATEGORIES}); is it an identifier? --drop it")  # fmt: skip
            categories.append((name, tuple(found)))
            most_frequent.append(max(found, key=counts.__getitem__))  # ties: the first in sorted order
        else:
            numeric.append(name)
    if not numeric and not categories:
        raise TableError(f"{table.path}: no feature columns besides the label {label!r}")
    classes, _ = class_labels(table, label)
    fill = _fill_values(table, numeric, fill_na)
    features = [*numeric, *(f"{column}={value}" for column, values in categories for value in values)]
    return Names(tuple(features), classes, label, tuple(categories), tuple(drop), fill, tuple(most_frequent))


def _fill_values(table: Columns, numeric: list[str], fill_na: str) -> tuple[float, ...]:
    if fill_na == "error":
        return ()
    if fill_na == "zero":
        return (0.0,) * len(numeric)
    means = []
    for name in numeric:
        values = numbers(table, name, fill=None, allow_missing=True)
        known = values[~np.isnan(values)]
        means.append(float(np.float32(known.mean())) if len(known) else 0.0)
    return tuple(means)


UNKNOWN_POLICIES = ("error", "zero", "default")


def features(table: Columns, names: Names, unknown: str = "error") -> np.ndarray:
    """``float32[rows, features]``: the raw features of ``table`` as ``names`` define them. Columns the model
    does not know are errors; a category unseen in training is one too, unless ``unknown`` says otherwise
    (see :func:`features_and_unseen`)."""
    return features_and_unseen(table, names, unknown)[0]


def features_and_unseen(table: Columns, names: Names, unknown: str = "error") -> tuple[np.ndarray, dict[str, int]]:
    """(the raw features of ``table``, the number of rows with a category unseen in training, by column).

    ``unknown`` says what such a category becomes: ``error`` refuses it (a :class:`TableError` naming the
    first); ``zero`` sets every one-hot feature of its column to 0; ``default`` reads it as the column's most
    frequent category in training (``names.most_frequent``, which models from before it was recorded lack).
    """
    if unknown not in UNKNOWN_POLICIES:
        raise TableError(f"unknown category policy {unknown!r}: one of {', '.join(UNKNOWN_POLICIES)}")
    if unknown == "default" and names.categorical and not names.most_frequent:
        raise TableError(
            "the model does not record its columns' most frequent categories (it was trained before lgn kept "
            "them), which the policy 'default' for unseen categories needs: use 'zero' or 'error', or train it again"
        )
    reads = [*names.numeric, *(c for c, _ in names.categorical)]
    known = {*reads, *names.ignored, names.label}
    extra = [c for c in table.names if c not in known]
    missing = [c for c in reads if c not in table.index]
    if missing or extra:
        what = f"lacks the column {missing[0]!r}" if missing else f"has a column the model does not know: {extra[0]!r}"
        raise TableError(f"{table.path}: {what} (the model reads {', '.join(reads)})")
    fill = names.fill or (None,) * len(names.numeric)
    columns = [numbers(table, name, value) for name, value in zip(names.numeric, fill)]
    unseen: dict[str, int] = {}
    for k, (column, categories) in enumerate(names.categorical):
        codes = _category_codes(table, column, categories, refuse=unknown == "error")
        new = codes < 0
        if new.any():
            unseen[column] = int(new.sum())
            if unknown == "default":
                codes[new] = categories.index(names.most_frequent[k])
        columns += [(codes == i).astype(np.float64) for i in range(len(categories))]  # -1 (zero): none is 1
    raw = np.stack(columns, axis=1).astype(np.float32) if columns else np.zeros((len(table), 0), np.float32)
    return raw, unseen


def _category_codes(table: Columns, column: str, categories: tuple[str, ...], refuse: bool) -> np.ndarray:
    """Each row's index in ``categories``; -1 for a category unseen in training (with ``refuse``, an error)."""
    index = {value: i for i, value in enumerate(categories)}
    cells = [str(v).strip() for v in table.column(column)]
    codes = np.array([index.get(v, -1) for v in cells], dtype=np.int64)
    if refuse and (codes < 0).any():
        unseen = int(np.argmax(codes < 0))
        raise TableError(f"{table.where(column, unseen)}: category {cells[unseen][:40]!r} was not seen in training")
    return codes


def class_labels(table: Columns, label: str) -> tuple[tuple[str, ...], np.ndarray]:
    """(the classes as text, in order, and each row's class index). Numeric labels sort by value."""
    texts = _label_texts(table, label)
    unique = sorted(set(texts), key=lambda t: (0, float(t), t) if _number(t) is not None else (1, 0.0, t))
    if len(unique) < 2:
        raise TableError(
            f"{table.path}: the label column {label!r} holds one class ({unique[0]!r}); two or more are needed"
        )
    index = {t: i for i, t in enumerate(unique)}
    return tuple(unique), np.array([index[t] for t in texts], dtype=np.int64)


def label_indices(table: Columns, label: str, classes: tuple[str, ...]) -> np.ndarray:
    """Each row's class index under a trained model's ``classes``; a label it never saw is an error."""
    index = {t: i for i, t in enumerate(classes)}
    texts = _label_texts(table, label)
    unseen = next((i for i, t in enumerate(texts) if t not in index), None)
    if unseen is not None:
        raise TableError(f"{table.where(label, unseen)}: label {texts[unseen][:40]!r} was not seen in training")
    return np.array([index[t] for t in texts], dtype=np.int64)


def _label_texts(table: Columns, label: str) -> list[str]:
    cells = table.column(label)
    if cells.dtype == object:
        texts = [str(v).strip() for v in cells]
    elif cells.dtype.kind in "biu":  # exactly, without a detour through float64 (which rounds past 2**53)
        texts = [str(int(v)) for v in cells.tolist()]
    else:
        texts = [str(int(v)) if float(v).is_integer() else repr(float(v)) for v in np.asarray(cells, np.float64)]
    missing = next((i for i, t in enumerate(texts) if t.lower() in MISSING), None)
    if missing is not None:
        raise TableError(f"{table.where(label, missing)}: the label is missing")
    return texts


# ---- training data from files ---------------------------------------------------------------------------
def test_rows(labels: np.ndarray, cfg) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, test rows) of a ``--data`` file given without ``--test``: a stratified
    ``cfg.test_fraction`` of every class, drawn with ``cfg.seed``; both ascending."""
    return stratified_split(labels, cfg.test_fraction, cfg.seed, salt=0x7E57)


def load_training_data(cfg) -> Dataset:
    """The data a :class:`~lgn.training.config.TrainConfig` names: its ``data`` file (split into training
    and test parts unless ``test`` is given) or the built-in ``dataset``."""
    if cfg.data is None:
        return load_dataset(cfg.dataset, cfg.data_dir)
    table = read_table(cfg.data, cfg.labels)
    label = cfg.label or ("y" if table.unit == "row" and "y" in table.names else None)
    if label is None:
        raise TableError(f"{table.path}: name its label column with --label (columns: {', '.join(table.names)})")
    categorical, drop = cfg.column_lists
    names = infer_names(table, label, categorical, drop, cfg.fill_na)
    x, (_, y) = features(table, names), class_labels(table, label)
    if cfg.test is not None:
        test = read_table(cfg.test, cfg.test_labels)
        if label not in test.index:
            given = " (an .npy file's labels come from --test-labels)" if test.path.suffix.lower() == ".npy" else ""
            raise TableError(f"{test.path}: the --test file has no label column {label!r}{given}")
        # A category only the test file has is none of the known ones (all its one-hot bits 0), as
        # `lgn predict --unknown zero` reads it, and said once: the model can still be scored on that row.
        x_test, unseen = features_and_unseen(test, names, "zero")
        for column, count in unseen.items():
            print(f"lgn: warning: {test.path}: column {column!r}: {count} row(s) with a category not seen in "
                  "training, read as none of the known ones", file=sys.stderr)  # fmt: skip
        y_test = label_indices(test, label, names.classes)
        x_train, y_train = x, y
    else:
        kept, held = test_rows(y, cfg)
        if len(held) == 0 or len(kept) == 0:
            raise TableError(f"{table.path}: {len(y)} rows are too few for a test fraction of {cfg.test_fraction}")
        x_train, y_train, x_test, y_test = x[kept], y[kept], x[held], y[held]
    return Dataset(table.path.name, x_train, y_train, x_test, y_test, len(names.classes), None, names, "quantile")


def test_split(cfg, encoder) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test split of the data ``cfg`` names: (raw features, input bits through ``encoder``, labels)."""
    from .encoding import encode

    data = load_training_data(cfg)
    if data.x_test.shape[1] != encoder.n_features:
        raise DatasetError(f"{data.name} has {data.x_test.shape[1]} features, the model expects {encoder.n_features}")
    return data.x_test, encode(encoder, data.x_test), data.y_test
