"""The torch side of the ``lgn`` CLI (train, export, verify MODEL); imported only when such a command runs,
so the compiler's commands never load torch."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from compiler import evaluate, formats
from compiler.errors import LgnError
from compiler.ir import GateGraph

from . import encoding
from .checkpoint import load_checkpoint
from .data import load_dataset
from .export import to_graph
from .trainer import TrainConfig, setup_distributed, train

EXIT_OK, EXIT_CHECK_FAILED = 0, 1


def cmd_train(args) -> int:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields and v is not None})
    distributed = setup_distributed(cfg.device)
    try:
        result = train(cfg)
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    if result.interrupted:
        print(f"interrupted; the best checkpoint so far is {cfg.out}")
        return 130
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        last = result.history[-1] if result.history else {}
        print(
            f"trained {cfg.steps} steps in {result.seconds:.1f} s; best discretized test accuracy "
            f"{result.best_discrete:.4f} (last: relaxed {last.get('test_acc', float('nan')):.4f}, "
            f"discretized {last.get('test_acc_discrete', float('nan')):.4f}); wrote {cfg.out}"
        )
    return EXIT_OK


def graph_from_model(path: str) -> GateGraph:
    model, encoder, _ = load_checkpoint(path)
    return to_graph(model, encoder)


def cmd_export(args) -> int:
    graph = graph_from_model(args.model)
    try:
        formats.save_npz(graph, args.out)
    except OSError as exc:
        raise LgnError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    print(f"wrote {args.out}: {graph.n_inputs} inputs, {graph.n_gates} gates, {graph.n_classes} classes")
    return EXIT_OK


def dataset_bits(graph: GateGraph, dataset: str, data_dir: str | None, limit: int | None = None):
    """The test split of ``dataset`` as raw features, input bits (through the graph's encoder), labels."""
    if graph.encoder is None:
        raise LgnError("--dataset needs a graph with encoder thresholds (exported from a trained model)")
    data = load_dataset(dataset, data_dir)
    raw, labels = data.x_test[:limit], data.y_test[:limit]
    if raw.shape[1] != graph.encoder.n_features:
        raise LgnError(f"dataset {dataset} has {raw.shape[1]} features, the model expects {graph.encoder.n_features}")
    return raw, encoding.encode(graph.encoder, raw), labels


def verify_model_on_dataset(args) -> int:
    """Discretized torch model vs IR evaluator on every test sample: every score and every class."""
    model, encoder, _ = load_checkpoint(args.graph)
    graph = to_graph(model, encoder)
    _, bits, labels = dataset_bits(graph, args.dataset, args.data_dir)
    start = time.perf_counter()
    torch_scores = model.discrete_scores(torch.as_tensor(bits)).numpy()
    ir_scores = evaluate.scores(graph, bits)
    bad = (torch_scores != ir_scores).any(axis=1)
    torch_pred, ir_pred = torch_scores.argmax(1), evaluate.argmax_lowest(ir_scores)
    bad |= torch_pred != ir_pred
    print(
        f"discretized torch accuracy {np.mean(torch_pred == labels):.4f}, IR evaluator accuracy "
        f"{np.mean(ir_pred == labels):.4f} ({args.dataset} test split, {time.perf_counter() - start:.1f} s)"
    )
    print(f"{len(bits)} vectors, {int(bad.sum())} mismatches")
    return EXIT_OK if not bad.any() else EXIT_CHECK_FAILED
