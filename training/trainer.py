"""Training: Adam on the relaxed network (soft, or hard forward passes with straight-through gradients),
periodic evaluation of the relaxed and the discretized network on a validation split held out of the
training data, the best discretized checkpoint kept and evaluated once on the test split, metrics as
JSONL. Deterministic for a seed on the CPU; data-parallel over processes under ``torchrun`` (gloo), where
every rank draws the same global batch and trains on its slice, so DDP's gradient average equals the
single-process gradient.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as nnf

from lgn.compiler.build_cache import write_atomic
from lgn.compiler.errors import LgnError, ParameterError
from lgn.compiler.ir import Encoder
from lgn.compiler.names import Names
from lgn.kernels.cpu import reuse_freed_memory

from . import augment, encoding
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import validation_split
from .layers import LogicNet
from .tables import load_training_data
from .wiring import image_positions

__all__ = ["TrainConfig", "TrainResult", "build_model", "evaluate_model", "train"]


@dataclasses.dataclass
class TrainResult:
    model: LogicNet  # the network at the end of training (the best checkpoint is the file cfg.out)
    encoder: object
    history: list[dict]  # one record per evaluation, then the final test record
    best_discrete: float  # the best discretized accuracy on the selection split
    seconds: float
    interrupted: bool = False
    final: dict | None = None  # the chosen checkpoint on the test split (None when interrupted)
    checkpoint_step: int | None = None  # the step of this run's checkpoint in cfg.out; None: it wrote none


ACTIVATION_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _rank() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def resolve_device(name: str) -> torch.device:
    """``auto`` -> this process's GPU when PyTorch sees one (LOCAL_RANK under torchrun), else the CPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise ParameterError(f"device must be auto, cpu or cuda, got {name!r}", "device")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ParameterError("device cuda: PyTorch sees no CUDA GPU on this machine (use device cpu)", "device")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())


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


@dataclasses.dataclass
class _Data:
    """A run's data, encoded: training bits (CPU), the evaluation split that chooses the checkpoint and the
    test split (both on the run's device)."""

    encoder: Encoder
    classes: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_eval: torch.Tensor
    y_eval: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    selection: str  # "validation" or "test": the split x_eval comes from
    names: Names | None  # feature and class names (files and labelled built-in sets)


