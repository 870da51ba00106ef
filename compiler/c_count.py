"""The straight code shape's GroupSum: each class score as a carry-save adder tree in line, emitted right after
the gate that completes the class, so the outputs are counted while they are still in registers or L1.

A class score is the number of ones among the class's outputs (a negated output counts its complement).
:func:`adder_plan` feeds the outputs one at a time into bit columns and reduces a column as soon as it holds
three bits (a full adder: one bit stays, one carries to the next column), so at most two bits wait per
column, and ends with half adders until every column holds at most one bit. On AVX-512 each adder output is
one ternary-logic operation, a negated output folded into its immediate; elsewhere a full adder is five
and/or/xor operations and a half adder two.
"""

from __future__ import annotations

import numpy as np

from .c_lut import TERNARY
from .lowering import C_VECTOR
from .truth import negate_var

Step = tuple[str, tuple[int, ...], int, int]  # ("fa" | "ha", operand ids, sum id, carry id)


def adder_plan(n_leaves: int) -> tuple[list[Step], list[int | None]]:
    """(steps, bits) adding ``n_leaves`` one-bit values: ids ``0..n_leaves-1`` are the leaves, each step
    makes two new ids (in order); ``bits[k]`` is the id holding bit k of the sum, ``None`` where it is 0.
    ``len(bits)`` is ``n_leaves.bit_length()``."""
    columns: list[list[int]] = [[] for _ in range(max(1, n_leaves.bit_length()) + 1)]
    steps: list[Step] = []
    next_id = n_leaves

    def adder(kind: str, k: int, operands: tuple[int, ...]) -> None:
        nonlocal next_id
        steps.append((kind, operands, next_id, next_id + 1))
        columns[k].append(next_id)
        columns[k + 1].append(next_id + 1)
        next_id += 2

    for leaf in range(n_leaves):
        columns[0].append(leaf)
        k = 0
        while len(columns[k]) == 3:
            operands = tuple(columns[k])
            columns[k].clear()
            adder("fa", k, operands)
            k += 1
    for k in range(len(columns) - 1):
        while len(columns[k]) > 1:  # 3 at most: a carry may have joined two waiting bits
            operands = tuple(columns[k][:3])
            del columns[k][:3]
            adder("fa" if len(operands) == 3 else "ha", k, operands)
    assert not columns[-1], "a carry out of the sum's width"
    return steps, [column[0] if column else None for column in columns[:-1]]


# Tables of (sum, carry) over the operands (x2, x1, x0) = (a, b, c), bit 4a + 2b + c: a full adder's parity
# and majority, and a half adder's xor and and of a and b (its third operand repeats b and changes nothing).
ADDERS = {"fa": (0x96, 0xE8), "ha": (0x3C, 0xC0)}


def immediate(table: int, negated: tuple[bool, ...]) -> int:
    """The ternary-logic immediate of ``table`` with operand i of (a, b, c) complemented where ``negated[i]``."""
    result = np.array([table], dtype=np.uint64)
    for var, flip in zip((2, 1, 0), negated):
        if flip:
            result = negate_var(result, var, 3)
    return int(result[0])


OPERATIONS = {(True, "fa"): 2, (True, "ha"): 2, (False, "fa"): 5, (False, "ha"): 2}


def count_statement(leaves: list[tuple[str, bool]], targets: list[str], ternary: bool) -> tuple[str, int]:
    """One C block storing the count of ones among ``leaves`` ((C lvalue, negated) pairs) into ``targets``
    (bit 0 first; bits the count cannot reach are set to zero), and its number of vector operations."""
    steps, bits = adder_plan(len(leaves))
    name = dict(enumerate(leaves))  # id -> (C expression, complemented)
    body: list[str] = []
    for kind, operands, sum_id, carry_id in steps:
        ins = [name[i] for i in operands]
        if ternary:
            ins += ins[-1:] * (3 - len(ins))  # a half adder ignores its third operand
            args = ", ".join(lvalue for lvalue, _ in ins)
            flags = tuple(neg for _, neg in ins)
            for made, table in zip((sum_id, carry_id), ADDERS[kind]):
                body.append(f"const lgn_vec s{made} = {TERNARY}({args}, 0x{immediate(table, flags):02x});")
        else:
            a, b, *c = [f"~{lvalue}" if neg else lvalue for lvalue, neg in ins]
            if kind == "fa":
                body.append(f"const lgn_vec p{sum_id} = {a} ^ {b};")
                body.append(f"const lgn_vec s{sum_id} = p{sum_id} ^ {c[0]};")
                body.append(f"const lgn_vec s{carry_id} = ({a} & {b}) | (p{sum_id} & {c[0]});")
            else:
                body.append(f"const lgn_vec s{sum_id} = {a} ^ {b};")
                body.append(f"const lgn_vec s{carry_id} = {a} & {b};")
        name[sum_id], name[carry_id] = (f"s{sum_id}", False), (f"s{carry_id}", False)
    for k, target in enumerate(targets):
        bit = bits[k] if k < len(bits) else None
        lvalue, negated = name[bit] if bit is not None else (C_VECTOR.zero, False)
        body.append(f"{target} = {'~' if negated else ''}{lvalue};")
    ops = sum(OPERATIONS[ternary, kind] for kind, *_ in steps)
    return "{ " + " ".join(body) + " }", ops
