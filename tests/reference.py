"""A second, deliberately naive evaluator (one sample, one gate at a time) to check the oracle itself."""

from lgn.compiler import truth
from lgn.compiler.ir import FIRST_INPUT, GateGraph


def naive_outputs(graph: GateGraph, bits) -> list[int]:
    value = [0, 1] + [int(b) for b in bits]
    for row, table in zip(graph.fanins.tolist(), graph.tables.tolist()):
        value.append(truth.evaluate_table(table, [value[s] for s in row]))
    assert len(value) == graph.n_nodes and FIRST_INPUT == 2
    return [value[o] ^ int(n) for o, n in zip(graph.outputs.tolist(), graph.output_negated.tolist())]


def naive_scores(graph: GateGraph, bits) -> list[int]:
    outs = naive_outputs(graph, bits)
    off = graph.class_offsets.tolist()
    return [sum(outs[off[c] : off[c + 1]]) for c in range(graph.n_classes)]
