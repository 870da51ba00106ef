"""Training: Adam on the relaxed network (soft, or hard forward passes with straight-through gradients),
periodic evaluation of the relaxed and the discretized network on a validation split held out of the
training data, the best discretized checkpoint kept and evaluated once on the test split, metrics as
JSONL. Deterministic for a seed on the CPU; data-parallel over processes under ``torchrun`` (gloo), where
every rank draws the same global batch and trains on its slice, so DDP's gradient average equals the
single-process gradient.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as nnf

from lgn.compiler import outputs
from lgn.compiler.errors import LgnError, ParameterError
from lgn.compiler.ir import Encoder
from lgn.compiler.names import Names
from lgn.compiler.output_lock import OutputLock
from lgn.kernels.cpu import reuse_freed_memory

from . import augment, encoding, resume, sizing, tau_search
from .config import TrainConfig
from .conv_spec import image_of, parse_conv, stack_shapes
from .data import Dataset, validation_split
from .layers import LogicNet
from .runlog import RunLog, evaluate_model
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
    config: TrainConfig | None = None  # the configuration that ran: every setting chosen from the data resolved
    choices: list[str] = dataclasses.field(default_factory=list)  # what was chosen from the data, in words
    resume_step: int | None = None  # the step of the state in OUT.resume (training/resume.py); None: none left


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


def _prepare_data(cfg: TrainConfig, device: torch.device, data: Dataset) -> _Data:
    last = cfg.layer_widths[-1]
    if last % data.classes:
        below, above = last - last % data.classes, last - last % data.classes + data.classes
        name = "width" if cfg.widths is None else "widths"
        raise ParameterError(
            f"{name} {last} (the last layer's) must be a multiple of the {data.classes} classes of {data.name}: "
            f"make it {below or above}" + (f" or {above}" if below else ""),
            name,
        )
    train, held = validation_split(data.y_train, cfg.val_fraction, cfg.seed)  # before the (slower) encoder
    if cfg.val_fraction > 0 and len(held) == 0:
        raise ParameterError(f"val_fraction {cfg.val_fraction} holds out no sample of {data.name}", "val_fraction")
    assert cfg.thresholds is not None, "resolve the configuration first"
    encoder = encoding.fit_encoder(data, cfg.thresholds, cfg.threshold_method)
    if len(encoder.feature) == 0:
        raise ParameterError(f"every column of {data.name} is constant in the training rows: nothing to learn from")
    if cfg.crop is not None:
        encoder = encoding.center_crop(encoder, cfg.crop)

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
    whatever the device). ``cfg`` is resolved (:func:`lgn.training.sizing.resolve`, tau included)."""
    if cfg.tau is None:
        raise ParameterError("tau is chosen from the data: resolve the configuration first", "tau")
    in_features = len(encoder.feature)
    blocks, image = _conv_architecture(cfg, encoder)
    reads = in_features if not blocks else math.prod(stack_shapes(image, blocks)[-1])
    sizes = [reads] + cfg.layer_widths
    candidates = [sizes[i] if k is None else k for i, k in enumerate(cfg.layer_candidates())]
    positions = image_positions(encoder.feature, encoder.n_features) if cfg.pool == "local" and not blocks else None
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
            conv=blocks or None,
            image=image or None,
        )
    except ValueError as exc:
        raise LgnError(str(exc)) from None


def _conv_architecture(cfg: TrainConfig, encoder: Encoder) -> tuple[list[dict], list[int]]:
    """``--conv``'s blocks and the image the encoder's bits form (three color planes for CIFAR), or two empty
    lists without conv; a stack that does not fit the image is one line."""
    if cfg.conv is None:
        return [], []
    colors = 3 if cfg.dataset in ("cifar10", "cifar100") and cfg.data is None else 1
    try:
        blocks = parse_conv(cfg.conv, cfg.conv_pool)
        image = image_of(encoder.feature, encoder.n_features, colors)
        stack_shapes(image, blocks)
    except ValueError as exc:
        raise ParameterError(str(exc), "conv") from None
    return blocks, image


def _optimizer(cfg: TrainConfig, model: LogicNet) -> torch.optim.Optimizer:
    """Adam over every parameter of ``model``: gates at ``lr`` (weight decay for OP only: IWP parameters near
    0 mean an undecided gate, not a small one), wiring logits at ``wiring_lr``. The fused implementation (one
    pass over each tensor: 0.18 instead of 0.47 ms a step for a learned-wiring net of 2 x 8,000 gates on one
    core) where torch has it for the parameters' device and dtype."""
    # Every parameter of the network by its role, conv trees included (they are not in model.layers).
    named = list(model.named_parameters())
    gates = [p for name, p in named if not name.endswith("wiring_logits")]
    wiring = [p for name, p in named if name.endswith("wiring_logits")]
    decay = cfg.weight_decay if cfg.parametrization == "op" else 0.0
    groups: list[dict] = [{"params": gates, "lr": cfg.lr, "weight_decay": decay}]
    if wiring:
        groups.append({"params": wiring, "lr": cfg.wiring_lr or cfg.lr, "weight_decay": 0.0})
    try:
        return torch.optim.Adam(groups, fused=True)
    except RuntimeError:  # a device or dtype without the fused kernel
        return torch.optim.Adam(groups)


