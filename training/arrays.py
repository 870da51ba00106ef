"""NumPy table files: an ``.npz`` holding features ``X``, labels ``y`` and column names ``columns``, or an
``.npy`` of features with an ``.npy`` of labels beside it.

Features are numbers. Labels may be numbers (named by value: ``0``, ``2.5``; booleans are numbers, 0 and 1, as
Parquet's are), strings, UTF-8 bytes or dates (named by their text). An array of Python objects could only be
read by unpickling it, which lgn never does: it is refused, before numpy reads it, with how to save it instead.

Every array's header (shape, dtype) is read and checked before its data: against the bounds (at most
:data:`~lgn.training.columns.MAX_COLUMNS` columns), against each other (as many labels as rows, one name per
column), against the bytes the file holds, and the memory reading it whole needs against what the machine
has (:mod:`lgn.training.memory`), so an archive that inflates to gigabytes is refused before it is inflated.
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lgn.compiler.formats import encrypted_member

from . import memory
from .columns import Columns, TableError, check_width, checked_header, chunk_rows

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_MAX_DEFLATE_RATIO = 1032  # deflate expands at most about 1032:1; a member that claims more is forged
CELL_BYTES = 24  # memory per cell of X besides X itself: its float64 column and the features made of it
TEXT_BYTES = 64  # memory per label read as text (a Python string)
_ARRAY_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)


@dataclasses.dataclass(frozen=True)
class _Header:
    """What an ``.npy`` header declares."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # Python integers: no overflow


def npz_chunks(path: Path, labels, rows: int) -> Iterator[Columns]:
    """An ``.npz`` with features ``X``, labels ``y`` (optional) and column names ``columns`` (optional): read
    at once (after :func:`check_npz`), handed on ``rows`` at a time."""
    if labels is not None:
        raise TableError(f"{path}: an .npz holds its labels as the array y; --labels is for .npy files")
    check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            x = archive["X"]
            y = archive["y"] if "y" in archive.files else None
            names = _column_names(path, archive["columns"]) if "columns" in archive.files else None
    except _ARRAY_ERRORS as exc:
        raise TableError(f"{path}: not a readable .npz ({exc})") from None
    rows = chunk_rows(rows, x.shape[1])
    for start in range(0, max(len(x), 1), rows):
        part = None if y is None else y[start : start + rows]
        yield _array_columns(path, x[start : start + rows], part, names, start + 1)


def check_npz(path: Path) -> None:
    """Everything an ``.npz`` table declares, checked from its zip directory and array headers before any
    array is inflated (see the module's docstring)."""
    headers: dict[str, _Header] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            locked = encrypted_member(archive)
            if locked is not None:
                raise TableError(f"{path}: the array {locked!r} is encrypted")
            for name in ("X", "y", "columns"):
                info = next((i for i in archive.infolist() if i.filename in (f"{name}.npy", name)), None)
                if info is not None:
                    headers[name] = _member_header(path, archive, info, name)
    except _ARRAY_ERRORS as exc:
        raise TableError(f"{path}: not a readable .npz ({exc})") from None
    if "X" not in headers:
        raise TableError(f"{path}: no array X (an .npz holds features X and, for training, labels y)")
    _check_shapes(path, headers["X"], headers.get("y"), headers.get("columns"))
    _check_memory(path, headers["X"], headers.values(), headers.get("y"))


