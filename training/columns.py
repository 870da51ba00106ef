"""The rows of a table file as lgn reads them (:class:`Columns`), and the error every table problem raises."""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from pathlib import Path

import numpy as np

from .data import DatasetError

# The most columns a table may have (label and dropped columns included), refused when the header is read:
# every column is at least one raw feature and up to 255 thresholds' input bits, so a wider file is not a table
# a logic gate network can be trained on in memory, and reading it must not be what takes the time.
MAX_COLUMNS = 200_000
CHUNK_CELLS = 1 << 21  # cells in one chunk of a file read in chunks: wide files get fewer rows at a time


def chunk_rows(rows: int, columns: int) -> int:
    """How many rows to read at a time: at most ``rows``, and at most :data:`CHUNK_CELLS` cells (one row at
    least), so that memory stays bounded for wide tables too."""
    return max(1, min(rows, CHUNK_CELLS // max(columns, 1)))


class TableError(DatasetError):
    """A table file that cannot be read as the model needs it."""


@dataclasses.dataclass(frozen=True)
class Columns:
    """Some rows of a file: column names in file order, each column's cells (text, or numbers from binary
    formats), and how rows are numbered in messages."""

    path: Path
    names: list[str]
    cells: list[np.ndarray]
    first: int  # the number of this chunk's first row in messages
    unit: str  # "line" (text files, the header is line 1) or "row" (binary formats, from 1)

    def __len__(self) -> int:
        return len(self.cells[0]) if self.cells else 0

    def where(self, column: str, index: int) -> str:
        return f"{self.path}: column {column!r}, {self.unit} {self.first + index}"

    def column(self, name: str) -> np.ndarray:
        if name not in self.index:
            raise TableError(f"{self.path}: no column {name!r}")
        return self.cells[self.index[name]]

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """Each column's position by name (a dict: looking up every column of a wide table stays linear)."""
        return {name: i for i, name in enumerate(self.names)}


def checked_header(path: Path, names: list[str]) -> list[str]:
    """``names`` unless there are more than :data:`MAX_COLUMNS`, one is empty or two are the same (in time
    linear in the number of columns)."""
    check_width(path, len(names))
    if any(not n for n in names):
        raise TableError(f"{path}: the header has an empty column name")
    twice = next((n for n, count in Counter(names).items() if count > 1), None)
    if twice is not None:
        raise TableError(f"{path}: the header names {twice!r} twice")
    return names


def check_width(path: Path, columns: int) -> None:
    """Refuse a table of more than :data:`MAX_COLUMNS` columns."""
    if columns > MAX_COLUMNS:
        raise TableError(f"{path}: {columns:,} columns; lgn reads tables of at most {MAX_COLUMNS:,}")
