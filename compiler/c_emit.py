"""C backend, emission half: GateGraph -> C source text (pure and deterministic).

The gates are reordered by level and, within a level, by function, and renumbered so that each
(level, function) group is a contiguous run of nodes: the table-driven kernel then evaluates a group
as one tight loop. Gates whose table depends on at most two fan-ins become 2-input gates (one of the
16 functions, named by their 4-bit table); wider ones stay k-input LUTs evaluated by a multiplexer tree.
Two code shapes share one ABI: ``straight`` (one line per gate, for small nets) and ``table``.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from . import formats, truth
from .errors import LgnError
from .ir import FIRST_INPUT, GateGraph
from .templating import environment

VERSION = "0.1.0"
ISAS = {"portable": 64, "avx2": 256, "avx512": 512}  # samples per block (vector width in bits)
ISA_FLAGS = {
    "portable": ["-std=c99"],
    "avx2": ["-std=gnu99", "-mavx2"],
    "avx512": ["-std=gnu99", "-mavx512f", "-mavx512bw", "-mavx512vl"],
}
SHAPES = ("auto", "straight", "table")
STRAIGHT_LINE_MAX_GATES = 2000  # above this, straight-line C costs more compile time than it saves
LUT_KIND = 16

_ENV = environment("c")

OP_EXPRESSIONS = {
    0x0: "LGN_ZERO", 0x1: "~(A | B)", 0x2: "A & ~B", 0x3: "~B", 0x4: "~A & B", 0x5: "~A", 0x6: "A ^ B",
    0x7: "~(A & B)", 0x8: "A & B", 0x9: "~(A ^ B)", 0xA: "A", 0xB: "A | ~B", 0xC: "B", 0xD: "~A | B",
    0xE: "A | B", 0xF: "LGN_ONES",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class CProgram:
    """The gates in execution order. Node ids here are the *program's* (renumbered) ids."""

    n_inputs: int
    arity: int
    kind: np.ndarray  # uint8[n_gates]: 0..15 = a 2-input function (its table), 16 = a k-input LUT
    a: np.ndarray  # int32[n_gates]: first operand of 2-input gates
    b: np.ndarray  # int32[n_gates]
    lut_in: np.ndarray  # int32[n_luts, arity]
    lut_table: np.ndarray  # uint64[n_luts]
    groups: np.ndarray  # int32[n_groups, 4]: kind, first node, count, offset into a/b or lut arrays
    outputs: np.ndarray  # int32[n_outputs]
    output_negated: np.ndarray
    class_offsets: np.ndarray

    @property
    def n_gates(self) -> int:
        return len(self.kind)


def _two_input_form(graph: GateGraph):
    """For every gate: (is 2-input, slot of operand A, slot of operand B, 4-bit table over (A, B))."""
    k, t = graph.arity, graph.tables
    depends = (
        np.stack([truth.depends_on(t, s, k) for s in range(k)], axis=1) if graph.n_gates else np.zeros((0, k), bool)
    )
    support = depends.sum(axis=1)
    # The first two slots the table depends on (slot 0 as a stand-in where there are fewer).
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
    # With fewer than two variables the table already ignores B (and A): bits m and m + 2 agree.
    return support, slot_a, slot_b, small


def _execution_order(graph: GateGraph, kind: np.ndarray, slot_a: np.ndarray, slot_b: np.ndarray):
    """Gates level by level; within a level by function, then by their operands' new ids (so the loads
    of a group walk memory in order). Returns (order, new id of every old node id)."""
    first = graph.first_gate
    new_id = np.arange(graph.n_nodes, dtype=np.int64)
    parts, next_id = [], first
    for gates in graph.level_batches:
        rows = np.arange(len(gates))
        fanins = graph.fanins[gates]
        a = new_id[fanins[rows, slot_a[gates]]]
        b = new_id[fanins[rows, slot_b[gates]]]
        ordered = gates[np.lexsort((b, a, kind[gates]))]
        new_id[first + ordered] = next_id + rows
        next_id += len(gates)
        parts.append(ordered)
    order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return order, new_id


