"""k-input LUT gates as straight-line C: Shannon expansion on the first three inputs, then a multiplexer tree.

A LUT's table (bit m = f at m = sum_k x_k 2^k) splits into 8-bit slices, one per assignment of the inputs
from x3 up; each slice is a function of (x0, x1, x2). On AVX-512 a slice is one ternary-logic instruction
(``vpternlogq`` with the slice as its immediate, so its index 4 x2 + 2 x1 + x0 is our m) and a multiplexer is
another (immediate 0xCA); elsewhere a slice is its shortest expression over and, or, xor, and-not and not
(:func:`minimal_slices`, 2.8 operations on average) and a multiplexer three operations. Constant and
single-variable slices cost nothing, and equal slices and equal multiplexers are computed once: with ternary
logic a six-input LUT costs at most 8 + 7 operations, against the table kernel's 16 loads and a loop. Which
three inputs go inside and the order of the others decide how many slices coincide: :func:`best_orders` tries
them all (120 for six inputs) on every LUT at once, with the ISA's costs, and keeps the cheapest.
"""

from __future__ import annotations

import functools
import itertools
import re

import numpy as np

from .lowering import C_VECTOR
from .truth import swap_vars

SLICE_BITS = 8  # a function of three inputs

# What the emitted statements need from the C file (defined once, in gates.c.j2).
MUX = "LGN_MUX"  # LGN_MUX(s, hi, lo) = s ? hi : lo, bitwise
TERNARY = "LGN_T3"  # LGN_T3(x2, x1, x0, imm) = bit (4 x2 + 2 x1 + x0) of imm, bitwise (AVX-512 only)


PROJECTIONS = {0xAA: "x0", 0xCC: "x1", 0xF0: "x2"}  # slices that are one of the three inner inputs
FREE_SLICES = (0x00, 0xFF, *PROJECTIONS)


MUX_OPS = 3  # LGN_MUX without ternary logic: lo ^ ((lo ^ hi) & s)
BINARY_OPS = {"&": np.bitwise_and, "|": np.bitwise_or, "^": np.bitwise_xor}


@functools.lru_cache(maxsize=1)
def minimal_slices() -> tuple[np.ndarray, tuple[str, ...]]:
    """(operations, C expression) of each function of (x0, x1, x2), by its 8-bit table, over &, |, ^, and-not
    and ~ (one instruction each on x86, and-not included): the fewest operations of any expression tree, found
    by relaxing every pair of functions until nothing improves. Used where there is no ternary logic."""
    unknown = 99  # above any expression's cost
    cost = np.full(256, unknown, dtype=np.int64)
    expr: list[str] = [""] * 256
    for table, text in ((0x00, C_VECTOR.zero), (0xFF, C_VECTOR.one), *PROJECTIONS.items()):
        cost[table], expr[table] = 0, text
    improved = True
    while improved:
        improved = False
        for f in np.flatnonzero(cost < unknown).tolist():  # ~f
            g = 255 - f
            if cost[f] + 1 < cost[g]:
                cost[g], expr[g], improved = cost[f] + 1, f"~{_wrap(expr[f])}", True
        known = np.flatnonzero(cost < unknown)
        pair_cost = cost[known][:, None] + cost[known][None, :] + 1
        candidates = [(op, fn(known[:, None], known[None, :])) for op, fn in BINARY_OPS.items()]
        candidates.append(("&~", known[:, None] & (255 - known[None, :])))
        for op, result in candidates:
            for i, j in zip(*np.nonzero(pair_cost < cost[result])):
                h = int(result[i, j])
                if pair_cost[i, j] < cost[h]:  # an earlier pair of this round may have improved h already
                    f, g = int(known[i]), int(known[j])
                    right = f"~{_wrap(expr[g])}" if op == "&~" else _wrap(expr[g])
                    cost[h], expr[h], improved = pair_cost[i, j], f"{_wrap(expr[f])} {op[0]} {right}", True
    assert (cost < unknown).all()
    return cost, tuple(expr)


def _wrap(text: str) -> str:
    return text if re.fullmatch(r"~?\w+", text) else f"({text})"


def _slice_expression(table8: int, ternary: bool) -> str:
    """A function of (x0, x1, x2) given by its 8-bit table, as a C expression over ``x0``, ``x1``, ``x2``."""
    if table8 == 0:
        return C_VECTOR.zero
    if table8 == 0xFF:
        return C_VECTOR.one
    if table8 in PROJECTIONS:
        return PROJECTIONS[table8]
    if ternary:
        return f"{TERNARY}(x2, x1, x0, 0x{table8:02x})"
    return minimal_slices()[1][table8]


