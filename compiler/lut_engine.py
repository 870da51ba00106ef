"""The LUT engine: a whole classifier on an iCE40 UP5K, evaluated one LUT at a time from a program in SPRAM.

A network of a few thousand LUTs does not route on an iCE40 as a circuit (docs/benchmarks.md), but the UP5K
has 1 Mbit of single-port RAM (four SB_SPRAM256KA) and 30 block RAMs. The engine
(``templates/verilog/lgn_engine.v.j2``) keeps the graph as data: the encoder's comparisons, every gate's table
and fan-ins, and the GroupSum's outputs are rows of a program; the node values live in block RAM, one copy per
fan-in so that a gate reads all its inputs in one cycle. The circuit is a few hundred logic cells whatever the
network, so the network's size is bounded by memory, not by routing.

SPRAM cannot be initialised by the bitstream: after reset the engine takes the program (``program_bytes``,
written beside the bitstream as ``lgn_program.bin``) through the same byte stream as the samples.

Program layout: rows of 64 bits, sent as 8 little-endian bytes each. ``N`` = ``node_width`` bits of a node id
(the graph's own node ids: 0 and 1 the constants, then the inputs, then the gates).

- input rows, one per input bit, in feature order: node ``[N-1:0]``, limit ``[N+8:N]`` (the bit is
  ``byte >= limit``, 0..256), feature ``[N+24:N+9]``;
- gate entries of ``rows_per_lut`` rows each (row 0 holds the low 64 bits): the truth table in the low
  ``2**arity`` bits, then fan-in j's node id at bit ``2**arity + j * N``;
- output rows, class by class: node ``[N-1:0]``, negated ``[N]``, the class's last row ``[N+1]``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import LgnError
from .ir import FIRST_INPUT, GateGraph
from .lowering import VERSION, integer_thresholds, model_hash
from .templating import environment

SPRAM_ROWS = 16384  # four SB_SPRAM256KA side by side: 16K addresses of 64 bits
BRAMS = 30  # SB_RAM40_4K on a UP5K
BANK_BITS = 4096  # node values per SB_RAM40_4K (256 x 16)
MAX_FIELD = 1 << 16  # the engine counts features in 16 bits (every other count stays under SPRAM_ROWS)


@dataclasses.dataclass(frozen=True)
class EngineProgram:
    """A graph as the engine's program (``rows``) and the constants its Verilog is built with."""

    rows: np.ndarray  # uint64[n_rows]
    arity: int
    node_width: int
    banks: int  # block RAMs per copy of the node values
    rows_per_lut: int
    n_input_rows: int
    n_luts: int
    n_output_rows: int
    n_features: int
    first_gate: int
    score_width: int
    class_width: int
    rows_of_last_feature: int

    @property
    def latency(self) -> int:
        """Cycles from the edge that takes a sample's last byte to the one that raises out_valid: a cycle per
        input bit of the last feature and one to move on, R + 1 per gate, one per output row, three to finish."""
        return self.rows_of_last_feature + 1 + (self.rows_per_lut + 1) * self.n_luts + self.n_output_rows + 3

    @property
    def cycles_per_sample(self) -> int:
        """Cycles per sample when the bytes come as fast as the engine takes them: two per feature (its byte,
        moving on) and one per input bit, R + 1 per gate, one per output row, two to finish."""
        return 2 * self.n_features + self.n_input_rows + (self.rows_per_lut + 1) * self.n_luts + self.n_output_rows + 2

    @property
    def block_rams(self) -> int:
        return self.arity * self.banks


def _bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