def build_program(graph: GateGraph) -> CProgram:
    """Order, classify and renumber the gates of ``graph`` for the C kernels."""
    first, n = graph.first_gate, graph.n_gates
    support, slot_a, slot_b, small = _two_input_form(graph)
    kind = np.where(support <= 2, small, LUT_KIND).astype(np.uint8)
    order, new_id = _execution_order(graph, kind, slot_a, slot_b)
    fanins = new_id[graph.fanins[order]].reshape(n, graph.arity)
    kind, support, levels = kind[order], support[order], graph.levels[order]
    rows = np.arange(n)
    a = fanins[rows, slot_a[order]]
    b = fanins[rows, slot_b[order]]
    a = np.where(support == 0, 0, a)  # constants read node 0; wires and inverters read A twice
    b = np.where(support <= 1, a, b)
    lut = kind == LUT_KIND
    new_group = np.r_[True, (kind[1:] != kind[:-1]) | (levels[1:] != levels[:-1])] if n else np.zeros(0, bool)
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.r_[starts, n])
    lut_rank = np.cumsum(lut) - lut  # index of each LUT gate among the LUT gates
    offsets = np.where(kind[starts] == LUT_KIND, lut_rank[starts], starts)
    groups = np.stack([kind[starts], first + starts, counts, offsets], axis=1).astype(np.int32).reshape(-1, 4)
    return CProgram(
        n_inputs=graph.n_inputs,
        arity=graph.arity,
        kind=kind,
        a=np.where(lut, 0, a).astype(np.int32),
        b=np.where(lut, 0, b).astype(np.int32),
        lut_in=fanins[lut].astype(np.int32),
        lut_table=graph.tables[order][lut],
        groups=groups,
        outputs=new_id[graph.outputs].astype(np.int32),
        output_negated=graph.output_negated,
        class_offsets=graph.class_offsets,
    )


def _c_array(ctype: str, name: str, values, per_line: int = 16, fmt=str) -> str:
    """A static const C array; an empty one gets one dummy element (C forbids empty initializers)."""
    items = [fmt(v) for v in (values.tolist() if hasattr(values, "tolist") else values)] or ["0"]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[] = {{\n    {body}\n}};"


def _data_section(graph: GateGraph, program: CProgram, shape: str) -> str:
    # 16-bit node ids where they fit: less index traffic through the cache on the hot loop.
    index_type = "uint16_t" if graph.n_nodes <= 0xFFFF else "int32_t"
    parts = [f"#define LGN_N_LUTS {len(program.lut_table)}", f"typedef {index_type} lgn_index;"]
    if shape == "table":
        parts += [
            f"#define LGN_N_GROUPS {len(program.groups)}",
            _c_array("lgn_index", "lgn_gate_a", program.a),
            _c_array("lgn_index", "lgn_gate_b", program.b),
            "static const int32_t lgn_groups[][4] = {\n    "
            + (",\n    ".join("{" + ", ".join(map(str, g)) + "}" for g in program.groups.tolist()) or "{0, 0, 0, 0}")
            + "\n};",
        ]
        if len(program.lut_table):
            parts += [
                _c_array("int32_t", "lgn_lut_in", program.lut_in.ravel()),
                _c_array("uint64_t", "lgn_lut_table", program.lut_table, per_line=4, fmt=lambda v: f"0x{v:016x}ull"),
            ]
    # GroupSum order: within each class its plain outputs, then its negated ones (no branch per output).
    sum_nodes, split = [], []
    for c in range(len(program.class_offsets) - 1):
        lo, hi = int(program.class_offsets[c]), int(program.class_offsets[c + 1])
        nodes, negated = program.outputs[lo:hi], program.output_negated[lo:hi]
        sum_nodes += nodes[~negated].tolist() + nodes[negated].tolist()
        split.append(lo + int((~negated).sum()))
    parts += [
        _c_array("lgn_index", "lgn_sum_node", sum_nodes),
        _c_array("int32_t", "lgn_sum_offset", program.class_offsets),
        _c_array("int32_t", "lgn_sum_split", split),
        _c_array("int32_t", "lgn_out_node", program.outputs),
        _c_array("uint8_t", "lgn_out_negated", program.output_negated.astype(np.uint8), per_line=32),
    ]
    if graph.encoder is not None:
        e = graph.encoder
        as_int = np.clip(np.floor(e.threshold), -1, 255).astype(np.int64)
        parts += [
            _c_array("int32_t", "lgn_enc_feature", e.feature),
            _c_array("double", "lgn_enc_threshold", e.threshold, per_line=8, fmt=repr),
            _c_array("int32_t", "lgn_enc_threshold_int", as_int),
        ]
        if _direct_encoder(graph):
            # Input bit i reads feature i: uint8 rows compare 32 bytes at a time. x > t <=> x >= t + 1, and
            # x >= b <=> max(x, b) == x for unsigned bytes; thresholds of 255 and above never fire.
            parts += [
                "#define LGN_DIRECT_U8 1",
                _c_array("uint8_t", "lgn_enc_at_least", np.clip(as_int + 1, 0, 255), per_line=32),
                _c_array("uint8_t", "lgn_enc_can_fire", np.where(as_int >= 255, 0, 0xFF), per_line=32),
            ]
    return "\n".join(parts)


