"""Verilog backend, emission: GateGraph -> synthesizable Verilog-2001 (pure and deterministic).

One module with the gate network as one procedural block in topological order (Icarus simulates
that several times faster than one continuous assignment per gate), a balanced adder tree per class
for GroupSum, a comparator tree for argmax (ties to the lower index), and the encoder's comparators
when the input is raw features (bytes, or signed integer or fixed-point words: :mod:`.verilog_encoder`).
Pipelined (``pipeline=N``): the datapath's logic levels (gate
levels, then adder levels, then comparator levels) get a register stage every N levels and one at the
end; values that cross a stage boundary are copied into registers on demand.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from .errors import LgnError, ParameterError
from .ir import FIRST_INPUT, GateGraph
from .lowering import VERILOG, VERSION, Emitted, Geometry, gate_expression, geometry, model_hash, two_input_form
from .names import check_module_name
from .raw_input import RawFormat, raw_format
from .templating import environment
from .verilog_encoder import encoder_assigns, port_context

_ENV = environment("verilog")


@dataclasses.dataclass
class _Datapath:
    """Builds the body: named signals with a logic level each, registers inserted where needed."""

    pipeline: int | None
    regs: list[str] = dataclasses.field(default_factory=list)  # declarations of pipeline registers
    flops: list[str] = dataclasses.field(default_factory=list)  # their non-blocking assignments
    copies: dict = dataclasses.field(default_factory=dict)

    def stage(self, level: int) -> int:
        """The pipeline stage whose logic computes ``level`` (level 0 = the inputs, in stage 0)."""
        if self.pipeline is None or level <= 0:
            return 0
        return (level - 1) // self.pipeline

    def at(self, name: str, width: int, level: int, stage: int) -> str:
        """``name`` (computed at ``level``) as seen in ``stage``: registered once per stage crossed."""
        if name.startswith(("1'b", "{")) or self.pipeline is None:
            return name
        have = self.stage(level)
        current = name
        for k in range(have + 1, stage + 1):
            key = (name, k)
            if key not in self.copies:
                base = re.sub(r"\W", "_", name)
                copy = f"{base}_s{k}"
                self.regs.append(f"    reg {_range(width)}{copy};")
                self.flops.append(f"        {copy} <= {current};")
                self.copies[key] = copy
            current = self.copies[key]
        return current


def _range(width: int) -> str:
    return f"[{width - 1}:0] " if width > 1 else ""


def _gate_lines(graph: GateGraph, path: _Datapath, input_name) -> tuple[list[str], list[str], list[str]]:
    """Declarations, localparams and the procedural block of the gate network."""
    support, slot_a, slot_b, small = two_input_form(graph)
    first = graph.first_gate
    levels = graph.levels
    node_level = np.zeros(graph.n_nodes, dtype=np.int64)
    node_level[first:] = levels

    def ref(node: int, consumer_level: int) -> str:
        if node < FIRST_INPUT:
            return f"1'b{node}"
        name = input_name(node - FIRST_INPUT) if node < first else f"n{node}"
        return path.at(name, 1, int(node_level[node]), path.stage(consumer_level))

    declarations, params, body, regs, wires, own = [], [], [], [], [], []
    order = np.argsort(levels, kind="stable")
    rows, tables = graph.fanins.tolist(), graph.tables.tolist()
    for g in order.tolist():
        node, level = first + g, int(levels[g])
        row = rows[g]
        if support[g] <= 2:
            read = [row[slot_a[g]], row[slot_b[g]]][: int(support[g])]
            a = ref(read[0], level) if read else ""
            b = ref(read[1], level) if len(read) == 2 else a
            expr = gate_expression(int(small[g]), a, b, VERILOG)
        else:
            k = graph.arity
            read = row
            params.append(
                f"    localparam [{(1 << k) - 1}:0] T{node} = {1 << k}'h{tables[g]:0{max(1, (1 << k) // 4)}x};"
            )
            index = ", ".join(ref(row[s], level) for s in reversed(range(k)))
            expr = f"T{node}[{{{index}}}]"
        if all(r < FIRST_INPUT for r in read):
            # Reads only constants: a wire. An `always @*` block that reads no signal never runs: X forever.
            wires.append(f"n{node}")
            own.append(f"    assign n{node} = {expr};")
        elif support[g] > 2:
            # A k-input LUT gets a block of its own: one shared block of thousands of table lookups is slow to
            # elaborate in yosys, and as a continuous assignment Icarus simulates it about 500x slower.
            regs.append(f"n{node}")
            own.append(f"    always @* n{node} = {expr};")
        else:
            regs.append(f"n{node}")
            body.append(f"        n{node} = {expr};")
    for kind, names in (("reg", regs), ("wire", wires)):
        for i in range(0, len(names), 16):
            declarations.append(f"    {kind} " + ", ".join(names[i : i + 16]) + ";")
    block = own + (["    always @* begin", *body, "    end"] if body else [])  # own: a statement per gate
    return declarations, params, block


def _adder_tree(
    leaves: list[tuple[str, int, int]], path: _Datapath, prefix: str, depth: int, lines: list[str]
) -> tuple[str, int, int]:
    """Pairwise sums, one tree level per logic level; returns (name, width, level) of the total."""
    level_nodes = leaves
    for step in range(depth):
        nxt = []
        for i in range(0, len(level_nodes), 2):
            pair = level_nodes[i : i + 2]
            if len(pair) == 1:
                nxt.append(pair[0])
                continue
            (a, wa, la), (b, wb, lb) = pair
            level = max(la, lb) + 1
            width = max(wa, wb) + 1
            name = f"{prefix}_{step}_{i // 2}"
            stage = path.stage(level)
            lines.append(f"    wire {_range(width)}{name} = {path.at(a, wa, la, stage)} + {path.at(b, wb, lb, stage)};")
            nxt.append((name, width, level))
        level_nodes = nxt
    (total,) = level_nodes
    return total


def _class_sums(graph: GateGraph, path: _Datapath, shapes: Geometry) -> tuple[list[tuple[str, int, int]], list[str]]:
    """One balanced adder tree per class over its outputs (negations applied): the (name, width, level) of
    each class's score, and the lines that compute them."""
    first = graph.first_gate
    node_level = np.zeros(graph.n_nodes, dtype=np.int64)
    node_level[first:] = graph.levels
    sums, lines = [], []
    for c in range(graph.n_classes):
        lo, hi = int(graph.class_offsets[c]), int(graph.class_offsets[c + 1])
        leaves = []
        for j in range(lo, hi):
            node, negated = int(graph.outputs[j]), bool(graph.output_negated[j])
            if node < FIRST_INPUT:
                leaves.append((f"1'b{node ^ int(negated)}", 1, 0))
                continue
            name = f"x[{node - FIRST_INPUT}]" if node < first else f"n{node}"
            level = int(node_level[node])
            if negated:
                inv = f"o{j}_n"
                lines.append(f"    wire {inv} = ~{path.at(name, 1, level, path.stage(level))};")
                name = inv
            leaves.append((name, 1, level))
        sums.append(_adder_tree(leaves, path, f"sum{c}", shapes.adder_depth, lines))
    return sums, lines


