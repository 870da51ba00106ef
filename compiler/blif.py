"""BLIF export, for ABC (formal equivalence with ``cec``, LUT-mapping comparisons).

Each gate becomes one ``.names`` block listing the minterms of its table over the fan-ins it depends
on; constant gates are written with no fan-ins (ABC aborts on an empty cover that has fan-ins).
Outputs are named ``o<i>``; a negated output gets its own inverter.
"""

from __future__ import annotations

import numpy as np

from .ir import FIRST_INPUT, GateGraph
from .truth import depends_on


def _net(graph: GateGraph, node: int) -> str:
    if node < FIRST_INPUT:
        return f"c{node}"
    if node < graph.first_gate:
        return f"i{node - FIRST_INPUT}"
    return f"n{node}"


def to_blif(graph: GateGraph, model: str = "lgn") -> str:
    """The combinational gate network with inputs ``i<k>`` and outputs ``o<j>`` as BLIF text."""
    inputs = " ".join(f"i{k}" for k in range(graph.n_inputs))
    outputs = " ".join(f"o{j}" for j in range(graph.n_outputs))
    lines = [f".model {model}", f".inputs {inputs}", f".outputs {outputs}", ".names c0", ".names c1", "1"]
    k = graph.arity
    support = np.stack([depends_on(graph.tables, slot, k) for slot in range(k)], axis=1).tolist()
    for gate, (row, table) in enumerate(zip(graph.fanins.tolist(), graph.tables.tolist())):
        node = graph.first_gate + gate
        used = [slot for slot in range(k) if support[gate][slot]]
        lines.append(".names " + " ".join([_net(graph, row[s]) for s in used] + [f"n{node}"]))
        for m in range(1 << k):
            if (table >> m) & 1 and all(((m >> s) & 1) == 0 for s in range(k) if s not in used):
                lines.append("".join(str((m >> s) & 1) for s in used) + " 1" if used else "1")
    for j, (node, negated) in enumerate(zip(graph.outputs.tolist(), graph.output_negated.tolist())):
        lines.append(f".names {_net(graph, node)} o{j}")
        lines.append("0 1" if negated else "1 1")
    lines.append(".end")
    return "\n".join(lines) + "\n"