def _member_header(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> _Header:
    """The header of one member, after its sizes in the zip directory are found possible."""
    limit = info.compress_size if info.compress_type == zipfile.ZIP_STORED else (
        _MAX_DEFLATE_RATIO * info.compress_size + 1024
    )  # fmt: skip
    if info.file_size > limit:
        raise TableError(
            f"{path}: the array {name} claims {info.file_size:,} bytes from {info.compress_size:,} compressed, "
            "more than deflate expands to: a damaged or forged archive"
        )
    with archive.open(info) as handle:
        header = _read_header(path, handle, name)
        room = info.file_size - handle.tell()
    if header.nbytes > room:
        raise TableError(
            f"{path}: the array {name} declares shape {header.shape} of {header.dtype} ({header.nbytes:,} bytes), "
            f"more than the archive holds ({max(room, 0):,})"
        )
    return header


def _read_header(path: Path, handle, name: str) -> _Header:
    """An ``.npy`` header from ``handle`` (the stream left at the first data byte); an array of Python objects
    is refused with the way to save it instead (only a pickle can hold one, and lgn never loads pickles)."""
    try:
        version = np.lib.format.read_magic(handle)
        if version not in _HEADER_READERS:
            raise TableError(f"{path}: the array {name} is in .npy format {version}; lgn reads (1, 0) and (2, 0)")
        shape, _, dtype = _HEADER_READERS[version](handle)
    except _ARRAY_ERRORS as exc:
        raise TableError(f"{path}: the array {name} has no readable .npy header ({exc})") from None
    if dtype.hasobject:
        what = {"X": "the features X", "y": "the labels y", "columns": "the column names"}[name]
        raise TableError(
            f"{path}: {what} are an object array, which only a pickle can hold and lgn never loads pickles; "
            f"{_WITHOUT_OBJECTS[name]}"
        )
    return _Header(tuple(shape), dtype)


# How to save each array of a table file without Python objects, by its name in an .npz.
_WITHOUT_OBJECTS = {
    "X": "save the features as numbers: X.astype(float)",
    "y": "save the labels as a string array: y.astype(str)",
    "columns": "save the names as a string array: columns.astype(str)",
}


def _check_shapes(path: Path, x: _Header, y: _Header | None, columns: _Header | None, labels=None) -> None:
    """The declared shapes and dtypes agree with a table and with each other."""
    if len(x.shape) != 2 or x.dtype.kind not in "biuf":
        raise TableError(f"{path}: features must be a 2-D array of numbers, got {x.dtype} {x.shape}")
    rows, width = x.shape
    check_width(path, width)
    if y is not None:
        where = labels or path
        if y.dtype.kind not in "biufUSMm":
            raise TableError(f"{where}: labels of dtype {y.dtype} are not supported: save them as numbers or strings")
        if len(y.shape) != 1 or y.shape[0] != rows:
            raise TableError(f"{where}: {rows:,} rows but labels of shape {y.shape}")
    if columns is not None:
        if len(columns.shape) != 1 or columns.dtype.kind not in "US":
            raise TableError(
                f"{path}: columns must be a 1-D array of strings, one name per column of X; got {columns.dtype} "
                f"of shape {columns.shape}"
            )
        if columns.shape[0] != width:
            raise TableError(f"{path}: {columns.shape[0]:,} column names for {width:,} columns")


def _check_memory(path: Path, x: _Header, arrays, y: _Header | None) -> None:
    """Reading the arrays whole (their bytes, and :data:`CELL_BYTES` per cell and :data:`TEXT_BYTES` per text
    label for what lgn makes of them) fits the readers' budget (:func:`lgn.training.memory.budget`)."""
    inflated = sum(a.nbytes for a in arrays)
    need = inflated + math.prod(x.shape) * CELL_BYTES
    if y is not None and y.dtype.kind not in "biuf":
        need += y.shape[0] * TEXT_BYTES if y.shape else 0
    limit, how = memory.budget()
    if need > limit:
        raise TableError(
            f"{path}: X of shape {x.shape} ({x.dtype}) takes {memory.size_text(inflated)} and reading it about "
            f"{memory.size_text(need)}, more than the {memory.size_text(limit)} lgn may use ({how})"
        )


def _column_names(path: Path, columns: np.ndarray) -> list[str]:
    """An .npz's ``columns``: a 1-D array of strings (str, or bytes in UTF-8), as its header declared."""
    return [_text(path, v, f"column name {i + 1}") for i, v in enumerate(columns.tolist())]


def _text(path: Path, value, what: str) -> str:
    """A str, or bytes decoded as UTF-8 (anything else is refused naming ``what``)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise TableError(f"{path}: {what} is not UTF-8 text ({value[:20]!r})") from None
    return str(value)


def npy_chunks(path: Path, labels, rows: int) -> Iterator[Columns]:
    """An ``.npy`` of features and an ``.npy`` of labels (optional), memory-mapped, ``rows`` at a time."""
    check_npy(path, labels, whole=False)
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
        y = np.load(labels, mmap_mode="r", allow_pickle=False) if labels is not None else None
    except (ValueError, OSError, EOFError) as exc:
        raise TableError(f"{path}: not a readable .npy ({exc})") from None
    rows = chunk_rows(rows, x.shape[1])
    for start in range(0, max(len(x), 1), rows):
        part = None if y is None else np.asarray(y[start : start + rows])
        yield _array_columns(path, np.asarray(x[start : start + rows]), part, None, start + 1, labels)


def check_npy(path: Path, labels, whole: bool) -> None:
    """Everything an ``.npy`` of features and its labels file declare, checked from their headers; with
    ``whole`` (the file is to be read at once, not in chunks), also the memory that takes."""
    x = _file_header(Path(path), "X")
    y = _file_header(Path(labels), "y") if labels is not None else None
    _check_shapes(path, x, y, None, labels)
    if whole:
        _check_memory(path, x, [h for h in (x, y) if h is not None], y)


def _file_header(path: Path, name: str) -> _Header:
    try:
        with path.open("rb") as handle:
            header = _read_header(path, handle, name)
            room = path.stat().st_size - handle.tell()
    except OSError as exc:
        raise TableError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if header.nbytes > room:
        raise TableError(
            f"{path}: declares shape {header.shape} of {header.dtype} ({header.nbytes:,} bytes) but holds "
            f"{max(room, 0):,} bytes of data"
        )
    return header


def _array_columns(path: Path, x: np.ndarray, y, names, first: int = 1, labels=None) -> Columns:
    """Columns from arrays: ``x`` (2-D numbers) and labels ``y`` (from the file ``labels``, if not ``path``)."""
    names = names or [f"x{i}" for i in range(x.shape[1])]
    cells = [np.asarray(x[:, i], dtype=np.float64) for i in range(x.shape[1])]
    if y is not None:
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
    return y.astype(str).astype(object)  # dates ("Mm"): the header's dtype was checked