class TrainingFailed(LgnError):
    """The run cannot go on (its loss is no longer a number); the message says what it left behind."""


def check_outputs(cfg: TrainConfig, force: bool = False, resumed: str | Path | None = None) -> None:
    """Every file a run will write, checked before any work by the one output rule
    (:mod:`lgn.compiler.outputs`): not an input of the run (``data``, ``test``, ``labels``, ``test_labels``,
    ``resumed``: the resume file a resumed run reads; by path, symbolic or hard link), not a folder or a
    device, an existing file replaced only when it is of the kind written there (a checkpoint, metrics; the
    resume state ``OUT.resume`` counts as a checkpoint) or with ``force``, in a folder that takes files (proved
    by creating one). Nothing is created or truncated here. The resume state a resumed run reads is the one
    file it replaces (with its own later states), since the run continues it."""
    inputs = {name: getattr(cfg, name) for name in ("data", "test", "labels", "test_labels")}
    read = {**inputs, "resume": resumed}
    outputs.check_file(cfg.out, "out", outputs.CHECKPOINT, read, force)
    metrics = cfg.metrics or f"{cfg.out}.metrics.jsonl"
    state = resume.state_path(cfg.out)
    for other, what in ((cfg.out, "the same file"), (state, "out's resume state")):
        if outputs.same_file(metrics, other):
            raise ParameterError(f"metrics and out name {what} ({metrics}): give each its own", "metrics", "out")
    outputs.check_file(metrics, "metrics", outputs.METRICS, read, force)
    outputs.check_file(state, "out", outputs.CHECKPOINT, inputs, force)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def train(
    cfg: TrainConfig,
    data: Dataset | None = None,
    say: Callable[[str], None] | None = None,
    force: bool = False,
    resumed: resume.ResumeState | None = None,
) -> TrainResult:
    """Train per ``cfg`` on ``data`` (default: the data ``cfg`` names, a file or a built-in set); the settings
    left to the data are chosen first (:func:`lgn.training.sizing.resolve`; each line of what was chosen goes
    to ``say``, or to stderr with the progress when ``say`` is None). Write
    the best discretized checkpoint (chosen on the validation split) to
    ``cfg.out``, evaluate it once on the test split, and write metrics as JSONL.

    The outputs are checked first (:func:`check_outputs`; ``force`` lets them replace files of another kind),
    then locked (``OUT.lock``, and ``METRICS.lock`` for a metrics file of its own: one writer per model; a
    second run to them is refused naming this one's process) until the run ends, however it ends.
    Nothing is written before the first evaluation: an interrupted run reports whether it has a checkpoint of
    its own (``TrainResult.checkpoint_step``); a loss that stops being a number raises :class:`TrainingFailed`.

    The run keeps what resuming needs in ``OUT.resume`` (:mod:`lgn.training.resume`: after every evaluation
    and every few minutes; removed when the run ends normally). ``resumed`` (a state read by
    :func:`lgn.training.resume.read_state`, with ``cfg`` from :func:`lgn.training.resume.resumed_config`)
    continues that run from its step, to the same end as the run never interrupted.
    """
    check_outputs(cfg, force, None if resumed is None else resumed.path)
    if _rank()[0] != 0:
        return _train(cfg, data, say, resumed, resumable=True)
    with contextlib.ExitStack() as locks:
        locks.enter_context(OutputLock(cfg.out, "out", say=_to_stderr))
        if cfg.metrics is not None and not outputs.same_file(cfg.metrics, f"{cfg.out}.metrics.jsonl"):
            locks.enter_context(OutputLock(cfg.metrics, "metrics", say=_to_stderr))
        if resumed is not None:  # read before the lock was ours: a run that held it may have replaced it
            resumed.check_unchanged()
        elif (state := resume.state_path(cfg.out)).is_file():  # an interrupted run's, which --resume continues
            line = f"lgn: {state} is an interrupted run's state, which this new run replaces at its first evaluation"
            (say or _to_stderr)(f"{line} (lgn train --resume {state} continues that run instead)")
        return _train(cfg, data, say, resumed, resumable=True)


