"""``lgn predict``: a model's predictions for the rows of a table file, through the evaluator or the C library.

The file is read in chunks (memory stays bounded) with the same rules as ``lgn train --data``: the model's
columns, its categories, its missing-value policy. Predictions go to ``--out`` (CSV, written under a private
name and renamed when complete: an error leaves no file) or to stdout; with a label column, the accuracy.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lgn.compiler import c_build, evaluate, outputs, pipeline
from lgn.compiler.errors import LgnError
from lgn.compiler.ir import GateGraph

from .common import EXIT_OK, add_force, add_max_memory, integer, load_any


def raw_features(graph: GateGraph, chunk, unknown: str = "error") -> tuple[np.ndarray, dict[str, int]]:
    """(the chunk's raw features, rows with a category unseen in training by column): by the model's names
    (``unknown``: what such a category becomes, see ``lgn.training.tables.features_and_unseen``), or (a model
    without names) every column but the label, in file order."""
    from lgn.training.tables import TableError, features_and_unseen

    if graph.names is not None and graph.names.features:
        return features_and_unseen(chunk, graph.names, unknown)
    assert graph.encoder is not None
    columns = [c for c in chunk.names if c != label_column(graph, chunk)]
    if len(columns) != graph.encoder.n_features:
        raise TableError(f"{chunk.path}: {len(columns)} feature columns, the model reads {graph.encoder.n_features}")
    try:
        raw = np.stack([np.asarray(chunk.column(c), dtype=np.float64) for c in columns], axis=1)
    except (TypeError, ValueError):
        raise TableError(f"{chunk.path}: a model without column names reads numbers only") from None
    return raw.astype(np.float32), {}


def label_column(graph: GateGraph, chunk) -> str | None:
    """The label column of the chunk, if it has one."""
    name = graph.names.label if graph.names is not None and graph.names.label else "y"
    return name if name in chunk.names else None


def class_names(graph: GateGraph) -> tuple[str, ...] | None:
    """The model's class labels (the original label values), if it has them."""
    return graph.names.classes if graph.names is not None and graph.names.classes else None


def read_rows(graph: GateGraph, data: str, labels: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Every row of a table file at once: (raw features float32 ``[N, n_features]``, each row's class index
    under the model's class labels, or None when the file has no label column or the model no class labels).
    The same rules as ``lgn predict``; a category unseen in training is an error."""
    from lgn.training.tables import label_indices, read_chunks

    if graph.encoder is None:
        raise LgnError(f"{data}: a graph without an encoder takes input bits, not a table of features")
    classes = class_names(graph)
    parts, truths = [], []
    for chunk in read_chunks(data, labels):
        if len(chunk) == 0:
            continue
        parts.append(raw_features(graph, chunk)[0])
        label = label_column(graph, chunk)
        if label is not None and classes is not None:
            truths.append(label_indices(chunk, label, classes))
    raw = np.concatenate(parts) if parts else np.zeros((0, graph.encoder.n_features), np.float32)
    truth = np.concatenate(truths) if truths and len(truths) == len(parts) else None
    return raw, truth


class _Predictor:
    def __init__(self, graph: GateGraph, backend: str):
        self.graph = graph
        self.net = c_build.compile_c(graph, threads=1) if backend == "c" else None

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, classes) of float32 raw features."""
        if self.net is not None:
            scores = self.net.scores_features(raw)
        else:
            scores = evaluate.scores(self.graph, evaluate.encode(self.graph, raw.astype(np.float64)))
        return scores, np.argmax(scores, axis=1)  # ties to the lowest class, as every backend


def cmd_predict(args) -> int:
    from lgn.training import memory
    from lgn.training.tables import check_file, label_indices, read_chunks

    if args.out:
        inputs = {"the model": args.model, "data": args.data, "labels": args.labels}
        outputs.check_file(args.out, "out", outputs.PREDICTIONS, inputs, args.force)
    memory.set_limit(args.max_memory)
    check_file(args.data, args.labels, whole=False)  # the file's headers (an archive's sizes) before the model
    graph = load_any(args.model)
    if graph.encoder is None:
        raise LgnError(f"{args.model}: a graph without an encoder takes input bits, not a table of features")
    tau = graph.names.tau if graph.names is not None else 0.0
    if args.proba and not tau:
        raise LgnError(
            f"{args.model}: the model lacks its training temperature (tau), which --proba needs to turn scores "
            "into probabilities: export it again from its checkpoint (lgn export), or use --scores"
        )
    names = graph.names
    if args.unknown == "default" and names is not None and names.categorical and not names.most_frequent:
        raise LgnError(
            f"{args.model}: the model does not record its columns' most frequent categories (it was trained "
            "before lgn kept them), which --unknown default needs: use --unknown zero, or train it again"
        )
    predict = _Predictor(pipeline.simplify(graph), args.backend)
    classes = class_names(graph)
    texts = list(classes) if classes else [str(c) for c in range(graph.n_classes)]
    target = Path(args.out) if args.out else None
    buffer = _open_output(target)
    writer = csv.writer(buffer[0], lineterminator="\n")
    writer.writerow(
        ["prediction"]
        + ([f"score_{t}" for t in texts] if args.scores else [])
        + ([f"proba_{t}" for t in texts] if args.proba else [])
    )
    rows = correct = labelled = 0
    unseen: dict[str, int] = {}
    start = time.perf_counter()
    try:
        for chunk in read_chunks(args.data, args.labels, rows=args.chunk):
            if len(chunk) == 0:
                continue
            raw, chunk_unseen = raw_features(graph, chunk, args.unknown)
            for column, n in chunk_unseen.items():
                unseen[column] = unseen.get(column, 0) + n
            scores, predicted = predict(raw)
            label = label_column(graph, chunk)
            if label is not None and classes is not None:
                truth = label_indices(chunk, label, classes)
                correct, labelled = correct + int((truth == predicted).sum()), labelled + len(truth)
            columns = [np.array(texts, dtype=object)[predicted][:, None]]
            if args.scores:
                columns.append(scores.astype(object))
            if args.proba:
                columns.append(evaluate.probabilities(scores, tau).astype(object))
            writer.writerows(np.concatenate(columns, axis=1).tolist())
            rows += len(chunk)
            if not args.quiet:
                print(f"\rpredicted {rows} rows", end="", file=sys.stderr, flush=True)
        _close_output(buffer, target)
    except BaseException:
        _discard(buffer)
        raise
    if not args.quiet:
        print(file=sys.stderr)
    if unseen:
        print(unseen_warning(unseen, args.unknown), file=sys.stderr)
    summary = f"{rows} rows in {time.perf_counter() - start:.2f} s ({args.backend})"
    if labelled:
        summary += f"; accuracy {correct / labelled:.4f} on the {labelled} labelled rows"
    print(summary + (f"; wrote {target}" if target else ""), file=sys.stderr if target is None else sys.stdout)
    return EXIT_OK


def unseen_warning(unseen: dict[str, int], policy: str) -> str:
    """One line: how many rows had a category unseen in training, per column, and what became of it."""
    counts = ", ".join(f"{column!r} in {n} row{'s' if n != 1 else ''}" for column, n in unseen.items())
    became = "all its one-hot features 0" if policy == "zero" else "read as the column's most frequent category"
    return f"lgn: warning: categories unseen in training ({counts}); --unknown {policy}: {became}"


def _open_output(target: Path | None):
    """(a text stream, its private path or None). A file target is written under a private name in its own
    folder and renamed when complete."""
    if target is None:
        return sys.stdout, None
    if target.is_dir():
        raise LgnError(f"--out {target} is a folder; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, private = tempfile.mkstemp(prefix=f".lgn-tmp-{os.getpid()}-", suffix=".csv", dir=target.parent)
    except OSError as exc:
        raise LgnError(f"--out {target}: cannot write: {exc.strerror or exc}") from None
    return open(fd, "w", newline="", encoding="utf-8"), Path(private)


def _close_output(buffer, target: Path | None) -> None:
    stream, private = buffer
    if private is None or target is None:
        stream.flush()
        return
    stream.close()
    os.replace(private, target)


def _discard(buffer) -> None:
    stream, private = buffer
    if private is not None:
        stream.close()
        private.unlink(missing_ok=True)


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict the rows of a table file (CSV, TSV, .npz, .npy, Parquet)")
    p.add_argument("model", help="a trained model (.safetensors) or a graph with an encoder (.npz)")
    p.add_argument("--data", required=True, help="the rows to predict; a label column, if present, gives accuracy")
    p.add_argument("--labels", help="with an .npy --data: its labels (optional)")
    p.add_argument("--out", help="write the predictions as CSV here (default: stdout)")
    add_force(p, "--out", "predictions")
    p.add_argument("--backend", choices=["evaluator", "c"], default="evaluator",
                   help="the IR evaluator, or the compiled C library (the same answers)")  # fmt: skip
    p.add_argument("--scores", action="store_true", help="also write each class's GroupSum score (a popcount)")
    p.add_argument(
        "--proba", action="store_true",
        help="also write each class's probability, softmax(scores / tau) at the model's training temperature",
    )  # fmt: skip
    p.add_argument(
        "--unknown", choices=["error", "zero", "default"], default="error",
        help="a category unseen in training: an error (default); zero: all its one-hot features 0; "
        "default: the column's most frequent category in training (one warning line counts such rows)",
    )  # fmt: skip
    p.add_argument("--chunk", type=integer(1, 10**7), default=65_536, help="rows read at a time")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_max_memory(p)
    p.set_defaults(func=cmd_predict)
