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

from lgn.compiler import c_build, evaluate, pipeline
from lgn.compiler.errors import LgnError
from lgn.compiler.ir import GateGraph

from .common import EXIT_OK, integer, load_any


def _raw_features(graph: GateGraph, chunk) -> np.ndarray:
    """The chunk's raw features: by the model's names, or (a model without names) every column but the
    label, in file order."""
    from lgn.training.tables import TableError, features

    if graph.names is not None and graph.names.features:
        return features(chunk, graph.names)
    assert graph.encoder is not None
    columns = [c for c in chunk.names if c != _label(graph, chunk)]
    if len(columns) != graph.encoder.n_features:
        raise TableError(f"{chunk.path}: {len(columns)} feature columns, the model reads {graph.encoder.n_features}")
    try:
        return np.stack([np.asarray(chunk.column(c), dtype=np.float64) for c in columns], axis=1).astype(np.float32)
    except (TypeError, ValueError):
        raise TableError(f"{chunk.path}: a model without column names reads numbers only") from None


def _label(graph: GateGraph, chunk) -> str | None:
    """The label column of the chunk, if it has one."""
    name = graph.names.label if graph.names is not None and graph.names.label else "y"
    return name if name in chunk.names else None


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
    from lgn.training.tables import label_indices, read_chunks

    graph = load_any(args.model)
    if graph.encoder is None:
        raise LgnError(f"{args.model}: a graph without an encoder takes input bits, not a table of features")
    predict = _Predictor(pipeline.simplify(graph), args.backend)
    classes = graph.names.classes if graph.names is not None and graph.names.classes else None
    texts = list(classes) if classes else [str(c) for c in range(graph.n_classes)]
    target = Path(args.out) if args.out else None
    buffer = _open_output(target)
    writer = csv.writer(buffer[0], lineterminator="\n")
    writer.writerow(["prediction"] + ([f"score_{t}" for t in texts] if args.scores else []))
    rows = correct = labelled = 0
    start = time.perf_counter()
    try:
        for chunk in read_chunks(args.data, args.labels, rows=args.chunk):
            if len(chunk) == 0:
                continue
            scores, predicted = predict(_raw_features(graph, chunk))
            label = _label(graph, chunk)
            if label is not None and classes is not None:
                truth = label_indices(chunk, label, classes)
                correct, labelled = correct + int((truth == predicted).sum()), labelled + len(truth)
            for i, p in enumerate(predicted.tolist()):
                writer.writerow([texts[p], *scores[i].tolist()] if args.scores else [texts[p]])
            rows += len(chunk)
            if not args.quiet:
                print(f"\rpredicted {rows} rows", end="", file=sys.stderr, flush=True)
        _close_output(buffer, target)
    except BaseException:
        _discard(buffer)
        raise
    if not args.quiet:
        print(file=sys.stderr)
    summary = f"{rows} rows in {time.perf_counter() - start:.2f} s ({args.backend})"
    if labelled:
        summary += f"; accuracy {correct / labelled:.4f} on the {labelled} labelled rows"
    print(summary + (f"; wrote {target}" if target else ""), file=sys.stderr if target is None else sys.stdout)
    return EXIT_OK


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
    p.add_argument("--backend", choices=["evaluator", "c"], default="evaluator",
                   help="the IR evaluator, or the compiled C library (the same answers)")  # fmt: skip
    p.add_argument("--scores", action="store_true", help="also write each class's GroupSum score")
    p.add_argument("--chunk", type=integer(1, 10**7), default=65_536, help="rows read at a time")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_predict)
