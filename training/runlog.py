"""One run's record: periodic evaluations of the relaxed and the discretized network, the best discretized
checkpoint (kept in memory and written to ``out``), the JSONL metrics, the progress bar, and the final test
evaluation with its health findings (:mod:`lgn.training.health`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lgn.compiler.build_cache import write_atomic

from . import health
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .layers import LogicNet

if TYPE_CHECKING:
    from .trainer import _Data


@torch.no_grad()
def evaluate_model(model: LogicNet, bits: torch.Tensor, labels: torch.Tensor, batch: int = 2000) -> dict:
    """Accuracy of the relaxed network (soft, on the bits) and of the discretized network, and the gap."""
    was_training = model.training
    model.eval()
    relaxed = discrete = 0
    for start in range(0, len(bits), batch):
        x = bits[start : start + batch]
        y = labels[start : start + batch]
        relaxed += int((model(x.float()).argmax(-1) == y).sum())
        discrete += int((model.discrete_predict(x) == y).sum())
    model.train(was_training)
    n = max(1, len(bits))
    return {"acc": relaxed / n, "acc_discrete": discrete / n, "gap": (relaxed - discrete) / n}


def gate_usage(model: LogicNet) -> dict:
    """How much of the discretized network does work: ``trivial_gates``, the fraction of gates that are a
    constant or a pass-through of one input; ``unused_gates``, the fraction that simplification removes
    (constants, pass-throughs, duplicates, and gates no output depends on); ``gates_simplified``."""
    from lgn.compiler import pipeline

    from .export import to_graph

    graph = to_graph(model)
    simple = pipeline.simplify(graph)
    n = max(1, graph.n_gates)
    trivial = int((pipeline.support_sizes(graph) <= 1).sum())
    return {"trivial_gates": trivial / n, "unused_gates": 1 - simple.n_gates / n, "gates_simplified": simple.n_gates}


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.start = total, enabled, time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0

    def update(self, step: int, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last_print < (0.2 if self.tty else 10.0):
            return
        self.last_print = now
        done = step / max(1, self.total)
        bar = "#" * int(30 * done) + "-" * (30 - int(30 * done))
        rate = step / max(now - self.start, 1e-9)
        line = f"[{bar}] {step}/{self.total} {rate:.1f} steps/s {text}"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


class RunLog:
    """Evaluations, the best discretized checkpoint, the JSONL metrics and the progress bar of one run."""

    def __init__(self, cfg: TrainConfig, model: LogicNet, data: _Data, enabled: bool):
        self.cfg, self.model, self.data, self.enabled = cfg, model, data, enabled
        self.metrics_path = Path(cfg.metrics or f"{cfg.out}.metrics.jsonl")
        self.info = {"dataset": cfg.dataset, "config": dataclasses.asdict(cfg), "selection": data.selection}
        self.history: list[dict] = []
        self.best = -1.0
        self.best_step: int | None = None
        self.best_model: LogicNet | None = None  # a copy of the best checkpoint's network
        self.best_info: dict | None = None
        self.best_trivial: float | None = None
        self.progress = Progress(cfg.steps or 0, cfg.progress and enabled)
        self.start = time.perf_counter()
        self._metrics_started = False  # the file is replaced at the first evaluation, never emptied before
        # Every record names its run (process id, then random), so a reader can tell runs apart in any file.
        self.run = f"{os.getpid()}-{os.urandom(4).hex()}"

    def evaluates_at(self, step: int) -> bool:
        """Whether the run evaluates (and may write its checkpoint) after ``step``."""
        return step % self.cfg.evaluation_interval == 0 or step == self.cfg.steps

    def step(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        self.progress.update(step, f"loss {loss:.4f}")
        if self.evaluates_at(step):
            self.evaluate(step, loss)

    def _write(self, record: dict) -> None:
        named = {"run": self.run, **record}  # the run first, in the caller's own dict
        record.clear()
        record.update(named)
        self.history.append(record)
        line = json.dumps(record) + "\n"
        if not self._metrics_started:  # an earlier run's metrics stay whole until this run has its own
            # The whole history: a resumed run's first write restores the records of the run it continues.
            self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in self.history).encode())
            self._metrics_started = True
            return
        with self.metrics_path.open("a") as handle:
            handle.write(line)

    def evaluate(self, step: int, loss: float) -> None:
        scores = evaluate_model(self.model, self.data.x_eval, self.data.y_eval)
        record = {"step": step, "loss": loss, "split": self.data.selection, **scores, **gate_usage(self.model)}
        record["temperature"] = self.model.layers[0].temperature
        record["seconds"] = round(time.perf_counter() - self.start, 3)
        if scores["acc_discrete"] >= self.best:  # ties go to the later, longer-trained network
            self.best, self.best_step = scores["acc_discrete"], step
            self.best_info = {**self.info, "step": step, **scores}
            self.best_model = copy.deepcopy(self.model).eval()
            self.best_trivial = record["trivial_gates"]
            save_checkpoint(self.cfg.out, self.model, self.data.encoder, self.best_info, self.data.names)
        record["best_discrete"] = self.best
        self._write(record)
        self.progress.update(
            step,
            f"loss {loss:.4f} {self.data.selection} acc {scores['acc']:.4f} discrete {scores['acc_discrete']:.4f} "
            f"best {self.best:.4f}",
            force=True,
        )

    def finish(self) -> dict:
        """The chosen checkpoint on the test split, once, from the copy kept in memory (``out`` is never read
        back: another process may have replaced it); recorded in the metrics and the checkpoint, with the
        health findings of :func:`lgn.training.health.findings`."""
        assert self.best_model is not None and self.best_info is not None
        model, info = self.best_model, self.best_info
        test = evaluate_model(model, self.data.x_test, self.data.y_test)
        majority, constant = health.majority_rate(self.data.y_train.numpy(), self.data.y_test.cpu().numpy())
        classes = self.data.names.classes if self.data.names is not None and self.data.names.classes else None
        warnings = health.findings(
            test["acc_discrete"],
            test["acc"],
            constant,
            classes[majority] if classes else str(majority),
            len(self.data.y_test),
            self.cfg.gate_estimator,
            self.best_trivial,
        )
        record = {
            "final": True,
            "step": info.get("step"),
            "selection": self.data.selection,
            f"{self.data.selection}_acc_discrete": self.best,
            "test_acc": test["acc"],
            "test_acc_discrete": test["acc_discrete"],
            "majority_acc": constant,
            "warnings": warnings,
            "seconds": round(time.perf_counter() - self.start, 3),
        }
        self._write(record)
        info = {**info, "test_acc": test["acc"], "test_acc_discrete": test["acc_discrete"], "warnings": warnings}
        save_checkpoint(self.cfg.out, model, self.data.encoder, info, self.data.names)
        return record

    def checkpoint_step(self) -> int | None:
        """The step of this run's checkpoint in ``out``, or None when this run has written none."""
        return self.best_step
