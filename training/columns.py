"""The rows of a table file as lgn reads them (:class:`Columns`), and the error every table problem raises."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .data import DatasetError


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
        return self.cells[self.names.index(name)]


def checked_header(path: Path, names: list[str]) -> list[str]:
    """``names`` unless one is empty or two are the same."""
    if any(not n for n in names):
        raise TableError(f"{path}: the header has an empty column name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TableError(f"{path}: the header names {duplicates[0]!r} twice")
    return names
