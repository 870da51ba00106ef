"""Truth-table algebra on k-input LUTs, vectorised over many gates at once.

A table is a ``uint64``; bit m holds f(x) for the assignment with m = sum_k x_k 2^k (fan-in 0 is the
least significant bit of m). A table over ``arity`` variables uses the low 2^arity bits; the others are 0.
Every function here takes and returns ``uint64`` arrays of tables over the same ``arity``.
"""

from __future__ import annotations

import numpy as np

MAX_ARITY = 6

# VAR_MASKS[k]: the table of the projection x_k over 6 variables (bit m set where bit k of m is 1).
VAR_MASKS = np.array(
    [
        0xAAAAAAAAAAAAAAAA,
        0xCCCCCCCCCCCCCCCC,
        0xF0F0F0F0F0F0F0F0,
        0xFF00FF00FF00FF00,
        0xFFFF0000FFFF0000,
        0xFFFFFFFF00000000,
    ],
    dtype=np.uint64,
)


def table_mask(arity: int) -> np.uint64:
    """The table of the constant-1 function over ``arity`` variables (its 2^arity low bits set)."""
    if arity >= MAX_ARITY:
        return np.uint64(0xFFFFFFFFFFFFFFFF)
    return np.uint64((1 << (1 << arity)) - 1)


def projection(k: int, arity: int) -> np.uint64:
    """The table of f(x) = x_k over ``arity`` variables."""
    return VAR_MASKS[k] & table_mask(arity)


def cofactor(tables: np.ndarray, k: int, value: int, arity: int) -> np.ndarray:
    """Tables with variable k fixed to ``value``; the result no longer depends on x_k."""
    mask, shift = VAR_MASKS[k], np.uint64(1 << k)
    if value:
        half = tables & mask
        out = half | (half >> shift)
    else:
        half = tables & ~mask
        out = half | (half << shift)
    return out & table_mask(arity)


def depends_on(tables: np.ndarray, k: int, arity: int) -> np.ndarray:
    """Boolean array: whether each table's function depends on variable k."""
    return cofactor(tables, k, 0, arity) != cofactor(tables, k, 1, arity)


def negate_var(tables: np.ndarray, k: int, arity: int) -> np.ndarray:
    """Tables of f(..., NOT x_k, ...): the two cofactors of x_k trade places."""
    mask, shift = VAR_MASKS[k], np.uint64(1 << k)
    return (((tables & mask) >> shift) | ((tables & ~mask) << shift)) & table_mask(arity)


def swap_vars(tables: np.ndarray, i: int, j: int, arity: int) -> np.ndarray:
    """Tables of f with variables i and j exchanged (i != j)."""
    if i > j:
        i, j = j, i
    delta = np.uint64((1 << j) - (1 << i))
    # Bits where x_i = 1 and x_j = 0 move up by delta; their partners (x_i = 0, x_j = 1) move down.
    low = VAR_MASKS[i] & ~VAR_MASKS[j] & table_mask(arity)
    high = low << delta
    return (tables & ~(low | high)) | ((tables & low) << delta) | ((tables >> delta) & low)


def merge_vars(tables: np.ndarray, i: int, j: int, arity: int) -> np.ndarray:
    """Tables of f restricted to x_j = x_i; the result depends on x_i only (no longer on x_j)."""
    both1 = cofactor(cofactor(tables, j, 1, arity), i, 1, arity)
    both0 = cofactor(cofactor(tables, j, 0, arity), i, 0, arity)
    mi = VAR_MASKS[i] & table_mask(arity)
    return (both1 & mi) | (both0 & ~mi & table_mask(arity))


def evaluate_table(table: int, bits: list[int]) -> int:
    """f(bits) for one table: the reference definition of the bit order, used by tests."""
    m = sum(int(b) << k for k, b in enumerate(bits))
    return (int(table) >> m) & 1


# difflogic's 16 two-input gate ids. id bit 3 = f(0,0), bit 2 = f(0,1), bit 1 = f(1,0), bit 0 = f(1,1),
# with f(a, b), a = fan-in 0. In our order f(a, b) is table bit a + 2b.
DIFFLOGIC_GATE_NAMES = (
    "FALSE", "AND", "A_AND_NOT_B", "A", "NOT_A_AND_B", "B", "XOR", "OR",
    "NOR", "XNOR", "NOT_B", "A_OR_NOT_B", "NOT_A", "NOT_A_OR_B", "NAND", "TRUE",
)  # fmt: skip


def difflogic_id_to_table(gate_id: int) -> int:
    """The 2-input truth table (4 bits) of difflogic gate ``gate_id`` (0..15)."""
    if not 0 <= int(gate_id) <= 15:
        raise ValueError(f"difflogic gate ids are 0..15, got {gate_id}")
    g = int(gate_id)
    f00, f01, f10, f11 = (g >> 3) & 1, (g >> 2) & 1, (g >> 1) & 1, g & 1
    return f00 | (f10 << 1) | (f01 << 2) | (f11 << 3)


def table_to_difflogic_id(table: int) -> int:
    """Inverse of :func:`difflogic_id_to_table` for a 2-input table (0..15)."""
    t = int(table)
    if not 0 <= t <= 15:
        raise ValueError(f"a 2-input truth table has 4 bits, got {t:#x}")
    f00, f10, f01, f11 = t & 1, (t >> 1) & 1, (t >> 2) & 1, (t >> 3) & 1
    return (f00 << 3) | (f01 << 2) | (f10 << 1) | f11


DIFFLOGIC_TABLES = np.array([difflogic_id_to_table(g) for g in range(16)], dtype=np.uint64)


def gate_name(table: int, arity: int) -> str:
    """A readable name for a table: the difflogic name for 2-input tables, else LUTk."""
    if arity == 2:
        return DIFFLOGIC_GATE_NAMES[table_to_difflogic_id(table)]
    if arity == 1:
        return {0: "FALSE", 1: "NOT_A", 2: "A", 3: "TRUE"}[int(table)]
    return f"LUT{arity}"