def _direct_encoder(graph: GateGraph) -> bool:
    """Whether input bit i reads raw feature i (one threshold per feature, in order)."""
    e = graph.encoder
    return e is not None and e.n_features == graph.n_inputs and bool((e.feature == np.arange(graph.n_inputs)).all())


def _straight_code(program: CProgram) -> str:
    lines = []
    first = FIRST_INPUT + program.n_inputs
    lut_index = 0
    for i, (kind, a, b) in enumerate(zip(program.kind.tolist(), program.a.tolist(), program.b.tolist())):
        node = first + i
        if kind == LUT_KIND:
            ins = ", ".join(map(str, program.lut_in[lut_index].tolist()))
            table = int(program.lut_table[lut_index])
            lines.append(f"    v[{node}] = lgn_lut(v, (const int32_t[]){{{ins}}}, 0x{table:016x}ull);")
            lut_index += 1
        else:
            expr = OP_EXPRESSIONS[kind]
            if "LGN_" not in expr:
                expr = expr.replace("A", f"v[{a}]").replace("B", f"v[{b}]")
            lines.append(f"    v[{node}] = {expr};")
    return "\n".join(lines) if lines else "    (void)v;"


def choose_shape(graph: GateGraph, shape: str) -> str:
    if shape not in SHAPES:
        raise LgnError(f"unknown code shape {shape!r}; choose one of {', '.join(SHAPES)}")
    if shape == "auto":
        return "straight" if graph.n_gates <= STRAIGHT_LINE_MAX_GATES else "table"
    return shape


def model_hash(graph: GateGraph) -> str:
    return hashlib.sha256(formats.to_npz_bytes(graph)).hexdigest()[:16]


def emit_c(graph: GateGraph, isa: str = "portable", shape: str = "auto", prefix: str = "lgn_net") -> dict[str, str]:
    """The C library of ``graph``: ``{prefix}.c`` and ``{prefix}.h``, byte-identical for the same input."""
    if isa not in ISAS:
        raise LgnError(f"unknown ISA {isa!r}; choose one of {', '.join(ISAS)} (or native)")
    if not prefix.isidentifier() or not prefix.isascii():
        raise LgnError(f"the C prefix must be a C identifier, got {prefix!r}")
    shape = choose_shape(graph, shape)
    program = build_program(graph)
    max_group = int(graph.class_sizes.max())
    context = dict(
        prefix=prefix,
        version=VERSION,
        model_hash=model_hash(graph),
        isa=isa,
        lanes=ISAS[isa],
        shape=shape,
        n_inputs=graph.n_inputs,
        n_gates=graph.n_gates,
        n_nodes=graph.n_nodes,
        first_gate=graph.first_gate,
        n_outputs=graph.n_outputs,
        n_classes=graph.n_classes,
        arity=graph.arity,
        count_bits=max(1, max_group.bit_length()),
        class_bits=(graph.n_classes - 1).bit_length(),
        has_encoder=graph.encoder is not None,
        n_features=graph.encoder.n_features if graph.encoder is not None else 0,
        data=_data_section(graph, program, shape),
        straight_code=_straight_code(program) if shape == "straight" else "",
    )
    return {
        f"{prefix}.h": _ENV.get_template("lgn_net.h.j2").render(**context),
        f"{prefix}.c": _ENV.get_template("lgn_net.c.j2").render(**context),
    }


def library_files(
    graph: GateGraph, isa: str = "portable", shape: str = "auto", prefix: str = "lgn_net"
) -> dict[str, str]:
    """The standalone library: the ``.c`` and ``.h``, a Makefile, an example ``main.c`` and a README."""
    files = emit_c(graph, isa=isa, shape=shape, prefix=prefix)
    context = dict(
        prefix=prefix,
        version=VERSION,
        model_hash=model_hash(graph),
        isa=isa,
        isa_flags=" ".join(ISA_FLAGS[isa]),
        lanes=ISAS[isa],
        shape=choose_shape(graph, shape),
        n_inputs=graph.n_inputs,
        n_gates=graph.n_gates,
        n_outputs=graph.n_outputs,
        n_classes=graph.n_classes,
        has_encoder=graph.encoder is not None,
        n_features=graph.encoder.n_features if graph.encoder is not None else 0,
    )
    for name, template in (
        ("Makefile", "Makefile.j2"),
        ("main.c", "main.c.j2"),
        ("README.md", "README.md.j2"),
    ):
        files[name] = _ENV.get_template(template).render(**context)
    return files
