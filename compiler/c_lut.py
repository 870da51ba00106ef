"""k-input LUT gates as straight-line C: Shannon expansion on the first three inputs, then a multiplexer tree.

A LUT's table (bit m = f at m = sum_k x_k 2^k) splits into 8-bit slices, one per assignment of the inputs
from x3 up; each slice is a function of (x0, x1, x2). On AVX-512 a slice is one ternary-logic instruction
(``vpternlogq`` with the slice as its immediate, so its index 4 x2 + 2 x1 + x0 is our m) and a multiplexer is
another (immediate 0xCA); elsewhere a slice is a multiplexer over x2 between two of the 16 two-input gate
expressions. Constant slices become constants, and equal slices and equal multiplexers are computed once:
a six-input LUT costs at most 8 + 7 operations, against the table kernel's 16 loads and a loop.
"""

from __future__ import annotations

import re

from .lowering import C_VECTOR, gate_expression

SLICE_BITS = 8  # a function of three inputs

# What the emitted statements need from the C file (defined once, in gates.c.j2).
MUX = "LGN_MUX"  # LGN_MUX(s, hi, lo) = s ? hi : lo, bitwise
TERNARY = "LGN_T3"  # LGN_T3(x2, x1, x0, imm) = bit (4 x2 + 2 x1 + x0) of imm, bitwise (AVX-512 only)


def _slice_expression(table8: int, ternary: bool) -> str:
    """A function of (x0, x1, x2) given by its 8-bit table, as a C expression over ``x0``, ``x1``, ``x2``."""
    if table8 == 0:
        return C_VECTOR.zero
    if table8 == 0xFF:
        return C_VECTOR.one
    if ternary:
        return f"{TERNARY}(x2, x1, x0, 0x{table8:02x})"
    low, high = table8 & 15, table8 >> 4
    low_expr, high_expr = gate_expression(low, "x0", "x1", C_VECTOR), gate_expression(high, "x0", "x1", C_VECTOR)
    return low_expr if low == high else f"{MUX}(x2, {high_expr}, {low_expr})"


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