def _train(cfg: TrainConfig, data: Dataset | None, say: Callable[[str], None] | None,
           resumed: resume.ResumeState | None = None, resumable: bool = False) -> TrainResult:  # fmt: skip
    # resumable: the run writes OUT.resume (a tau-search trial does not)
    rank, world = _rank()
    if cfg.batch_size % world:
        raise ParameterError(f"batch_size {cfg.batch_size} must be divisible by the {world} processes", "batch_size")
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        reuse_freed_memory()
    activation_dtype = ACTIVATION_DTYPES[cfg.activations]
    torch.manual_seed(cfg.seed)
    raw = load_training_data(cfg) if data is None else data
    cfg, choices = sizing.resolve(cfg, raw, training_rows=len(raw.y_train) - round(cfg.val_fraction * len(raw.y_train)))
    speak = (say or _to_stderr) if rank == 0 and (say is not None or cfg.progress) else (lambda line: None)
    for line in choices:
        speak(line)
    if cfg.tau is None:  # a small table: tau is chosen by training (each trial quiet, on training rows only)
        if world > 1:
            line = f"tau {tau_search.DEFAULT:g} (no tau search across processes)"
            cfg = cfg.replace(tau=tau_search.DEFAULT)
        else:
            speak(tau_search.ANNOUNCE)
            cfg, line = tau_search.search(cfg, raw, _held_out_score)
        choices.append(line)
        speak(line)
    prepared = _prepare_data(cfg, device, raw)
    model = build_model(cfg, prepared.encoder, prepared.classes).to(device)
    trained: torch.nn.Module = model
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    optimizer = _optimizer(cfg, model)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    sampler = torch.Generator().manual_seed(cfg.seed + 1)
    log = RunLog(cfg, model, prepared, enabled=rank == 0)
    saver = resume.Saver(cfg, model, optimizer, sampler, log, prepared, enabled=resumable and rank == 0)
    first = 1 if resumed is None else saver.restore(resumed, speak)
    local = cfg.batch_size // world
    interrupted, final = False, None
    shifts = torch.as_tensor(augment.shift_tables(prepared.encoder, cfg.shift)) if cfg.shift else None
    try:
        for step in range(first, (cfg.steps or 0) + 1):
            model.set_estimator(cfg.gate_estimator, cfg.wiring_estimator, cfg.temperature_at(step))
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * cfg.lr_factor(step)
            index = torch.randint(0, len(prepared.x_train), (cfg.batch_size,), generator=sampler)
            batch = prepared.x_train[index]
            if shifts is not None:  # every rank draws the whole batch's shifts: the same stream everywhere
                choice = torch.randint(0, len(shifts), (len(batch),), generator=sampler)
                batch = augment.shift_batch(batch, shifts, choice)
            index = index[rank * local : (rank + 1) * local]
            batch = batch[rank * local : (rank + 1) * local]
            logits = trained(batch.to(device).to(activation_dtype))
            loss = nnf.cross_entropy(logits, prepared.y_train[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise _failed(cfg, log, step, loss_value)
            log.step(step, loss_value)
            saver.after_step(step)
        if cfg.steps == 0 and rank == 0:
            log.evaluate(0, float("nan"))
        if rank == 0:
            final = log.finish()
            saver.finished()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        log.progress.close()
    seconds = time.perf_counter() - log.start
    kept = saver.saved_step if final is None else None
    return TrainResult(
        model, prepared.encoder, log.history, log.best, seconds, interrupted, final, log.best_step, cfg, choices, kept
    )


def _failed(cfg: TrainConfig, log: RunLog, step: int, loss: float) -> TrainingFailed:
    """The run's end when its loss stops being a number: what it leaves behind."""
    kept = (
        f"{cfg.out} holds the last good checkpoint (step {log.best_step})"
        if log.best_step is not None
        else f"no checkpoint of this run was written ({cfg.out} is unchanged)"
    )
    return TrainingFailed(f"the loss became {loss} at step {step}: {kept}; try a smaller lr or a larger tau")


def _held_out_score(cfg: TrainConfig, data: Dataset) -> float:
    """One quiet run of ``cfg`` on ``data``: the discretized accuracy of its chosen checkpoint on data's test
    split (:func:`lgn.training.tau_search.search`'s trainer); 0 when its loss stopped being a number."""
    try:
        final = _train(cfg, data, say=lambda line: None).final
    except TrainingFailed:  # a tau whose loss stops being a number is no candidate
        return 0.0
    if final is None:  # the trial caught ^C: stop the search as the run itself would stop
        raise KeyboardInterrupt
    return float(final["test_acc_discrete"])


def setup_distributed(device: str = "cpu") -> bool:
    """Join the torchrun process group when launched by torchrun: gloo on the CPU, nccl on GPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
        return True
    return False
