"""LUT-native Verilog: a :class:`~lgn.compiler.hardware.Design` netlist written LUT by LUT, so synthesis keeps
our mapping (pure and deterministic).

Targets: ``generic`` (each LUT a constant table indexed by its inputs, which every simulator and synthesis
tool reads), ``ice40`` (``SB_LUT4`` instances, at most 4 inputs), ``xilinx`` (``LUT6`` instances), ``ecp5``
(Lattice ``LUT4`` instances), ``gowin`` (Gowin ``LUT4`` instances, ``F = INIT[{I3, I2, I1, I0}]`` as in yosys'
``gowin/cells_sim.v``). Table bit m is the output for the inputs m = sum_k x_k 2^k, which is the INIT order of
every vendor's cell (I0, or A, is the least significant address bit). Pipelined (``pipeline=N``): a register
stage every N LUT levels and one at the end, as the gate-level emitter does.
"""

from __future__ import annotations

import numpy as np

from . import truth
from .errors import LgnError, ParameterError
from .hardware import Design, widen
from .ir import FIRST_INPUT
from .lowering import VERSION, Emitted, Geometry, model_hash
from .names import check_module_name
from .templating import environment
from .verilog_emit import _Datapath
from .verilog_encoder import port_context

TARGETS = {"generic": 6, "ice40": 4, "xilinx": 6, "ecp5": 4, "gowin": 4}
ZERO = "1'b0"
_ENV = environment("verilog")


def _support(graph) -> np.ndarray:
    k = graph.arity
    if not graph.n_gates:
        return np.zeros((0, k), dtype=bool)
    return np.stack([truth.depends_on(graph.tables, s, k) for s in range(k)], axis=1)


def _cell(target: str, node: int, inputs: list[str], table: int, k: int) -> list[str]:
    """One LUT: ``inputs`` are its fan-in slots in order (unused slots read 1'b0)."""
    if target in ("ice40", "xilinx", "ecp5", "gowin"):
        size = TARGETS[target]
        padded = inputs + [ZERO] * (size - len(inputs))
        pins = ", ".join(f".I{j}({name})" for j, name in enumerate(padded))
        init = widen(table, len(inputs), size)  # the unused pins read 0: any value there must give the same
        if target == "ecp5":  # Lattice's LUT4: Z = INIT[{D, C, B, A}], A the least significant, as I0
            pins = ", ".join(f".{'ABCD'[j]}({name})" for j, name in enumerate(padded))
            return [f"    LUT4 #(.INIT(16'h{init:04x})) l{node} ({pins}, .Z(n{node}));"]
        if target == "gowin":  # Gowin's LUT4: F = INIT[{I3, I2, I1, I0}]
            return [f"    LUT4 #(.INIT(16'h{init:04x})) l{node} (.F(n{node}), {pins});"]
        if target == "ice40":
            return [f"    SB_LUT4 #(.LUT_INIT(16'h{init:04x})) l{node} (.O(n{node}), {pins});"]
        return [f"    LUT6 #(.INIT(64'h{init:016x})) l{node} (.O(n{node}), {pins});"]
    width = 1 << k
    index = ", ".join(reversed(inputs)) if inputs else "1'b0"
    return [
        f"    localparam [{width - 1}:0] T{node} = {width}'h{table:0{max(1, width // 4)}x};",
        f"    assign n{node} = T{node}[{{{index}}}];",
    ]


def _body(design: Design, target: str, path: _Datapath, input_name) -> tuple[list[str], int]:
    """The LUT lines, the output assignments and the pipeline registers; and the latency."""
    g = design.netlist
    k = TARGETS[target] if target != "generic" else g.arity
    node_level = np.zeros(g.n_nodes, dtype=np.int64)
    node_level[g.first_gate :] = g.levels
    depth = g.depth
    latency = max(1, -(-depth // path.pipeline)) if path.pipeline else 0

    def ref(node: int, stage: int) -> str:
        if node < FIRST_INPUT:
            return f"1'b{node}"
        name = input_name(node - FIRST_INPUT) if node < g.first_gate else f"n{node}"
        return path.at(name, 1, int(node_level[node]), stage)

    lines = []
    names = [f"n{g.first_gate + i}" for i in range(g.n_gates)]
    for i in range(0, len(names), 16):
        lines.append("    wire " + ", ".join(names[i : i + 16]) + ";")
    support = _support(g)
    for gate in np.argsort(g.levels, kind="stable").tolist():
        node, level = g.first_gate + gate, int(g.levels[gate])
        slots = [s for s in range(g.arity) if support[gate, s]]
        if len(slots) > k:
            raise LgnError(f"LUT {node} reads {len(slots)} inputs; {target} LUTs take at most {k}")
        inputs = [ref(int(g.fanins[gate, s]), path.stage(level)) for s in slots]
        lines += _cell(target, node, inputs, _compact(int(g.tables[gate]), slots), max(1, len(slots)))
    final = latency if path.pipeline else 0
    outputs = [(f"{'~' if neg else ''}{ref(int(o), final)}") for o, neg in zip(g.outputs, g.output_negated)]
    n_score = design.n_classes * design.score_width if design.with_scores else 0
    lines += [f"    assign scores[{j}] = {outputs[j]};" for j in range(n_score)]
    lines += [f"    assign class_out[{j}] = {outputs[n_score + j]};" for j in range(design.class_width)]
    if path.flops:
        lines += ["    // ---- pipeline registers ----", *path.regs, "    always @(posedge clk) begin", *path.flops]
        lines.append("    end")
    return lines, latency


def _compact(table: int, slots: list[int]) -> int:
    """The table over its used slots only (slot ``slots[j]`` becomes input j)."""
    out = 0
    for m in range(1 << len(slots)):
        full = sum(((m >> j) & 1) << s for j, s in enumerate(slots))
        out |= ((table >> full) & 1) << m
    return out


def emit_design(
    design: Design, module: str = "lgn_net", target: str = "generic", pipeline: int | None = None
) -> Emitted:
    """``{module}.v``: the design netlist as ``target`` LUTs; byte-identical for the same arguments."""
    check_module_name(module)
    if target not in TARGETS:
        raise ParameterError(f"target {target!r} is unknown; choose {', '.join(TARGETS)}", "target")
    if pipeline is not None and pipeline < 1:
        raise ParameterError(f"pipeline must be at least 1 (levels per register stage), got {pipeline}", "pipeline")
    g = design.netlist
    path = _Datapath(pipeline)
    input_name = (lambda i: f"features[{i}]") if design.raw_input else (lambda i: f"x[{i}]")
    body, latency = _body(design, target, path, input_name)
    context = dict(
        module=module,
        version=VERSION,
        model_hash=model_hash(g),
        n_luts=g.n_gates,
        k=TARGETS[target] if target != "generic" else g.arity,
        target=target,
        depth=g.depth,
        **port_context(design.raw),
        n_features=g.n_inputs // design.raw.width if design.raw is not None else 0,
        n_inputs=g.n_inputs,
        with_scores=design.with_scores,
        score_width=design.score_width,
        class_width=design.class_width,
        n_classes=design.n_classes,
        pipelined=pipeline is not None,
        pipeline=pipeline,
        latency=latency,
        body="\n".join(body),
    )
    text = _ENV.get_template("lgn_design.v.j2").render(**context)
    shapes = Geometry(g.n_inputs, design.n_classes, g.depth, design.score_width, design.class_width, 0, 0)
    return Emitted({f"{module}.v": text}, shapes, str(context["model_hash"]))
