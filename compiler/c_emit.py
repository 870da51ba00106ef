"""C backend, emission half: GateGraph -> C source text (pure and deterministic).

The program (:mod:`.c_program`) fixes the order of the gates and the slots of their values; this module writes it
out as C: the data arrays of the table-driven kernel or the straight code (one statement per gate, k-input LUTs
expanded in line by :mod:`.c_lut`, each class counted in line by :mod:`.c_count`), around the templates that
share one ABI.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from .c_count import count_statement
from .c_lut import best_orders, lut_statement
from .c_program import LUT_KIND, CProgram, plan_program
from .errors import ParameterError
from .ir import GateGraph
from .lowering import (
    C_VECTOR,
    GATE_FUNCTIONS,
    VERSION,
    Emitted,
    gate_expression,
    geometry,
    integer_thresholds,
    model_hash,
    render,
    two_input_form,
)
from .names import c_string, check_c_prefix
from .templating import environment

ISAS = {"portable": 64, "avx2": 256, "avx512": 512}  # samples per block (vector width in bits)
ISA_FLAGS = {
    "portable": ["-std=c99"],
    "avx2": ["-std=gnu99", "-mavx2"],
    "avx512": ["-std=gnu99", "-mavx512f", "-mavx512bw", "-mavx512vl"],
}
SHAPES = ("auto", "straight", "table")
# `auto` shape: straight-line code up to 8,000 two-input gates and 4,000 k-input LUTs (several operations each).
# In line, each gate's operands and result can stay in registers and the GroupSum is counted as its outputs
# complete; on 6,000-8,000-gate nets that runs 1.24-1.62x the table kernel (docs/benchmarks.md), for about
# 1.2 ms of gcc per gate (9 s at 7,500). Past that the code outgrows the caches (48,000 gates: 0.81x) and costs
# more compile time than it saves.
STRAIGHT_LINE_MAX_GATES = 8000
STRAIGHT_LINE_MAX_LUTS = 4000
STRAIGHT_CHUNK_OPS = 500  # operations per generated function (gcc's time grows faster than linearly with it)
SLOT_WINDOW = 256  # slots per base pointer in AVX-512 straight code (lgn_window in templates/c/gates.c.j2)

_ENV = environment("c")


def _c_array(ctype: str, name: str, values, per_line: int = 16, fmt=str) -> str:
    """A static const C array; an empty one gets one dummy element (C forbids empty initializers)."""
    items = [fmt(v) for v in (values.tolist() if hasattr(values, "tolist") else values)] or ["0"]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[] = {{\n    {body}\n}};"


def _data_section(graph: GateGraph, program: CProgram, shape: str, isa: str) -> str:
    # 16-bit slots where they fit: less index traffic through the cache on the hot loop.
    index_type = "uint16_t" if program.n_slots <= 0xFFFF else "int32_t"
    parts = [
        f"#define LGN_N_SLOTS {program.n_slots} /* value vectors: the live width, not the node count */",
        f"#define LGN_N_LUTS {len(program.lut_table)}",
        f"typedef {index_type} lgn_index;",
    ]
    if shape == "table":
        parts += [
            f"#define LGN_N_GROUPS {len(program.groups)}",
            _c_array("lgn_index", "lgn_gate_a", program.a),
            _c_array("lgn_index", "lgn_gate_b", program.b),
            _c_array("lgn_index", "lgn_gate_d", program.dst),
            "static const int32_t lgn_groups[][4] = {\n    "
            + (",\n    ".join("{" + ", ".join(map(str, g)) + "}" for g in program.groups.tolist()) or "{0, 0, 0, 0}")
            + "\n};",
        ]
        if len(program.lut_table):
            parts += [
                _c_array("int32_t", "lgn_lut_in", program.lut_in.ravel()),
                _c_array("uint64_t", "lgn_lut_table", program.lut_table, per_line=4, fmt=lambda v: f"0x{v:016x}ull"),
            ]
    if shape == "table":
        parts += _group_sum_arrays(program)
        parts.append(_c_array("int32_t", "lgn_out_slot", program.outputs))
        # Classes in the order they are complete, and the group after which each is (-1: before any gate).
        by_completion = np.argsort(program.class_done, kind="stable")
        after_group = np.searchsorted(program.groups[:, 1], program.class_done[by_completion], side="right") - 1
        parts += [
            _c_array("int32_t", "lgn_count_class", by_completion),
            _c_array("int32_t", "lgn_count_group", np.where(program.class_done[by_completion] < 0, -1, after_group)),
        ]
    parts.append(_c_array("uint8_t", "lgn_out_negated", program.output_negated.astype(np.uint8), per_line=32))
    if graph.encoder is not None:
        e = graph.encoder
        as_int = integer_thresholds(e)
        parts += [
            _c_array("int32_t", "lgn_enc_feature", e.feature),
            _c_array("double", "lgn_enc_threshold", e.threshold, per_line=8, fmt=repr),
            _c_array("int32_t", "lgn_enc_threshold_int", as_int),
        ]
        if _direct_encoder(graph) and isa != "portable":  # the direct path is vector code
            parts += ["#define LGN_DIRECT_U8 1", *_direct_u8_arrays(as_int, isa)]
    return "\n".join(parts)


def _direct_u8_arrays(as_int: np.ndarray, isa: str) -> list[str]:
    """Where input bit i reads uint8 feature i: x > t <=> x >= t + 1 (``lgn_enc_at_least``), and thresholds of
    255 and above never fire. The kernels compare one vector of bytes at a time (64 on AVX-512, 32 on AVX2), run
    r covering inputs ``run * r`` on: the table is padded to whole runs, and bit k of ``lgn_enc_fire_bits[r]``
    says input ``run * r + k`` exists and can fire."""
    run = 64 if isa == "avx512" else 32
    runs = -(-len(as_int) // run)
    at_least = np.full(runs * run, 255, dtype=np.int64)
    at_least[: len(as_int)] = np.clip(as_int + 1, 0, 255)
    fires = np.zeros(runs * run, dtype=bool)
    fires[: len(as_int)] = as_int < 255
    bits = [sum(1 << k for k in np.flatnonzero(word).tolist()) for word in fires.reshape(runs, run)]
    ctype, digits = ("uint64_t", 16) if run == 64 else ("uint32_t", 8)
    suffix = "ull" if run == 64 else "u"
    return [
        _c_array("uint8_t", "lgn_enc_at_least", at_least, per_line=32),
        _c_array(ctype, "lgn_enc_fire_bits", bits, per_line=4, fmt=lambda v: f"0x{v:0{digits}x}{suffix}"),
    ]


def _group_sum_arrays(program: CProgram) -> list[str]:
    """The table shape's GroupSum order: within each class its plain outputs, then its negated ones (no
    branch per output)."""
    sum_slots, split = [], []
    for c in range(len(program.class_offsets) - 1):
        lo, hi = int(program.class_offsets[c]), int(program.class_offsets[c + 1])
        slots, negated = program.outputs[lo:hi], program.output_negated[lo:hi]
        sum_slots += slots[~negated].tolist() + slots[negated].tolist()
        split.append(lo + int((~negated).sum()))
    return [
        # 16 spare entries (slot 0): gcc's -Warray-bounds otherwise flags the 16-wide adder step, inlined, on
        # tiny nets where it can never run.
        _c_array("lgn_index", "lgn_sum_slot", sum_slots + [0] * 16),
        _c_array("int32_t", "lgn_sum_offset", program.class_offsets),
        _c_array("int32_t", "lgn_sum_split", split),
    ]


def _direct_encoder(graph: GateGraph) -> bool:
    """Whether input bit i reads raw feature i (one threshold per feature, in order)."""
    e = graph.encoder
    return e is not None and e.n_features == graph.n_inputs and bool((e.feature == np.arange(graph.n_inputs)).all())


def _straight_code(program: CProgram, isa: str, count_bits: int) -> str:
    """``lgn_eval_gates`` as one statement per gate, k-input LUTs expanded in line (:mod:`.c_lut`, ternary
    logic on AVX-512), each class's GroupSum score counted in line after the gate that completes the class
    (:mod:`.c_count`, into the ``count_bits`` vectors from ``v[n_slots + class * count_bits]``; and, where
    ``o`` is not null, the class's outputs copied to ``o[output]``, since their slots are reused), cut into
    functions of about STRAIGHT_CHUNK_OPS operations each: the compiler's time grows faster than linearly
    with a function's size, and the values live in ``v`` either way. On AVX-512 slots are named through
    windows (:func:`_slot_name`), each function declaring the ones it uses."""
    ternary = isa == "avx512"
    slot = _slot_name(windowed=ternary)
    statements: list[tuple[str, int]] = []  # (C statement, operations)
    counts_after = _counts_after(program, count_bits, ternary, slot)
    statements += counts_after.get(-1, [])
    lut_index = 0
    if len(program.lut_table):  # the input order with the fewest operations, LUT by LUT
        orders, tables = best_orders(program.lut_table, program.arity, ternary)
        lut_in = np.take_along_axis(program.lut_in, orders, axis=1).tolist()
    gates = zip(program.kind.tolist(), program.dst.tolist(), program.a.tolist(), program.b.tolist())
    for step, (kind, dst, a, b) in enumerate(gates):
        if kind == LUT_KIND:
            ins = [slot(j) for j in lut_in[lut_index]]
            statement = lut_statement(slot(dst), ins, int(tables[lut_index]), ternary)
            lut_index += 1
        else:
            statement = f"{slot(dst)} = {gate_expression(kind, slot(a), slot(b), C_VECTOR)};"
        statements.append((statement, statement.count(";")))
        statements += counts_after.get(step, [])
    chunks: list[list[str]] = [[]]
    ops = 0
    for statement, cost in statements:
        if ops >= STRAIGHT_CHUNK_OPS:
            chunks.append([])
            ops = 0
        chunks[-1].append(f"    {statement}")
        ops += cost
    parts = [
        f"static void lgn_gates_{n}(lgn_vec *v, lgn_vec *o) {{\n    (void)v;\n    (void)o;\n"
        + _window_declarations(lines)
        + "\n".join(lines)
        + "\n}"
        for n, lines in enumerate(chunks)
    ]
    calls = "\n".join(f"    lgn_gates_{n}(v, o);" for n in range(len(chunks)))
    return "\n".join(parts) + f"\nstatic void lgn_eval_gates(lgn_vec *v, lgn_vec *o) {{\n{calls}\n}}"


def _slot_name(windowed: bool):
    """How straight code names slot k: ``v[k]``, or (``windowed``) ``wJ[k - SLOT_WINDOW J - SLOT_WINDOW / 2]``
    with J = k // SLOT_WINDOW, an offset of at most 128 vectors from a window's base pointer, which AVX-512
    encodes in one byte where an offset from ``v`` takes four (the code is bound by instruction fetch)."""
    if not windowed:
        return lambda k: f"v[{k}]"
    return lambda k: f"w{k // SLOT_WINDOW}[{k % SLOT_WINDOW - SLOT_WINDOW // 2}]"


def _window_declarations(lines: list[str]) -> str:
    """``LGN_WINDOW(J);`` for each window ``wJ`` that ``lines`` use, in order."""
    used = sorted({int(j) for line in lines for j in re.findall(r"\bw(\d+)\[", line)})
    return "".join(f"    LGN_WINDOW({j});\n" for j in used)


def _counts_after(program: CProgram, count_bits: int, ternary: bool, slot) -> dict[int, list[tuple[str, int]]]:
    """Each class's counting statement, keyed by the program step after which all its outputs exist (-1:
    they are inputs or constants); ``slot`` names a slot (:func:`_slot_name`)."""
    after: dict[int, list[tuple[str, int]]] = {}
    offsets = program.class_offsets.tolist()
    for c in range(len(offsets) - 1):
        lo, hi = offsets[c], offsets[c + 1]
        outputs = zip(program.outputs[lo:hi].tolist(), program.output_negated[lo:hi].tolist())
        leaves = [(slot(k), bool(negated)) for k, negated in outputs]
        base = program.n_slots + c * count_bits
        count, ops = count_statement(leaves, [slot(base + k) for k in range(count_bits)], ternary)
        # Their slots are reused from the next gate on: a caller that wants the outputs gets them copied now.
        copies = " ".join(f"o[{lo + j}] = {lvalue};" for j, (lvalue, _) in enumerate(leaves))
        statement = f"{count} if (o) {{ {copies} }}" if copies else count
        after.setdefault(int(program.class_done[c]), []).append((statement, ops))
    return after


def choose_shape(graph: GateGraph, shape: str) -> str:
    if shape not in SHAPES:
        raise ParameterError(f"shape {shape!r} is unknown; choose one of {', '.join(SHAPES)}", "shape")
    if shape == "auto":
        mostly_luts = 2 * int((two_input_form(graph)[0] > 2).sum()) >= graph.n_gates
        limit = STRAIGHT_LINE_MAX_LUTS if mostly_luts else STRAIGHT_LINE_MAX_GATES
        return "straight" if graph.n_gates <= limit else "table"
    return shape


def _check_names(isa: str, prefix: str) -> None:
    if isa not in ISAS:
        raise ParameterError(f"isa {isa!r} is unknown; choose one of {', '.join(ISAS)} (or native)", "isa")
    check_c_prefix(prefix)


def _context(graph: GateGraph, isa: str, shape: str, prefix: str) -> dict:
    """What every C template may use."""
    shape = choose_shape(graph, shape)
    shapes = geometry(graph)
    return dict(
        prefix=prefix,
        version=VERSION,
        model_hash=model_hash(graph),
        isa=isa,
        isa_flags=" ".join(ISA_FLAGS[isa]),
        slot_window=SLOT_WINDOW,
        lanes=ISAS[isa],
        shape=shape,
        n_inputs=graph.n_inputs,
        n_gates=graph.n_gates,
        n_outputs=graph.n_outputs,
        n_classes=graph.n_classes,
        arity=graph.arity,
        count_bits=shapes.score_width,
        class_bits=shapes.class_bits,
        has_encoder=graph.encoder is not None,
        n_features=graph.encoder.n_features if graph.encoder is not None else 0,
        gate_cases=[(kind, render(expr, "A", "B", C_VECTOR)) for kind, expr in GATE_FUNCTIONS.items()],
        class_names=[c_string(n) for n in graph.names.classes] if graph.names else [],
        feature_names=[c_string(n) for n in graph.names.features] if graph.names else [],
    )


def api_declarations(graph: GateGraph, prefix: str = "lgn_net") -> str:
    """The library's function prototypes, as the header declares them: the one definition of its ABI
    (``c_build`` hands this text to cffi)."""
    context = dict(prefix=prefix, has_encoder=graph.encoder is not None)
    return _ENV.get_template("api.h.j2").render(**context)


def emit_c(graph: GateGraph, isa: str = "portable", shape: str = "auto", prefix: str = "lgn_net") -> Emitted:
    """The C library of ``graph``: ``{prefix}.c`` and ``{prefix}.h``, byte-identical for the same input."""
    _check_names(isa, prefix)
    context = _context(graph, isa, shape, prefix)
    straight = context["shape"] == "straight"
    program = plan_program(graph, context["shape"])
    context["data"] = _data_section(graph, program, context["shape"], isa)
    context["straight_code"] = _straight_code(program, isa, context["count_bits"]) if straight else ""
    files = {
        f"{prefix}.h": _ENV.get_template("lgn_net.h.j2").render(**context),
        f"{prefix}.c": _ENV.get_template("lgn_net.c.j2").render(**context),
    }
    return Emitted(files, geometry(graph), context["model_hash"])


def library_files(graph: GateGraph, isa: str = "portable", shape: str = "auto", prefix: str = "lgn_net") -> Emitted:
    """The standalone library: the ``.c`` and ``.h``, a Makefile, an example ``main.c`` and a README."""
    emitted = emit_c(graph, isa=isa, shape=shape, prefix=prefix)
    context = _context(graph, isa, shape, prefix)
    files = dict(emitted.files)
    for name, template in (("Makefile", "Makefile.j2"), ("main.c", "main.c.j2"), ("README.md", "README.md.j2")):
        files[name] = _ENV.get_template(template).render(**context)
    return dataclasses.replace(emitted, files=files)