def build_program(graph: GateGraph, max_rows: int | None = SPRAM_ROWS) -> EngineProgram:
    """``graph`` (with its encoder) as the engine's program. Raises :class:`LgnError` with the resource that
    does not suffice: SPRAM rows (the limit that binds on the UP5K), or the 16-bit feature count. ``max_rows``
    None: no row limit (the ECP5 engine, :mod:`.ecp5_engine`, checks its block RAM itself)."""
    e = graph.encoder
    if e is None:
        raise LgnError("the LUT engine takes raw feature bytes: the graph needs encoder thresholds")
    arity = max(1, graph.arity)
    n_gates = max(1, graph.n_gates)  # a graph without gates gets one that nothing reads
    n_nodes = graph.first_gate + n_gates
    banks = -(-n_nodes // BANK_BITS)
    node_width = 12 + _bits(banks) if banks > 1 else 12
    rows_per_lut = -(-((1 << arity) + arity * node_width) // 64)

    n_rows = graph.n_inputs + n_gates * rows_per_lut + len(graph.outputs)
    if max_rows is not None and n_rows > max_rows:  # before any row is built: a large graph fails at once
        raise LgnError(
            f"the LUT engine's program needs {n_rows:,} rows of 64 bits, the UP5K's SPRAM holds {max_rows:,}"
        )
    if e.n_features >= MAX_FIELD:
        raise LgnError(f"the LUT engine counts features in 16 bits: {e.n_features:,} is too many")

    order = np.argsort(e.feature, kind="stable")
    limits = integer_thresholds(e) + 1  # bit = byte >= limit, 0 .. 256
    node = FIRST_INPUT + order.astype(np.uint64)
    input_rows = node | (limits[order].astype(np.uint64) << np.uint64(node_width))
    input_rows |= e.feature[order].astype(np.uint64) << np.uint64(node_width + 9)

    lut_rows: list[int] = []
    fanins = graph.fanins if graph.n_gates else np.zeros((1, arity), np.int32)
    tables = graph.tables if graph.n_gates else np.zeros(1, np.uint64)
    row_mask = (1 << 64) - 1
    for table, ins in zip(tables.tolist(), fanins.tolist()):
        word = int(table)
        for j, fanin in enumerate(ins):
            word |= int(fanin) << ((1 << arity) + j * node_width)
        lut_rows.extend((word >> (64 * r)) & row_mask for r in range(rows_per_lut))

    last = np.zeros(len(graph.outputs), np.uint64)
    last[graph.class_offsets[1:] - 1] = 1  # each class's last output (no class is empty: the IR's rule)
    output_rows = graph.outputs.astype(np.uint64) | graph.output_negated.astype(np.uint64) << np.uint64(node_width)
    output_rows |= last << np.uint64(node_width + 1)

    rows = np.concatenate([input_rows, np.asarray(lut_rows, np.uint64), output_rows])
    groups = np.diff(graph.class_offsets)
    program = EngineProgram(
        rows=rows,
        arity=arity,
        node_width=node_width,
        banks=banks,
        rows_per_lut=rows_per_lut,
        n_input_rows=len(input_rows),
        n_luts=n_gates,
        n_output_rows=len(output_rows),
        n_features=e.n_features,
        first_gate=graph.first_gate,
        score_width=_bits(int(groups.max()) + 1),
        class_width=_bits(graph.n_classes),
        rows_of_last_feature=int((e.feature == e.n_features - 1).sum()),
    )
    # Every node but the constants has a row (an input row or a gate's first), so a program that fits has at most
    # 16,386 nodes: 5 banks of node values, 6 x 5 = 30 block RAMs, the UP5K's count.
    assert (max_rows != SPRAM_ROWS or program.block_rams <= BRAMS) and len(rows) == n_rows
    return program


def program_bytes(program: EngineProgram) -> bytes:
    """What to send after reset, before the first sample: each row as 8 little-endian bytes."""
    return program.rows.astype("<u8").tobytes()


def engine_verilog(graph: GateGraph, program: EngineProgram | None = None, module: str = "lgn_top") -> str:
    """The engine's Verilog (``module`` and ``{module}_bits``), the same ports as the streaming top."""
    p = program or build_program(graph)
    return (
        environment("verilog")
        .get_template("lgn_engine.v.j2")
        .render(
            module=module,
            version=VERSION,
            model_hash=model_hash(graph),
            n_rows=len(p.rows),
            n_features=p.n_features,
            n_input_rows=p.n_input_rows,
            n_luts=p.n_luts,
            n_output_rows=p.n_output_rows,
            rows_per_lut=p.rows_per_lut,
            arity=p.arity,
            node_width=p.node_width,
            banks=p.banks,
            first_gate=p.first_gate,
            score_width=p.score_width,
            class_width=p.class_width,
            r_width=_bits(p.rows_per_lut + 1),
            latency=p.latency,
        )
    )
