"""Cells read as numbers: what a number is in a table (ASCII decimal or scientific notation, nothing Python's
``float`` reads besides), what a missing cell is, and a numeric column as float64 values that float32 holds."""

from __future__ import annotations

import math
import re

import numpy as np

from .columns import Columns, TableError

MISSING = frozenset({"", "na", "nan", "null", "none"})  # cells read as missing (case-insensitive)
FLOAT32_MAX = float(np.finfo(np.float32).max)
# A number: ASCII digits, an optional sign, point and exponent; infinities are numbers (refused later as too
# large, naming the row). Python's float also reads "5_0" and other scripts' digits ("٥٠") as 50: not here.
_NUMBER_TEXT = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?inf(?:inity)?"
_NUMBER = re.compile(_NUMBER_TEXT, re.ASCII | re.IGNORECASE)
# A whole column at once (cells joined by NUL, which no CSV cell holds): one regular-expression pass in C
# instead of one Python call per cell, which a table of a million cells felt.
_CELL = f"(?:{_NUMBER_TEXT}|{'|'.join(sorted(MISSING - {''}))}|)"
_ALL_NUMBERS = re.compile(f"{_CELL}(?:\0{_CELL})*", re.ASCII | re.IGNORECASE)
RULE = "numbers are ASCII decimal or scientific notation, such as -1.5 or 2e3"


def number(text) -> float | None:
    """``text`` as a number under :data:`RULE`, or None."""
    if not isinstance(text, str) or _NUMBER.fullmatch(text) is None:
        return None
    return float(text)


def lookalike(text) -> bool:
    """Whether ``text`` is no number under :data:`RULE` but one to Python (``5_0``, Arabic-Indic digits)."""
    if number(text) is not None or not isinstance(text, str):
        return False
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in MISSING


def missing(cell) -> bool:
    """Whether a cell is missing: empty or a missing word (text), NaN (numbers)."""
    if isinstance(cell, float):
        return math.isnan(cell)
    return str(cell).strip().lower() in MISSING


def _numbers_or_missing(texts: list[str]) -> bool:
    """Whether every one of ``texts`` (stripped) is a number or missing, in one pass."""
    joined = "\0".join(texts)
    return joined.count("\0") == max(len(texts) - 1, 0) and _ALL_NUMBERS.fullmatch(joined) is not None


def all_text(table: Columns, name: str) -> bool:
    """Whether no cell of a text column is a number (missing cells aside). A cell that only Python reads as a
    number (``5_0``) is an error naming its row: it is neither a number here nor plainly text."""
    cells = table.column(name)
    if cells.dtype != object:
        return False
    if _numbers_or_missing([str(c).strip() for c in cells]):  # the common case, at once
        return all(missing(c) for c in cells)
    text = True
    for i, cell in enumerate(cells):
        value = str(cell).strip()
        if value.lower() in MISSING:
            continue
        if number(value) is not None:
            text = False
        elif lookalike(value):
            raise TableError(f"{table.where(name, i)}: {value[:40]!r} is not a number: {RULE} (name the column "
                             "in --categorical to read it as text)")  # fmt: skip
    return text


def no_values(table: Columns, name: str) -> bool:
    """Whether every cell of the column is missing."""
    cells = table.column(name)
    if cells.dtype != object:
        return bool(np.isnan(np.asarray(cells, dtype=np.float64)).all())
    return all(missing(c) for c in cells)


def numbers(table: Columns, name: str, fill: float | None, allow_missing: bool = False) -> np.ndarray:
    """A numeric column as float64 (each value representable as float32); missing cells become ``fill``."""
    cells = table.column(name)
    texts = [str(c).strip() for c in cells] if cells.dtype == object else []
    if cells.dtype == object and _numbers_or_missing(texts):  # float() reads exactly these as the rule does
        values = np.array(["nan" if t.lower() in MISSING else t for t in texts], dtype=object).astype(np.float64)
    elif cells.dtype == object:  # the row of the first cell that is no number, for the message
        values = np.empty(len(cells))
        for i, cell in enumerate(cells):
            text = str(cell).strip()
            value = math.nan if text.lower() in MISSING else number(text)
            if value is None:
                raise TableError(f"{table.where(name, i)}: {text[:40]!r} is not a number ({RULE}; if the column "
                                 "is categorical, name it in --categorical)")  # fmt: skip
            values[i] = value
    else:  # a copy: the cells may be a caller's read-only frame column, which filling must not touch
        values = np.array(cells, dtype=np.float64)
    gaps = np.isnan(values)
    if gaps.any() and not allow_missing:
        if fill is None:
            row = int(np.argmax(gaps))
            raise TableError(f"{table.where(name, row)}: missing or NaN value (--fill-na zero|mean fills it)")
        values[gaps] = fill
    too_big = np.abs(np.where(gaps, 0.0, values)) > FLOAT32_MAX
    if too_big.any():
        row = int(np.argmax(too_big))
        raise TableError(f"{table.where(name, row)}: {values[row]} is infinite or too large for float32")
    return values.astype(np.float32).astype(np.float64)
