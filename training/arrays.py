"""NumPy table files: an ``.npz`` holding features ``X``, labels ``y`` and column names ``columns``, or an
``.npy`` of features with an ``.npy`` of labels beside it.

Features are numbers. Labels may be numbers (named by value: ``0``, ``2.5``; booleans are numbers, 0 and 1, as
Parquet's are), strings, UTF-8 bytes or dates (named by their text). An array of Python objects could only be
read by unpickling it, which lgn never does: it is refused, before numpy reads it, with how to save it instead.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lgn.compiler.formats import encrypted_member

from .columns import Columns, TableError, checked_header


def npz_chunks(path: Path, labels, rows: int) -> Iterator[Columns]:
    """An ``.npz`` with features ``X``, labels ``y`` (optional) and column names ``columns`` (optional), at once."""
    if labels is not None:
        raise TableError(f"{path}: an .npz holds its labels as the array y; --labels is for .npy files")
    try:
        _refuse_encrypted(path)
        with np.load(path, allow_pickle=False) as archive:
            if "X" not in archive.files:
                raise TableError(f"{path}: no array X (an .npz holds features X and, for training, labels y)")
            for name in ("X", "y", "columns"):
                member = next((m for m in archive.zip.namelist() if m in (f"{name}.npy", name)), None)
                if member is not None:
                    with archive.zip.open(member) as handle:
                        _refuse_objects(path, handle, name)
            x = _matrix(path, archive["X"])
            y = archive["y"] if "y" in archive.files else None
            names = _column_names(path, archive["columns"]) if "columns" in archive.files else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        raise TableError(f"{path}: not a readable .npz ({exc})") from None
    yield _array_columns(path, x, y, names)


# How to save each array of a table file without Python objects, by its name in an .npz.
_WITHOUT_OBJECTS = {
    "X": "save the features as numbers: X.astype(float)",
    "y": "save the labels as a string array: y.astype(str)",
    "columns": "save the names as a string array: columns.astype(str)",
}


def _refuse_objects(path: Path, handle, name: str) -> None:
    """Refuse an array of Python objects (only a pickle can hold one, and lgn never loads pickles) with the
    way to save it instead, read from the array's header before numpy sees the data."""
    try:
        version = np.lib.format.read_magic(handle)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read:
            return  # numpy's own reader answers for other versions
        _, _, dtype = read[version](handle)
    except (ValueError, OSError, EOFError):
        return  # not an .npy header: numpy's own reader says what is wrong
    if dtype.hasobject:
        what = {"X": "the features X", "y": "the labels y", "columns": "the column names"}.get(name, name)
        raise TableError(
            f"{path}: {what} are an object array, which only a pickle can hold and lgn never loads pickles; "
            f"{_WITHOUT_OBJECTS[name]}"
        )


def _column_names(path: Path, columns: np.ndarray) -> list[str]:
    """An .npz's ``columns``: a 1-D array of strings (str, or bytes in UTF-8)."""
    if columns.ndim != 1 or columns.dtype.kind not in "US":
        raise TableError(
            f"{path}: columns must be a 1-D array of strings, one name per column of X; got {columns.dtype} "
            f"of shape {columns.shape}"
        )
    return [_text(path, v, f"column name {i + 1}") for i, v in enumerate(columns.tolist())]


def _text(path: Path, value, what: str) -> str:
    """A str, or bytes decoded as UTF-8 (anything else is refused naming ``what``)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise TableError(f"{path}: {what} is not UTF-8 text ({value[:20]!r})") from None
    return str(value)


def _refuse_encrypted(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        locked = encrypted_member(archive)
    if locked is not None:
        raise TableError(f"{path}: the array {locked!r} is encrypted")


def npy_chunks(path: Path, labels, rows: int) -> Iterator[Columns]:
    """An ``.npy`` of features and an ``.npy`` of labels (optional), memory-mapped, ``rows`` at a time."""
    for source, name in ((path, "X"), (labels, "y")):
        if source is not None:
            _refuse_objects_in_file(Path(source), name)
    try:
        x = _matrix(path, np.load(path, mmap_mode="r", allow_pickle=False))
        y = np.load(labels, mmap_mode="r", allow_pickle=False) if labels is not None else None
    except (ValueError, OSError, EOFError) as exc:
        raise TableError(f"{path}: not a readable .npy ({exc})") from None
    for start in range(0, max(len(x), 1), rows):
        part = None if y is None else np.asarray(y[start : start + rows])
        yield _array_columns(path, np.asarray(x[start : start + rows]), part, None, start + 1, labels)


def _refuse_objects_in_file(path: Path, name: str) -> None:
    try:
        with path.open("rb") as handle:
            _refuse_objects(path, handle, name)
    except OSError:
        return  # numpy's own reader says what is wrong


def _matrix(path: Path, x: np.ndarray) -> np.ndarray:
    if x.ndim != 2 or x.dtype.kind not in "biuf":
        raise TableError(f"{path}: features must be a 2-D array of numbers, got {x.dtype} {x.shape}")
    return x


def _array_columns(path: Path, x: np.ndarray, y, names, first: int = 1, labels=None) -> Columns:
    """Columns from arrays: ``x`` (2-D numbers) and labels ``y`` (from the file ``labels``, if not ``path``)."""
    names = names or [f"x{i}" for i in range(x.shape[1])]
    if len(names) != x.shape[1]:
        raise TableError(f"{path}: {len(names)} column names for {x.shape[1]} columns")
    cells = [np.asarray(x[:, i], dtype=np.float64) for i in range(x.shape[1])]
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(x):
            raise TableError(f"{path}: {len(x)} rows but labels of shape {y.shape}")
        names, cells = [*names, "y"], [*cells, _label_cells(Path(labels or path), y, first)]
    return Columns(path, checked_header(path, list(names)), cells, first, "row")


def _label_cells(path: Path, y: np.ndarray, first: int) -> np.ndarray:
    """Labels from an array: numbers (booleans among them) stay numbers, named by value (``0``, ``1``,
    ``2.5``; ``False``/``True`` are 0 and 1, as in Parquet); strings (str, or bytes in UTF-8) and dates
    become text."""
    kind = y.dtype.kind
    if kind in "biuf":
        return y
    if kind == "U":
        return y.astype(object)
    if kind == "S":
        return np.array([_text(path, v, f"the label in row {first + i}") for i, v in enumerate(y.tolist())], object)
    if kind in "Mm":
        return y.astype(str).astype(object)
    raise TableError(f"{path}: labels of dtype {y.dtype} are not supported: save them as numbers or strings")