def _argmax_tree(sums: list[tuple[str, int, int]], path: _Datapath, shapes: Geometry) -> tuple[list[str], tuple]:
    """A comparator tree over (score, index); the left (lower-index) candidate wins ties. Returns its lines
    and the winner as (score, width, level, index)."""
    class_width = shapes.class_width
    candidates = [(name, width, level, f"{class_width}'d{c}") for c, (name, width, level) in enumerate(sums)]
    lines = []
    for step in range(shapes.compare_depth):
        nxt = []
        for i in range(0, len(candidates), 2):
            pair = candidates[i : i + 2]
            if len(pair) == 1:
                nxt.append(pair[0])
                continue
            (sa, wa, la, ia), (sb, wb, lb, ib) = pair
            level = max(la, lb, shapes.depth + shapes.adder_depth) + 1
            stage = path.stage(level)
            width = max(wa, wb)
            a_s, b_s = path.at(sa, wa, la, stage), path.at(sb, wb, lb, stage)
            a_i = ia if ia[0].isdigit() else path.at(ia, class_width, la, stage)
            b_i = ib if ib[0].isdigit() else path.at(ib, class_width, lb, stage)
            pick = f"cmp_{step}_{i // 2}"
            lines += [
                f"    wire {pick}_right = {b_s} > {a_s};",
                f"    wire {_range(width)}{pick}_score = {pick}_right ? {b_s} : {a_s};",
                f"    wire {_range(class_width)}{pick}_index = {pick}_right ? {b_i} : {a_i};",
            ]
            nxt.append((f"{pick}_score", width, level, f"{pick}_index"))
        candidates = nxt
    return lines, candidates[0]


