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

from compiler.errors import LgnError

from . import encoding
from .checkpoint import save_checkpoint
from .data import load_dataset
from .layers import LogicNet


@dataclasses.dataclass
class TrainConfig:
    dataset: str = "mnist"
    data_dir: str | None = None
    parametrization: str = "iwp"
    arity: int = 2
    layers: int = 4
    width: int = 2000
    tau: float = 10.0
    thresholds: int = 1
    crop: int | None = None  # square images: train on the central crop x crop pixels only
    threshold_method: str = "uniform"
    rho: str = "sin01"
    init: str = "residual"
    steps: int = 2000
    batch_size: int = 100
    lr: float = 0.01
    weight_decay: float = 0.0
    seed: int = 0
    eval_every: int = 500
    eval_samples: int | None = None  # None: the whole test split
    out: str = "model.safetensors"
    metrics: str | None = None  # default: <out>.metrics.jsonl
    progress: bool = True
    device: str = "auto"  # auto: the GPU when PyTorch sees one, else the CPU
    implementation: str = "auto"  # auto: the CUDA kernels on a GPU, the torch reference on the CPU
    activations: str = "float32"  # or bfloat16: the kernels' activation type (parameters stay float32)


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
        raise LgnError(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise LgnError("--device cuda: PyTorch sees no CUDA GPU on this machine (use --device cpu)")
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


def train(cfg: TrainConfig) -> TrainResult:
    """Train per ``cfg``; write the best discretized checkpoint to ``cfg.out`` and metrics as JSONL."""
    rank, world = _rank()
    if cfg.batch_size % world:
        raise LgnError(f"--batch-size {cfg.batch_size} must be divisible by the {world} processes")
    if cfg.parametrization == "op" and cfg.arity != 2:
        raise LgnError("--parametrization op has 2-input gates only: use --arity 2 (or iwp)")
    if cfg.steps < 0 or cfg.eval_every < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise LgnError("--steps >= 0, --eval-every >= 1, --batch-size >= 1 and --lr > 0 are required")
    if cfg.implementation not in ("auto", "torch", "kernels"):
        raise LgnError(f"--implementation must be auto, torch or kernels, got {cfg.implementation!r}")
    device = resolve_device(cfg.device)
    if cfg.activations not in ACTIVATION_DTYPES:
        raise LgnError(f"--activations must be one of {sorted(ACTIVATION_DTYPES)}, got {cfg.activations!r}")
    activation_dtype = ACTIVATION_DTYPES[cfg.activations]
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset, cfg.data_dir)
    if cfg.width % data.classes:
        raise LgnError(f"--width {cfg.width} must be a multiple of the {data.classes} classes of {cfg.dataset}")
    try:
        thresholds = encoding.fit_thresholds(data.x_train, cfg.thresholds, cfg.threshold_method, data.value_range)
    except ValueError as exc:
        raise LgnError(str(exc)) from None
    encoder = encoding.encoder_from_thresholds(thresholds)
    if cfg.crop is not None:
        try:
            encoder = encoding.center_crop(encoder, cfg.crop)
        except ValueError as exc:
            raise LgnError(str(exc)) from None
    x_train = torch.as_tensor(encoding.encode(encoder, data.x_train), dtype=torch.uint8)
    y_train = torch.as_tensor(data.y_train)
    n_test = len(data.x_test) if cfg.eval_samples is None else min(cfg.eval_samples, len(data.x_test))
    x_test = torch.as_tensor(encoding.encode(encoder, data.x_test[:n_test]), dtype=torch.uint8).to(device)
    y_test = torch.as_tensor(data.y_test[:n_test]).to(device)
    try:
        model = LogicNet(
            x_train.shape[1],
            data.classes,
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
    model.to(device)  # initialised on the CPU: the same weights whatever the device
    trained = model
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    # No weight decay for IWP: parameters near 0 mean an undecided gate, not a small one.
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay if cfg.parametrization == "op" else 0.0
    )
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    metrics_path = Path(cfg.metrics or f"{cfg.out}.metrics.jsonl")
    if rank == 0:
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text("")
    info = {"dataset": cfg.dataset, "config": dataclasses.asdict(cfg)}
    history: list[dict] = []
    best = -1.0
    progress = Progress(cfg.steps, cfg.progress and rank == 0)
    start = time.perf_counter()
    local = cfg.batch_size // world
    loss_value = float("nan")
    interrupted = False

    def checkpoint_and_log(step: int) -> None:
        nonlocal best
        scores = evaluate_model(model, x_test, y_test)
        record = {
            "step": step,
            "loss": loss_value,
            **scores,
            "seconds": round(time.perf_counter() - start, 3),
        }
        if scores["test_acc_discrete"] > best:
            best = scores["test_acc_discrete"]
            save_checkpoint(cfg.out, model, encoder, {**info, "step": step, **scores})
        record["best_discrete"] = best
        history.append(record)
        with metrics_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        progress.update(
            step,
            f"loss {loss_value:.4f} acc {scores['test_acc']:.4f} "
            f"discrete {scores['test_acc_discrete']:.4f} best {best:.4f}",
            force=True,
        )

    try:
        for step in range(1, cfg.steps + 1):
            index = torch.randint(0, len(x_train), (cfg.batch_size,), generator=sampler)
            index = index[rank * local : (rank + 1) * local]
            logits = trained(x_train[index].to(device).to(activation_dtype))
            loss = nnf.cross_entropy(logits, y_train[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())
            if rank == 0:
                progress.update(step, f"loss {loss_value:.4f}")
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    checkpoint_and_log(step)
        if cfg.steps == 0 and rank == 0:
            checkpoint_and_log(0)
    except KeyboardInterrupt:
        interrupted = True
        if rank == 0 and not Path(cfg.out).exists():
            save_checkpoint(cfg.out, model, encoder, {**info, "step": "interrupted"})
    finally:
        progress.close()
    return TrainResult(model, encoder, history, best, time.perf_counter() - start, interrupted)


def setup_distributed(device: str = "cpu") -> bool:
    """Join the torchrun process group when launched by torchrun: gloo on the CPU, nccl on GPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
        return True
    return False
