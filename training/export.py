"""The only bridge from torch to the compiler: a trained network -> a GateGraph (.npz), and the model
verifier that holds the discretized torch network against its graph."""

from __future__ import annotations

import dataclasses

import numpy as np

from lgn.compiler.ir import FIRST_INPUT, Encoder, GateGraph
from lgn.compiler.names import Names
from lgn.compiler.verify import Answers, Comparison, compare, evaluator_answers

from .conv_unroll import unroll
from .layers import LogicNet


def to_graph(model: LogicNet, encoder: Encoder | None = None, names: Names | None = None) -> GateGraph:
    """The discretized network as an IR graph: one k-input LUT per gate, class groups for GroupSum, the
    encoder's thresholds so compiled artifacts can take raw features, and the names of features and classes
    with the GroupSum temperature the network was trained with (``names.tau``, for class probabilities; a
    model without names gets names that carry only it)."""
    fanins, tables = [], []
    n_inputs = model.layers[0].in_features if model.conv is None else model.conv.in_features
    arity = model.arity if model.conv is None else max(model.arity, 2)
    reads = FIRST_INPUT + np.arange(model.layers[0].in_features)  # node id of each value the layer reads
    next_gate = FIRST_INPUT + n_inputs
    if model.conv is not None:  # every position of every tree a gate, every pooling window ORs (conv_unroll)
        stack = unroll(model.conv.stack, model.conv.input_nodes(FIRST_INPUT), next_gate)
        fanins.append(_widened_fanins(stack.fanins, arity))
        tables.append(_widened_tables(stack.tables, 2, arity))
        reads, next_gate = stack.outputs, stack.next_node
    for layer in model.layers:
        fanins.append(_widened_fanins(reads[layer.selected_wiring().cpu().numpy().astype(np.int64)], arity))
        layer_tables = layer.truth_tables().cpu().numpy().astype(np.int64).view(np.uint64)
        tables.append(_widened_tables(layer_tables, layer.arity, arity))
        reads, next_gate = next_gate + np.arange(layer.out_features), next_gate + layer.out_features
    width, classes = model.layers[-1].out_features, model.group_sum.classes
    return GateGraph.build(
        n_inputs=n_inputs,
        fanins=np.concatenate(fanins),
        tables=np.concatenate(tables),
        outputs=reads,  # the last layer's gates
        class_offsets=np.arange(0, width + 1, width // classes),
        encoder=encoder,
        names=dataclasses.replace(names if names is not None else Names(), tau=model.group_sum.tau),
    )


def _widened_tables(tables: np.ndarray, from_arity: int, arity: int) -> np.ndarray:
    """Tables over ``from_arity`` inputs as tables over ``arity`` that ignore the extra ones (copies side by
    side, as :func:`lgn.compiler.hardware.widen` makes one)."""
    tables, width = np.asarray(tables, dtype=np.uint64), 1 << from_arity
    copies = [tables << np.uint64(width * copy) for copy in range(1 << (arity - from_arity))]
    return np.bitwise_or.reduce(copies, axis=0) if len(copies) > 1 else tables


def _widened_fanins(fanins: np.ndarray, arity: int) -> np.ndarray:
    """``fanins`` with its slots past its own arity reading node 0 (the IR's rule for unused slots)."""
    extra = np.zeros((fanins.shape[0], arity - fanins.shape[1]), dtype=np.int64)
    return np.concatenate([fanins.astype(np.int64), extra], axis=1)


def discrete_answers(model: LogicNet, bits: np.ndarray) -> Answers:
    """The discretized torch network's GroupSum scores and classes (ties to the lowest class) on input bits."""
    import torch

    scores = model.discrete_scores(torch.as_tensor(np.asarray(bits))).cpu().numpy()
    return Answers(scores, scores.argmax(axis=1))


def verify_model(model: LogicNet, graph: GateGraph, bits: np.ndarray) -> Comparison:
    """The model verifier: the discretized torch network against the evaluator on ``graph`` (its export),
    every score and every class."""
    return compare(evaluator_answers(graph, bits, with_outputs=False), discrete_answers(model, bits))