def emit_verilog(
    graph: GateGraph,
    module: str = "lgn_net",
    pipeline: int | None = None,
    raw_input: bool | RawFormat | None = None,
    with_argmax: bool = True,
) -> Emitted:
    """``{module}.v`` for ``graph``; byte-identical for the same arguments.

    ``raw_input``: take raw features through the encoder, as a :class:`RawFormat` or as bytes (True); False:
    the encoded input bits; None: bytes for an image model, else bits (:func:`~.raw_input.raw_format`).
    """
    check_module_name(module)
    if pipeline is not None and pipeline < 1:
        raise ParameterError(f"pipeline must be at least 1 (levels per register stage), got {pipeline}", "pipeline")
    fmt = raw_format(graph, raw_input)
    if graph.n_inputs == 0:
        raise LgnError("a Verilog module needs at least one input bit")
    shapes = geometry(graph)
    latency = shapes.latency(pipeline)
    path = _Datapath(pipeline)
    encoder_lines = encoder_assigns(graph, fmt) if fmt is not None else []
    declarations, params, network = _gate_lines(graph, path, lambda i: f"x[{i}]")
    sums, group_lines = _class_sums(graph, path, shapes)
    argmax_lines, (_, _, win_level, win_index) = _argmax_tree(sums, path, shapes)

    def out(name: str, width: int, level: int) -> str:
        """Pipelined: one more register stage at the very end, so outputs come from flip-flops."""
        if not pipeline or name[0].isdigit():
            return name
        return path.at(name, width, level, latency)

    w = shapes.score_width
    outputs = [f"    assign scores[{w * c} +: {w}] = {out(*total)};" for c, total in enumerate(sums)]
    if with_argmax:
        outputs.append(f"    assign class_out = {out(win_index, shapes.class_width, win_level)};")
    else:
        argmax_lines = []
    argmax_lines += outputs
    if path.flops:
        registers = ["    // ---- pipeline registers ----", *path.regs, "    always @(posedge clk) begin", *path.flops]
        argmax_lines += ["", *registers, "    end"]
    context = dict(
        module=module,
        version=VERSION,
        model_hash=model_hash(graph),
        n_inputs=graph.n_inputs,
        n_gates=graph.n_gates,
        depth=shapes.depth,
        n_outputs=graph.n_outputs,
        n_classes=graph.n_classes,
        **port_context(fmt),
        n_features=graph.encoder.n_features if graph.encoder is not None else 0,
        score_width=w,
        class_width=shapes.class_width,
        pipelined=pipeline is not None,
        pipeline=pipeline,
        latency=latency,
        with_argmax=with_argmax,
        encoder="\n".join(encoder_lines),
        declarations="\n".join(declarations + params),
        network="\n".join(network),
        group_sum="\n".join(group_lines),
        argmax="\n".join(argmax_lines),
    )
    text = _ENV.get_template("lgn_net.v.j2").render(**context)
    return Emitted({f"{module}.v": text}, shapes, model_hash(graph))


@dataclasses.dataclass(frozen=True)
class Interface:
    """What a testbench needs to know about an emitted module."""

    module: str
    raw_input: bool
    pipelined: bool
    latency: int
    score_width: int
    class_width: int
    raw: RawFormat | None = None  # the raw features' format, when ``raw_input``


def interface(
    graph: GateGraph, module: str = "lgn_net", pipeline: int | None = None,
    raw_input: bool | RawFormat | None = None,
) -> Interface:  # fmt: skip
    shapes = geometry(graph)
    fmt = raw_format(graph, raw_input)
    return Interface(
        module,
        fmt is not None,
        pipeline is not None,
        shapes.latency(pipeline),
        shapes.score_width,
        shapes.class_width,
        fmt,
    )


def network_only(graph: GateGraph) -> GateGraph:
    """The gate network with its output bits as one class each (GroupSum of size 1 is the bit itself)."""
    return graph.replace(class_offsets=np.arange(graph.n_outputs + 1), encoder=None, names=None)


def head_only(graph: GateGraph) -> GateGraph:
    """GroupSum and argmax alone: a graph without gates whose outputs read its inputs directly."""
    return GateGraph.build(
        n_inputs=graph.n_outputs,
        fanins=np.zeros((0, graph.arity), dtype=np.int64),
        tables=np.zeros(0, dtype=np.uint64),
        outputs=FIRST_INPUT + np.arange(graph.n_outputs),
        output_negated=graph.output_negated,
        class_offsets=graph.class_offsets,
    )


def package_files(
    graph: GateGraph, module: str = "lgn_net", pipeline: int | None = None,
    raw_input: bool | RawFormat | None = None,
) -> Emitted:  # fmt: skip
    """The ``.v`` file and a README of its interface, for ``lgn compile --target verilog``."""
    emitted = emit_verilog(graph, module=module, pipeline=pipeline, raw_input=raw_input)
    iface = interface(graph, module, pipeline, raw_input)
    readme = _ENV.get_template("README.md.j2").render(
        module=module,
        version=VERSION,
        model_hash=emitted.model_hash,
        n_inputs=graph.n_inputs,
        n_gates=graph.n_gates,
        n_classes=graph.n_classes,
        pipelined=iface.pipelined,
        pipeline=pipeline,
        latency=iface.latency,
        **port_context(iface.raw),
        n_features=graph.encoder.n_features if graph.encoder is not None else 0,
        score_width=iface.score_width,
        class_width=iface.class_width,
        class_names=graph.names.classes if graph.names else (),
        feature_names=graph.names.features if graph.names else (),
    )
    return dataclasses.replace(emitted, files={**emitted.files, "README.md": readme})
