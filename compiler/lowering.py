"""What the C and Verilog emitters share: the lowering of a gate graph to text-independent facts.

- The 16 two-input functions as expression trees (data), printed per language by :func:`render`: C and
  Verilog spell ``~ & | ^`` alike and differ only in operand names and constants.
- Each gate in two-input form where its table depends on at most two fan-ins (:func:`two_input_form`).
- The encoder's thresholds as integers for integer (uint8) features (:func:`integer_thresholds`; the other
  formats of raw features in hardware are in :mod:`.raw_input`).
- The output geometry: score and class widths, adder-tree and comparator-tree depths, and the latency of
  a pipelined design (:class:`Geometry`), returned with the emitted text.
- The model hash and the generator version stamped into every emitted file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np

from . import formats, truth
from .ir import Encoder, GateGraph
from .raw_input import U8

VERSION = "0.1.0"

# ---- the 16 two-input functions ---------------------------------------------------------------------
# An expression is "A", "B", 0, 1, ("not", e) or (op, e, e) with op in "&", "|", "^".
Expr = str | int | tuple
A, B = "A", "B"


def _not(e: Expr) -> tuple:
    return ("not", e)


# Table bit a + 2b is f(a, b) (compiler.truth's order): 0x8 = A AND B, 0x6 = A XOR B, 0xA = A, ...
GATE_FUNCTIONS: dict[int, Expr] = {
    0x0: 0, 0x1: _not(("|", A, B)), 0x2: ("&", A, _not(B)), 0x3: _not(B), 0x4: ("&", _not(A), B),
    0x5: _not(A), 0x6: ("^", A, B), 0x7: _not(("&", A, B)), 0x8: ("&", A, B), 0x9: _not(("^", A, B)),
    0xA: A, 0xB: ("|", A, _not(B)), 0xC: B, 0xD: ("|", _not(A), B), 0xE: ("|", A, B), 0xF: 1,
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Dialect:
    """How a language spells the two constants (operands are named by the caller)."""

    zero: str
    one: str


C_VECTOR = Dialect("LGN_ZERO", "LGN_ONES")
VERILOG = Dialect("1'b0", "1'b1")


def render(expr: Expr, a: str, b: str, dialect: Dialect) -> str:
    """``expr`` as text, with operands ``a`` and ``b``; negations of compound terms get parentheses."""
    if isinstance(expr, int):
        return dialect.one if expr else dialect.zero
    if isinstance(expr, str):
        return a if expr == A else b
    op, *args = expr
    if op == "not":
        inner = render(args[0], a, b, dialect)
        return f"~{inner}" if isinstance(args[0], str) else f"~({inner})"
    left, right = (render(e, a, b, dialect) for e in args)
    return f"{left} {op} {right}"


def gate_expression(table: int, a: str, b: str, dialect: Dialect) -> str:
    """The 2-input function with 4-bit ``table`` applied to operands ``a`` and ``b``."""
    return render(GATE_FUNCTIONS[int(table)], a, b, dialect)


def two_input_form(graph: GateGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every gate: (support size, slot of operand A, slot of operand B, 4-bit table over (A, B)).

    A and B are the first two slots the table depends on (slot 0 stands in where there are fewer); the
    4-bit table is meaningful where the support is at most 2 (with fewer variables it ignores B, or both).
    """
    k, t = graph.arity, graph.tables
    depends = (
        np.stack([truth.depends_on(t, s, k) for s in range(k)], axis=1) if graph.n_gates else np.zeros((0, k), bool)
    )
    support = depends.sum(axis=1)
    order = np.argsort(~depends, axis=1, kind="stable")
    slot_a = np.where(support >= 1, order[:, 0], 0)
    slot_b = np.where(support >= 2, order[:, 1] if k > 1 else 0, 0)
    small = np.zeros(graph.n_gates, dtype=np.uint64)
    for m in range(4):  # the value at x_A = m & 1, x_B = m >> 1, every other slot 0
        bit_a, bit_b = m & 1, m >> 1
        index = np.zeros(graph.n_gates, dtype=np.uint64)
        index |= np.where((support >= 1) & (bit_a == 1), np.uint64(1) << slot_a.astype(np.uint64), np.uint64(0))
        index |= np.where((support >= 2) & (bit_b == 1), np.uint64(1) << slot_b.astype(np.uint64), np.uint64(0))
        small |= ((t >> index) & np.uint64(1)) << np.uint64(m)
    return support, slot_a, slot_b, small


# ---- the encoder on integer features ------------------------------------------------------------------
def integer_thresholds(encoder: Encoder) -> np.ndarray:
    """``int64[n_inputs]``: for integer features x, ``x > threshold`` is ``x > floor(threshold)``.

    Clipped to -1 (the bit is always 1 for uint8 features) and 255 (never 1), so every value fits the
    comparison of an 8-bit feature.
    """
    return U8.threshold_words(encoder.threshold)


# ---- output geometry ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Geometry:
    """The shape of a compiled network's outputs, shared by every backend and its testbench.

    ``score_width``: bits of a class score (the largest class group's count); ``class_bits``: bits of a
    class index (0 for one class), ``class_width`` the port width (at least 1). ``depth``: gate levels;
    ``adder_depth`` and ``compare_depth``: levels of the GroupSum adder trees and the argmax comparator
    tree.
    """

    n_inputs: int
    n_classes: int
    depth: int
    score_width: int
    class_bits: int
    adder_depth: int
    compare_depth: int

    @property
    def class_width(self) -> int:
        return max(1, self.class_bits)

    @property
    def levels(self) -> int:
        """Logic levels from the inputs to the class: gates, then adders, then comparators."""
        return self.depth + self.adder_depth + self.compare_depth

    def latency(self, pipeline: int | None) -> int:
        """Clock cycles from input to output with a register stage every ``pipeline`` levels and one at the
        end (0 for a combinational design)."""
        return max(1, math.ceil(self.levels / pipeline)) if pipeline else 0


def geometry(graph: GateGraph) -> Geometry:
    max_group = int(graph.class_sizes.max())
    return Geometry(
        n_inputs=graph.n_inputs,
        n_classes=graph.n_classes,
        depth=graph.depth,
        score_width=max(1, max_group.bit_length()),
        class_bits=(graph.n_classes - 1).bit_length(),
        adder_depth=math.ceil(math.log2(max_group)) if max_group > 1 else 0,
        compare_depth=math.ceil(math.log2(graph.n_classes)) if graph.n_classes > 1 else 0,
    )


@dataclasses.dataclass(frozen=True)
class Emitted:
    """Emitted source files (name -> text) with the facts every consumer of them needs."""

    files: dict[str, str]
    geometry: Geometry
    model_hash: str
    version: str = VERSION

    def __getitem__(self, name: str) -> str:
        return self.files[name]


def model_hash(graph: GateGraph) -> str:
    """16 hex digits of the SHA-256 of the graph's ``.npz`` bytes: the model an emitted file comes from."""
    return hashlib.sha256(formats.to_npz_bytes(graph)).hexdigest()[:16]