def _prepare_data(cfg: TrainConfig, device: torch.device) -> _Data:
    data = load_training_data(cfg)
    last = cfg.layer_widths[-1]
    if last % data.classes:
        below, above = last - last % data.classes, last - last % data.classes + data.classes
        name = "width" if cfg.widths is None else "widths"
        raise ParameterError(
            f"{name} {last} (the last layer's) must be a multiple of the {data.classes} classes of {data.name}: "
            f"make it {below or above}" + (f" or {above}" if below else ""),
            name,
        )
    encoder = encoding.fit_encoder(data, cfg.thresholds, cfg.threshold_method)
    if cfg.crop is not None:
        encoder = encoding.center_crop(encoder, cfg.crop)
    train, held = validation_split(data.y_train, cfg.val_fraction, cfg.seed)
    if cfg.val_fraction > 0 and len(held) == 0:
        raise ParameterError(f"val_fraction {cfg.val_fraction} holds out no sample of {data.name}", "val_fraction")

    def bits(raw: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(encoding.encode(encoder, raw), dtype=torch.uint8)

    x_test, y_test = bits(data.x_test).to(device), torch.as_tensor(data.y_test).to(device)
    if cfg.val_fraction > 0:
        x_eval, y_eval = bits(data.x_train[held]).to(device), torch.as_tensor(data.y_train[held]).to(device)
    else:
        x_eval, y_eval = x_test, y_test
    n_eval = len(x_eval) if cfg.eval_samples is None else min(cfg.eval_samples, len(x_eval))
    return _Data(
        encoder,
        data.classes,
        bits(data.x_train[train]),
        torch.as_tensor(data.y_train[train]),
        x_eval[:n_eval],
        y_eval[:n_eval],
        x_test,
        y_test,
        "validation" if cfg.val_fraction > 0 else "test",
        data.names,
    )


def build_model(cfg: TrainConfig, encoder: Encoder, classes: int) -> LogicNet:
    """The network ``cfg`` describes over ``encoder``'s input bits (initialised on the CPU: the same weights
    whatever the device)."""
    in_features = len(encoder.feature)
    sizes = [in_features] + cfg.layer_widths
    candidates = [sizes[i] if k is None else k for i, k in enumerate(cfg.layer_candidates())]
    positions = image_positions(encoder.feature, encoder.n_features) if cfg.pool == "local" else None
    try:
        return LogicNet(
            in_features,
            classes,
            arity=cfg.arity,
            parametrization=cfg.parametrization,
            rho=cfg.rho,
            init=cfg.init,
            tau=cfg.tau,
            seed=cfg.seed,
            implementation=cfg.implementation,
            widths=cfg.layer_widths,
            candidates=candidates,
            positions=positions,
        )
    except ValueError as exc:
        raise LgnError(str(exc)) from None


def _optimizer(cfg: TrainConfig, model: LogicNet) -> torch.optim.Optimizer:
    """Adam: gates at ``lr`` (weight decay for OP only: IWP parameters near 0 mean an undecided gate, not a
    small one), wiring logits at ``wiring_lr``. The fused implementation (one pass over each tensor: 0.18
    instead of 0.47 ms a step for a learned-wiring net of 2 x 8,000 gates on one core) where torch has it
    for the parameters' device and dtype."""
    gates = [layer.weight for layer in model.layers]
    wiring = [layer.wiring_logits for layer in model.layers if layer.wiring_logits is not None]
    decay = cfg.weight_decay if cfg.parametrization == "op" else 0.0
    groups: list[dict] = [{"params": gates, "lr": cfg.lr, "weight_decay": decay}]
    if wiring:
        groups.append({"params": wiring, "lr": cfg.wiring_lr or cfg.lr, "weight_decay": 0.0})
    try:
        return torch.optim.Adam(groups, fused=True)
    except RuntimeError:  # a device or dtype without the fused kernel
        return torch.optim.Adam(groups)


class _Log:
    """Evaluations, the best discretized checkpoint, the JSONL metrics and the progress bar of one run."""

    def __init__(self, cfg: TrainConfig, model: LogicNet, data: _Data, enabled: bool):
        self.cfg, self.model, self.data, self.enabled = cfg, model, data, enabled
        self.metrics_path = Path(cfg.metrics or f"{cfg.out}.metrics.jsonl")
        self.info = {"dataset": cfg.dataset, "config": dataclasses.asdict(cfg), "selection": data.selection}
        self.history: list[dict] = []
        self.best = -1.0
        self.best_step: int | None = None
        self.progress = Progress(cfg.steps, cfg.progress and enabled)
        self.start = time.perf_counter()
        self._metrics_started = False  # the file is replaced at the first evaluation, never emptied before

    def step(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        self.progress.update(step, f"loss {loss:.4f}")
        if step % self.cfg.evaluation_interval == 0 or step == self.cfg.steps:
            self.evaluate(step, loss)

    def _write(self, record: dict) -> None:
        self.history.append(record)
        line = json.dumps(record) + "\n"
        if not self._metrics_started:  # an earlier run's metrics stay whole until this run has its own
            self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.metrics_path, line.encode())
            self._metrics_started = True
            return
        with self.metrics_path.open("a") as handle:
            handle.write(line)

    def evaluate(self, step: int, loss: float) -> None:
        scores = evaluate_model(self.model, self.data.x_eval, self.data.y_eval)
        record = {"step": step, "loss": loss, "split": self.data.selection, **scores, **gate_usage(self.model)}
        record["temperature"] = self.model.layers[0].temperature
        record["seconds"] = round(time.perf_counter() - self.start, 3)
        if scores["acc_discrete"] > self.best:
            self.best, self.best_step = scores["acc_discrete"], step
            info = {**self.info, "step": step, **scores}
            save_checkpoint(self.cfg.out, self.model, self.data.encoder, info, self.data.names)
        record["best_discrete"] = self.best
        self._write(record)
        self.progress.update(
            step,
            f"loss {loss:.4f} {self.data.selection} acc {scores['acc']:.4f} discrete {scores['acc_discrete']:.4f} "
            f"best {self.best:.4f}",
            force=True,
        )

    def finish(self) -> dict:
        """The chosen checkpoint on the test split, once: recorded in the metrics and the checkpoint."""
        model, encoder, info = load_checkpoint(self.cfg.out)
        model.to(self.data.x_test.device)
        test = evaluate_model(model, self.data.x_test, self.data.y_test)
        record = {
            "final": True,
            "step": info.get("step"),
            "selection": self.data.selection,
            f"{self.data.selection}_acc_discrete": self.best,
            "test_acc": test["acc"],
            "test_acc_discrete": test["acc_discrete"],
            "seconds": round(time.perf_counter() - self.start, 3),
        }
        self._write(record)
        names = info.pop("names")
        info.update(test_acc=test["acc"], test_acc_discrete=test["acc_discrete"])
        save_checkpoint(self.cfg.out, model, encoder, info, names)
        return record

    def checkpoint_step(self) -> int | None:
        """The step of this run's checkpoint in ``out``, or None when this run has written none."""
        return self.best_step


class TrainingFailed(LgnError):
    """The run cannot go on (its loss is no longer a number); the message says what it left behind."""


def check_outputs(cfg: TrainConfig) -> None:
    """Every file a run will write, checked before any work: not a folder, in a folder that exists (or can be
    made) and takes new files. Nothing is created or truncated here."""
    for name, value in (("out", cfg.out), ("metrics", cfg.metrics or f"{cfg.out}.metrics.jsonl")):
        path = Path(value)
        if path.is_dir():
            raise ParameterError(f"{name} {path} is a folder; give a file name", name)
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise ParameterError(f"{name} {path}: cannot write in {folder}", name)
        if path.exists() and not os.access(path, os.W_OK) and not os.access(path.parent, os.W_OK):
            raise ParameterError(f"{name} {path} cannot be replaced", name)


def train(cfg: TrainConfig) -> TrainResult:
    """Train per ``cfg``; write the best discretized checkpoint (chosen on the validation split) to
    ``cfg.out``, evaluate it once on the test split, and write metrics as JSONL.

    Nothing is written before the first evaluation: an interrupted run reports whether it has a checkpoint of
    its own (``TrainResult.checkpoint_step``); a loss that stops being a number raises :class:`TrainingFailed`.
    """
    check_outputs(cfg)
    rank, world = _rank()
    if cfg.batch_size % world:
        raise ParameterError(f"batch_size {cfg.batch_size} must be divisible by the {world} processes", "batch_size")
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        reuse_freed_memory()
    activation_dtype = ACTIVATION_DTYPES[cfg.activations]
    torch.manual_seed(cfg.seed)
    data = _prepare_data(cfg, device)
    model = build_model(cfg, data.encoder, data.classes).to(device)
    trained: torch.nn.Module = model
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    optimizer = _optimizer(cfg, model)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    log = _Log(cfg, model, data, enabled=rank == 0)
    local = cfg.batch_size // world
    interrupted, final = False, None
    shifts = torch.as_tensor(augment.shift_tables(data.encoder, cfg.shift)) if cfg.shift else None
    try:
        for step in range(1, cfg.steps + 1):
            model.set_estimator(cfg.gate_estimator, cfg.wiring_estimator, cfg.temperature_at(step))
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * cfg.lr_factor(step)
            index = torch.randint(0, len(data.x_train), (cfg.batch_size,), generator=sampler)
            batch = data.x_train[index]
            if shifts is not None:  # every rank draws the whole batch's shifts: the same stream everywhere
                choice = torch.randint(0, len(shifts), (len(batch),), generator=sampler)
                batch = augment.shift_batch(batch, shifts, choice)
            index = index[rank * local : (rank + 1) * local]
            batch = batch[rank * local : (rank + 1) * local]
            logits = trained(batch.to(device).to(activation_dtype))
            loss = nnf.cross_entropy(logits, data.y_train[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise TrainingFailed(
                    f"the loss became {loss_value} at step {step}: "
                    + (
                        f"{cfg.out} holds the last good checkpoint (step {log.best_step})"
                        if log.best_step is not None
                        else f"no checkpoint of this run was written ({cfg.out} is unchanged)"
                    )
                    + "; try a smaller lr or a larger tau"
                )
            log.step(step, loss_value)
        if cfg.steps == 0 and rank == 0:
            log.evaluate(0, float("nan"))
        if rank == 0:
            final = log.finish()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        log.progress.close()
    seconds = time.perf_counter() - log.start
    return TrainResult(model, data.encoder, log.history, log.best, seconds, interrupted, final, log.best_step)


def setup_distributed(device: str = "cpu") -> bool:
    """Join the torchrun process group when launched by torchrun: gloo on the CPU, nccl on GPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
        return True
    return False
