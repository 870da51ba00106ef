"""BLIF export, for ABC (formal equivalence with ``cec``, LUT-mapping comparisons).

Each gate becomes one ``.names`` block listing the minterms of its table over the fan-ins it depends
on; constant gates are written with no fan-ins (ABC aborts on an empty cover that has fan-ins).
Outputs are named ``o<i>``; a negated output gets its own inverter.
"""

from __future__ import annotations

import numpy as np

from .ir import FIRST_INPUT, GateGraph
from .truth import depends_on


def to_blif(graph: GateGraph, model: str = "lgn", inputs: str = "i{}", outputs: str = "o{}") -> str:
    """The combinational gate network as BLIF text. Inputs and outputs are named by the format strings
    ``inputs`` and ``outputs`` (default ``i<k>``, ``o<j>``; ABC's ``cec`` pairs two networks' ports by name,
    so a comparison with yosys' BLIF of our Verilog passes ``x[{}]`` and ``scores[{}]``)."""

    def net(node: int) -> str:
        if node < FIRST_INPUT:
            return f"c{node}"
        if node < graph.first_gate:
            return inputs.format(node - FIRST_INPUT)
        return f"n{node}"

    input_names = " ".join(inputs.format(k) for k in range(graph.n_inputs))
    output_names = " ".join(outputs.format(j) for j in range(graph.n_outputs))
    lines = [f".model {model}", f".inputs {input_names}", f".outputs {output_names}", ".names c0", ".names c1", "1"]
    k = graph.arity
    support = np.stack([depends_on(graph.tables, slot, k) for slot in range(k)], axis=1).tolist()
    for gate, (row, table) in enumerate(zip(graph.fanins.tolist(), graph.tables.tolist())):
        node = graph.first_gate + gate
        used = [slot for slot in range(k) if support[gate][slot]]
        lines.append(".names " + " ".join([net(row[s]) for s in used] + [f"n{node}"]))
        for m in range(1 << k):
            if (table >> m) & 1 and all(((m >> s) & 1) == 0 for s in range(k) if s not in used):
                lines.append("".join(str((m >> s) & 1) for s in used) + " 1" if used else "1")
    for j, (node, negated) in enumerate(zip(graph.outputs.tolist(), graph.output_negated.tolist())):
        lines.append(f".names {net(node)} {outputs.format(j)}")
        lines.append("0 1" if negated else "1 1")
    lines.append(".end")
    return "\n".join(lines) + "\n"
