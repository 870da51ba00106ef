"""Training: Adam on the relaxed network, periodic evaluation of the relaxed and the discretized network
on the test split, metrics as JSONL, the best discretized checkpoint kept. Deterministic for a seed on
the CPU; data-parallel over processes under ``torchrun`` (gloo), where every rank draws the same global
batch and trains on its slice, so DDP's gradient average equals the single-process gradient.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as nnf

from lgn.compiler.errors import LgnError, ParameterError
from lgn.compiler.ir import Encoder

from . import encoding
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .data import load_dataset
from .layers import LogicNet

__all__ = ["TrainConfig", "TrainResult", "build_model", "evaluate_model", "train"]


@dataclasses.dataclass
class TrainResult:
    model: LogicNet
    encoder: object
    history: list[dict]
    best_discrete: float
    seconds: float
    interrupted: bool = False


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
    """Test accuracy of the relaxed network (on the bits) and of the discretized network."""
    model.eval()
    relaxed = discrete = 0
    for start in range(0, len(bits), batch):
        x = bits[start : start + batch]
        y = labels[start : start + batch]
        relaxed += int((model(x.float()).argmax(-1) == y).sum())
        discrete += int((model.discrete_predict(x) == y).sum())
    model.train()
    return {"test_acc": relaxed / len(bits), "test_acc_discrete": discrete / len(bits)}


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
    """A run's data, encoded: training bits (CPU), evaluation bits and labels (on the run's device)."""

    encoder: Encoder
    classes: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_eval: torch.Tensor
    y_eval: torch.Tensor


def _prepare_data(cfg: TrainConfig, device: torch.device) -> _Data:
    data = load_dataset(cfg.dataset, cfg.data_dir)
    if cfg.width % data.classes:
        raise ParameterError(
            f"width {cfg.width} must be a multiple of the {data.classes} classes of {cfg.dataset}", "width"
        )
    thresholds = encoding.fit_thresholds(data.x_train, cfg.thresholds, cfg.threshold_method, data.value_range)
    encoder = encoding.encoder_from_thresholds(thresholds)
    if cfg.crop is not None:
        encoder = encoding.center_crop(encoder, cfg.crop)
    n_eval = len(data.x_test) if cfg.eval_samples is None else min(cfg.eval_samples, len(data.x_test))
    return _Data(
        encoder,
        data.classes,
        torch.as_tensor(encoding.encode(encoder, data.x_train), dtype=torch.uint8),
        torch.as_tensor(data.y_train),
        torch.as_tensor(encoding.encode(encoder, data.x_test[:n_eval]), dtype=torch.uint8).to(device),
        torch.as_tensor(data.y_test[:n_eval]).to(device),
    )


def build_model(cfg: TrainConfig, in_features: int, classes: int) -> LogicNet:
    """The network ``cfg`` describes over ``in_features`` input bits (initialised on the CPU: the same weights
    whatever the device)."""
    try:
        return LogicNet(
            in_features,
            classes,
            cfg.layers,
            cfg.width,
            cfg.arity,
            cfg.parametrization,
            cfg.rho,
            cfg.init,
            cfg.tau,
            cfg.seed,
            cfg.implementation,
        )
    except ValueError as exc:
        raise LgnError(str(exc)) from None


class _Log:
    """Evaluations, the best discretized checkpoint, the JSONL metrics and the progress bar of one run."""

    def __init__(self, cfg: TrainConfig, model: LogicNet, data: _Data, enabled: bool):
        self.cfg, self.model, self.data, self.enabled = cfg, model, data, enabled
        self.metrics_path = Path(cfg.metrics or f"{cfg.out}.metrics.jsonl")
        self.info = {"dataset": cfg.dataset, "config": dataclasses.asdict(cfg)}
        self.history: list[dict] = []
        self.best = -1.0
        self.progress = Progress(cfg.steps, cfg.progress and enabled)
        self.start = time.perf_counter()
        if enabled:
            self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
            self.metrics_path.write_text("")

    def step(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        self.progress.update(step, f"loss {loss:.4f}")
        if step % self.cfg.evaluation_interval == 0 or step == self.cfg.steps:
            self.evaluate(step, loss)

    def evaluate(self, step: int, loss: float) -> None:
        scores = evaluate_model(self.model, self.data.x_eval, self.data.y_eval)
        record = {"step": step, "loss": loss, **scores, "seconds": round(time.perf_counter() - self.start, 3)}
        if scores["test_acc_discrete"] > self.best:
            self.best = scores["test_acc_discrete"]
            save_checkpoint(self.cfg.out, self.model, self.data.encoder, {**self.info, "step": step, **scores})
        record["best_discrete"] = self.best
        self.history.append(record)
        with self.metrics_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        self.progress.update(
            step,
            f"loss {loss:.4f} acc {scores['test_acc']:.4f} discrete {scores['test_acc_discrete']:.4f} "
            f"best {self.best:.4f}",
            force=True,
        )

    def interrupted(self) -> None:
        if self.enabled and not Path(self.cfg.out).exists():
            save_checkpoint(self.cfg.out, self.model, self.data.encoder, {**self.info, "step": "interrupted"})


def train(cfg: TrainConfig) -> TrainResult:
    """Train per ``cfg``; write the best discretized checkpoint to ``cfg.out`` and metrics as JSONL."""
    rank, world = _rank()
    if cfg.batch_size % world:
        raise ParameterError(f"batch_size {cfg.batch_size} must be divisible by the {world} processes", "batch_size")
    device = resolve_device(cfg.device)
    activation_dtype = ACTIVATION_DTYPES[cfg.activations]
    torch.manual_seed(cfg.seed)
    data = _prepare_data(cfg, device)
    model = build_model(cfg, data.x_train.shape[1], data.classes).to(device)
    trained: torch.nn.Module = model
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    # No weight decay for IWP: parameters near 0 mean an undecided gate, not a small one.
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay if cfg.parametrization == "op" else 0.0
    )
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    log = _Log(cfg, model, data, enabled=rank == 0)
    local = cfg.batch_size // world
    interrupted = False
    try:
        for step in range(1, cfg.steps + 1):
            index = torch.randint(0, len(data.x_train), (cfg.batch_size,), generator=sampler)
            index = index[rank * local : (rank + 1) * local]
            logits = trained(data.x_train[index].to(device).to(activation_dtype))
            loss = nnf.cross_entropy(logits, data.y_train[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            log.step(step, float(loss.detach()))
        if cfg.steps == 0 and rank == 0:
            log.evaluate(0, float("nan"))
    except KeyboardInterrupt:
        interrupted = True
        log.interrupted()
    finally:
        log.progress.close()
    return TrainResult(model, data.encoder, log.history, log.best, time.perf_counter() - log.start, interrupted)


def setup_distributed(device: str = "cpu") -> bool:
    """Join the torchrun process group when launched by torchrun: gloo on the CPU, nccl on GPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
        return True
    return False