def lut_statement(target: str, inputs: list[str], table: int, ternary: bool) -> str:
    """One C block computing ``target = f(inputs)`` for the k-input LUT (k = len(inputs), 3 <= k <= 6) with
    ``table``; ``inputs`` are C lvalues of type lgn_vec. ``ternary``: the AVX-512 form."""
    arity = len(inputs)
    if not 3 <= arity <= 6:
        raise ValueError(f"a LUT statement takes 3 to 6 inputs, got {arity}")
    body: list[str] = []
    named: dict[str, str] = {}  # expression -> the local holding it

    def name(expression: str) -> str:
        if expression in (C_VECTOR.zero, C_VECTOR.one) or re.fullmatch(r"x\d", expression):
            return expression
        if expression not in named:
            named[expression] = f"t{len(named)}"
            body.append(f"const lgn_vec {named[expression]} = {expression};")
        return named[expression]

    level = [name(_slice_expression((table >> (SLICE_BITS * j)) & 0xFF, ternary)) for j in range(1 << (arity - 3))]
    for k in range(3, arity):
        level = [lo if lo == hi else name(f"{MUX}(x{k}, {hi}, {lo})") for lo, hi in zip(level[::2], level[1::2])]
    text = " ".join(body)
    used = [k for k in range(arity) if re.search(rf"\bx{k}\b", text) or level[0] == f"x{k}"]
    loads = " ".join(f"const lgn_vec x{k} = {inputs[k]};" for k in used)
    return " ".join(part for part in ("{", loads, text, f"{target} = {level[0]};", "}") if part)


def permute_tables(tables: np.ndarray, order: tuple[int, ...], arity: int) -> np.ndarray:
    """Tables of the same functions with input i of the result being input ``order[i]`` of the given ones."""
    tables = np.asarray(tables, dtype=np.uint64)
    at = list(range(arity))  # at[i]: which original input sits at position i
    for i, want in enumerate(order):
        j = at.index(want)
        if j != i:
            tables = swap_vars(tables, i, j, arity)
            at[i], at[j] = at[j], at[i]
    return tables


def _distinct_weight(ids: np.ndarray, weights: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Per row of ``ids``: the summed weight of its distinct values among the ``counted`` entries (an
    expression computed once however often it is used)."""
    ids = np.where(counted, ids, -1)
    order = np.argsort(ids, axis=1, kind="stable")
    ordered, weight = np.take_along_axis(ids, order, 1), np.take_along_axis(weights, order, 1)
    fresh = np.ones_like(ordered, dtype=bool)
    fresh[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    return np.where(fresh & (ordered >= 0), weight, 0).sum(axis=1)


def operation_counts(tables: np.ndarray, arity: int, ternary: bool = True) -> np.ndarray:
    """Operations of :func:`lut_statement` for each table, in the given input order: with ternary logic one
    per distinct slice and multiplexer; without, each slice's :func:`minimal_slices` cost and MUX_OPS per
    multiplexer."""
    tables = np.asarray(tables, dtype=np.uint64)
    level = np.stack([(tables >> np.uint64(SLICE_BITS * j)) & np.uint64(0xFF) for j in range(1 << (arity - 3))], 1)
    level = level.astype(np.int64)
    slice_cost = np.isin(np.arange(256), FREE_SLICES, invert=True).astype(np.int64) if ternary else minimal_slices()[0]
    ops = _distinct_weight(level, slice_cost[level], np.ones_like(level, dtype=bool))
    mux_cost = 1 if ternary else MUX_OPS
    next_id = 256  # multiplexers get ids above every slice's
    while level.shape[1] > 1:
        lo, hi = level[:, ::2], level[:, 1::2]
        _, pair = np.unique(lo * (int(level.max(initial=0)) + 1) + hi, return_inverse=True)
        merged = np.where(lo == hi, lo, next_id + pair.reshape(lo.shape))
        ops += _distinct_weight(merged, np.full(merged.shape, mux_cost), lo != hi)
        next_id = int(merged.max(initial=next_id)) + 1
        level = merged
    return ops


def best_orders(tables: np.ndarray, arity: int, ternary: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """For each table, the input order with the fewest operations (:func:`operation_counts`): (``int[n, arity]``
    orders, the permuted tables). Candidates: every choice of the three inner inputs with every order of the
    others (the inner order changes no cost: a slice's cost does not depend on which input is x0), the given
    order first; ties keep the earliest candidate, so the choice is deterministic."""
    tables = np.asarray(tables, dtype=np.uint64)
    best_order = np.tile(np.arange(arity), (len(tables), 1))
    best_tables, best_ops = tables.copy(), np.full(len(tables), np.iinfo(np.int64).max)
    for inner in itertools.combinations(range(arity), 3):
        rest = [k for k in range(arity) if k not in inner]
        for outer in itertools.permutations(rest):
            order = (*inner, *outer)
            candidate = permute_tables(tables, order, arity)
            ops = operation_counts(candidate, arity, ternary)
            better = ops < best_ops
            best_ops = np.where(better, ops, best_ops)
            best_tables = np.where(better, candidate, best_tables)
            best_order[better] = order
    return best_order, best_tables
