"""The only bridge from torch to the compiler: a trained network -> a GateGraph (.npz), and the model
verifier that holds the discretized torch network against its graph."""

from __future__ import annotations

import dataclasses

import numpy as np

from lgn.compiler.ir import FIRST_INPUT, Encoder, GateGraph
from lgn.compiler.names import Names
from lgn.compiler.verify import Answers, Comparison, compare, evaluator_answers

from .layers import LogicNet


def to_graph(model: LogicNet, encoder: Encoder | None = None, names: Names | None = None) -> GateGraph:
    """The discretized network as an IR graph: one k-input LUT per gate, class groups for GroupSum, the
    encoder's thresholds so compiled artifacts can take raw features, and the names of features and classes
    with the GroupSum temperature the network was trained with (``names.tau``, for class probabilities; a
    model without names gets names that carry only it)."""
    fanins, tables = [], []
    reads_from = FIRST_INPUT  # node id of the first value the current layer reads
    next_gate = FIRST_INPUT + model.layers[0].in_features
    for layer in model.layers:
        fanins.append(reads_from + layer.selected_wiring().cpu().numpy().astype(np.int64))
        tables.append(layer.truth_tables().cpu().numpy().astype(np.int64).view(np.uint64))
        reads_from, next_gate = next_gate, next_gate + layer.out_features
    first_output = reads_from  # the last layer's first gate
    width, classes = model.layers[-1].out_features, model.group_sum.classes
    return GateGraph.build(
        n_inputs=model.layers[0].in_features,
        fanins=np.concatenate(fanins),
        tables=np.concatenate(tables),
        outputs=np.arange(first_output, first_output + width),
        class_offsets=np.arange(0, width + 1, width // classes),
        encoder=encoder,
        names=dataclasses.replace(names if names is not None else Names(), tau=model.group_sum.tau),
    )


def discrete_answers(model: LogicNet, bits: np.ndarray) -> Answers:
    """The discretized torch network's GroupSum scores and classes (ties to the lowest class) on input bits."""
    import torch

    scores = model.discrete_scores(torch.as_tensor(np.asarray(bits))).cpu().numpy()
    return Answers(scores, scores.argmax(axis=1))


def verify_model(model: LogicNet, graph: GateGraph, bits: np.ndarray) -> Comparison:
    """The model verifier: the discretized torch network against the evaluator on ``graph`` (its export),
    every score and every class."""
    return compare(evaluator_answers(graph, bits, with_outputs=False), discrete_answers(model, bits))
