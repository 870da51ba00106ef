"""Resuming a training run: ``OUT.resume``, what a run needs to continue exactly where it stopped.

**When.** A run writes ``OUT.resume`` (beside its checkpoint ``OUT``) after every evaluation, and between
evaluations after any step that ends :data:`SAVE_SECONDS` or more after the last write: a long run killed at
any moment loses at most that much work. Each write replaces the file atomically (a private file renamed into
place), so a kill leaves the previous state whole. The run removes the file when it ends normally (its final
checkpoint is written: nothing is left to resume, and the state is several times the model's size); an
interrupted or failed run keeps it.

**What.** The state after a whole step: the network's parameters and buffers, Adam's moments and step counts,
the step, the best discretized network so far with its score, step and record, the evaluation history (the
metrics file is rewritten from it at the resumed run's first evaluation), the torch random states (the
process's generator, which the gumbel estimator draws from, the CUDA one on a GPU, and the batch sampler's,
which also draws the shifts), the resolved configuration and a fingerprint of the encoded data. The learning
rate and the temperature follow from the step (:meth:`TrainConfig.lr_factor`, :meth:`TrainConfig.temperature_at`),
so the step is their whole state; the data are drawn by the torch sampler alone (no numpy generator).

**Format.** A safetensors file written like a checkpoint (:func:`lgn.training.checkpoint.safetensors_bytes`):
tensors ``model.NAME`` and ``best.NAME`` (state dicts), ``adam.I.KEY`` (the optimizer state of parameter I),
``rng.torch``, ``rng.sampler``, ``rng.cuda`` (uint8); metadata ``format`` (``lgn-resume``), ``version``,
``state`` (JSON) and ``checksum`` (SHA-256 over every tensor's name, dtype, shape and bytes and the state
text). Reading never runs code from the file: pickles and zips are refused by their first bytes, the header is
parsed by safetensors, the checksum is checked, then every field, and every tensor against the network built
from the configuration (name, dtype, shape, finite values) before anything is loaded.

Resumed with the same data, the run ends with the same checkpoint, bit for bit, as the run never interrupted
(on the same kind of device; across devices it goes on, without that promise).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lgn.compiler import outputs
from lgn.compiler.build_cache import write_atomic
from lgn.compiler.errors import LgnError, ParameterError

from .checkpoint import _checksum, _raw_bytes, read_safetensors, safetensors_bytes
from .config import TrainConfig

if TYPE_CHECKING:
    from .runlog import RunLog
    from .trainer import _Data

SUFFIX = ".resume"
FORMAT, VERSION = "lgn-resume", "1"
SAVE_SECONDS = 300.0  # between evaluations, at most this much work is lost
ADAM_KEYS = ("step", "exp_avg", "exp_avg_sq")
# Settings a resumed run may give anew: where the data are (the fingerprint checks they are the same data) and
# whether to show progress; every other setting given must equal the run's.
PATH_SETTINGS = ("data", "test", "labels", "test_labels", "data_dir")
FREE_SETTINGS = ("progress",)
STATE_TYPES: dict[str, type | tuple[type, ...]] = {
    "step": int,
    "config": dict,
    "history": list,
    "best": (int, float),
    "best_step": (int, type(None)),
    "best_info": (dict, type(None)),
    "best_trivial": (int, float, type(None)),
    "info": dict,
    "run": str,
    "seconds": (int, float),
    "fingerprint": str,
}


class ResumeError(LgnError):
    """A resume state is missing, foreign, damaged, or does not fit the run or the data it is resumed with."""


def state_path(out: str | Path) -> Path:
    """Where the run writing the checkpoint ``out`` keeps its resume state."""
    return Path(f"{out}{SUFFIX}")


@dataclasses.dataclass
class ResumeState:
    """A resume file as read and checked (:func:`read_state`); its tensors are checked against the network
    when restored (:meth:`Saver.restore`)."""

    path: Path
    config: TrainConfig  # the resolved configuration of the run it continues
    step: int  # the steps done
    state: dict
    tensors: dict[str, torch.Tensor]
    identity: tuple[int, int, int, int]  # device, inode, size and mtime when read

    @property
    def out(self) -> str:
        """The checkpoint the run writes: the resume file's path less :data:`SUFFIX`."""
        return str(self.path)[: -len(SUFFIX)]

    def check_unchanged(self) -> None:
        """Refuse when the file was replaced since it was read (call it holding the run's lock)."""
        if _identity(self.path) != self.identity:
            raise ResumeError(f"{self.path} changed while this run started (another run wrote it): run it again")


def _identity(path: Path) -> tuple[int, int, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0, -1, 0)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def read_state(path: str | Path) -> ResumeState:
    """Read and check the resume file ``path`` (named ``OUT.resume``); raise :class:`ResumeError` (or
    :class:`lgn.training.checkpoint.CheckpointError` for a pickle or a zip) with a one-line reason."""
    path = Path(path)
    if not path.name.endswith(SUFFIX) or path.name == SUFFIX:
        raise ResumeError(f"{path}: a resume state is named OUT{SUFFIX}, beside the checkpoint OUT its run writes")
    if not path.is_file():
        raise ResumeError(f"{path}: " + ("not a regular file" if path.exists() else "no such file"))
    identity = _identity(path)
    metadata, tensors = read_safetensors(path, ResumeError, "an lgn resume state")
    if metadata.get("format") == "lgn-model":
        raise ResumeError(f"{path}: a model checkpoint, not a resume state (a run writes OUT{SUFFIX} beside OUT)")
    if metadata.get("format") != FORMAT:
        raise ResumeError(f"{path}: not an lgn resume state (format {metadata.get('format')!r})")
    if metadata.get("version") != VERSION:
        raise ResumeError(f"{path}: resume state version {metadata.get('version')} (this lgn reads {VERSION})")
    text = metadata.get("state", "")
    if metadata.get("checksum") != _checksum(tensors, text):
        raise ResumeError(f"{path}: checksum mismatch: the file was damaged or modified after it was written")
    try:
        state = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ResumeError(f"{path}: malformed state ({type(exc).__name__})") from None
    config = _checked_state(path, state)
    _check_tensors(path, tensors)
    return ResumeState(path, config, state["step"], state, tensors, identity)


def _checked_state(path: Path, state: Any) -> TrainConfig:
    """The state's fields and types, and its configuration as a resolved :class:`TrainConfig`."""
    if not isinstance(state, dict) or set(state) != set(STATE_TYPES):
        raise ResumeError(f"{path}: the state must have exactly the fields {sorted(STATE_TYPES)}")
    for key, kind in STATE_TYPES.items():
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise ResumeError(f"{path}: state field {key!r} has the wrong type")
    if not all(isinstance(record, dict) for record in state["history"]):
        raise ResumeError(f"{path}: state field 'history' must hold records")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(state["config"]) - fields)
    if unknown:
        raise ResumeError(f"{path}: unknown setting {unknown[0]!r} (written by another version of lgn?)")
    # A setting missing from the file was added to lgn after it was written: its default is what the run had.
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()}
    try:
        config = TrainConfig(**values)
    except (ParameterError, TypeError) as exc:
        raise ResumeError(f"{path}: a configuration no run can have ({exc})") from None
    if not config.resolved or not 1 <= state["step"] <= (config.steps or 0):
        raise ResumeError(f"{path}: step {state['step']} of a run of {config.steps} steps")
    return config


def _check_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Names of the four kinds only; generator states as bytes; no NaN or infinity anywhere."""
    for name, t in tensors.items():
        kind = name.split(".", 1)[0]
        if kind not in ("model", "best", "adam", "rng") or "." not in name:
            raise ResumeError(f"{path}: unexpected tensor {name!r}")
        if kind == "rng" and (name not in ("rng.torch", "rng.sampler", "rng.cuda") or t.dtype != torch.uint8):
            raise ResumeError(f"{path}: unexpected generator state {name!r} ({t.dtype})")
        if t.dtype.is_floating_point and not bool(torch.isfinite(t).all()):
            raise ResumeError(f"{path}: tensor {name!r} holds NaN or infinite values")
    for name in ("rng.torch", "rng.sampler"):
        if name not in tensors:
            raise ResumeError(f"{path}: missing the tensor {name!r}")


def resumed_config(state: ResumeState, given: Mapping[str, Any]) -> TrainConfig:
    """The configuration that continues ``state``'s run: its own, writing ``state.out`` (where the resume file
    lies now), with ``given`` (the settings given on the command line) checked against it. The data's paths
    and ``progress`` may be given anew; ``out`` and ``metrics`` must name the run's files; any other setting
    given must equal the run's, else :class:`ParameterError` naming it."""
    saved, out = state.config, state.out
    changes: dict[str, Any] = {"out": out}
    for name, value in given.items():
        if name == "out" and not outputs.same_file(value, out):
            raise ParameterError(f"out {value} contradicts {state.path}, which continues the run writing {out}", "out")
        if name == "metrics":
            own = saved.metrics or f"{out}.metrics.jsonl"
            if not outputs.same_file(value, own):
                raise ParameterError(f"metrics {value} contradicts {state.path}, whose run writes {own}", "metrics")
        if name in PATH_SETTINGS + FREE_SETTINGS + ("metrics",):
            changes[name] = value
        elif name != "out" and value != getattr(saved, name):
            raise ParameterError(
                f"{name} {_shown(value)} contradicts the resumed run's {_shown(getattr(saved, name))} "
                f"({state.path}): a resumed run keeps its settings; leave the option out",
                name,
            )
    return saved.replace(**changes)


def _shown(value: Any) -> str:
    if value is None:
        return "(not set)"
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def data_fingerprint(data: _Data) -> str:
    """SHA-256 over the encoded splits, the encoder and the names: what the run trains, selects and tests on."""
    digest = hashlib.sha256()
    for name in ("x_train", "y_train", "x_eval", "y_eval", "x_test", "y_test"):
        t = getattr(data, name).detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        digest.update(_raw_bytes(t))
    encoder = data.encoder
    digest.update(f"encoder:{encoder.n_features}\n".encode())
    digest.update(encoder.feature.astype("<i8").tobytes() + encoder.threshold.astype("<f8").tobytes())
    digest.update((data.names.to_json() if data.names is not None else "").encode())
    return digest.hexdigest()


class Saver:
    """Writes a run's resume state (:data:`SUFFIX`, beside ``cfg.out``) and restores one into a new run. Only
    an ``enabled`` saver writes (rank 0 of the run, never a tau-search trial); every rank restores."""

    def __init__(self, cfg: TrainConfig, model, optimizer, sampler: torch.Generator, log: RunLog, data: _Data,
                 enabled: bool):  # fmt: skip
        self.cfg, self.model, self.optimizer, self.sampler = cfg, model, optimizer, sampler
        self.log, self.data, self.enabled, self.path = log, data, enabled, state_path(cfg.out)
        self.device = next(model.parameters()).device
        self.saved_step: int | None = None  # the step of the state in ``path`` (written or resumed from)
        self.last = time.monotonic()
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = data_fingerprint(self.data)
        return self._fingerprint

    def after_step(self, step: int) -> None:
        """Write the state after ``step`` when the run evaluated at it, or :data:`SAVE_SECONDS` have passed."""
        if self.enabled and (self.log.evaluates_at(step) or time.monotonic() - self.last >= SAVE_SECONDS):
            self.save(step)

    def save(self, step: int) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.log.best_model is not None:
            tensors.update({f"best.{k}": v for k, v in self.log.best_model.state_dict().items()})
        for index, entry in self.optimizer.state_dict()["state"].items():
            tensors.update({f"adam.{index}.{key}": entry[key] for key in ADAM_KEYS})
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.sampler"] = self.sampler.get_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        log = self.log
        state = {
            "step": step,
            "config": dataclasses.asdict(self.cfg),
            "history": log.history,
            "best": log.best,
            "best_step": log.best_step,
            "best_info": log.best_info,
            "best_trivial": log.best_trivial,
            "info": log.info,
            "run": log.run,
            "seconds": time.perf_counter() - log.start,
            "fingerprint": self.fingerprint,
        }
        text = json.dumps(state, sort_keys=True)
        metadata = {"format": FORMAT, "version": VERSION, "state": text, "checksum": _checksum(tensors, text)}
        write_atomic(self.path, safetensors_bytes(tensors, metadata))
        self.saved_step, self.last = step, time.monotonic()

    def finished(self) -> None:
        """The run ended normally: its resume state is of no more use."""
        if self.enabled:
            self.path.unlink(missing_ok=True)

    def restore(self, state: ResumeState, say: Callable[[str], None]) -> int:
        """Load ``state`` into the run (network, optimizer, generators, log), say so, and return the next
        step. Every tensor is checked against what it replaces before anything is loaded."""
        if state.state["fingerprint"] != self.fingerprint:
            raise ResumeError(
                f"{state.path}: the data differ from the data its run trained on (the same dataset and files, "
                "with the same contents, resume it)"
            )
        groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "best": {}, "adam": {}}
        for name, t in state.tensors.items():
            kind, rest = name.split(".", 1)
            if kind in groups:
                groups[kind][rest] = t
        _check_like(state.path, "model", groups["model"], self.model.state_dict())
        best = None
        if bool(groups["best"]) != (state.state["best_step"] is not None):
            raise ResumeError(f"{state.path}: the best network and its step do not come together")
        if groups["best"]:
            best = copy.deepcopy(self.model)
            _check_like(state.path, "best", groups["best"], best.state_dict())
            best.load_state_dict(groups["best"])
            # The copy was taken in the middle of the run: its forward's settings are those of its step.
            cfg, step = self.cfg, state.state["best_step"]
            best.set_estimator(cfg.gate_estimator, cfg.wiring_estimator, cfg.temperature_at(max(1, step)))
        adam = _adam_state(state.path, groups["adam"], self.optimizer)
        try:
            torch.set_rng_state(state.tensors["rng.torch"])
            self.sampler.set_state(state.tensors["rng.sampler"])
            if self.device.type == "cuda" and "rng.cuda" in state.tensors:
                torch.cuda.set_rng_state(state.tensors["rng.cuda"], self.device)
        except RuntimeError as exc:
            raise ResumeError(f"{state.path}: a generator state torch cannot take ({str(exc)[:120]})") from None
        self.model.load_state_dict(groups["model"])
        self.optimizer.load_state_dict({"state": adam, "param_groups": self.optimizer.state_dict()["param_groups"]})
        self._restore_log(state.state, best)
        self.saved_step = state.step
        say(f"resuming {state.path} after step {state.step} of {self.cfg.steps}")
        return state.step + 1

    def _restore_log(self, state: dict, best) -> None:
        log = self.log
        log.history, log.info, log.run = list(state["history"]), state["info"], state["run"]
        log.best, log.best_step, log.best_info = float(state["best"]), state["best_step"], state["best_info"]
        log.best_trivial, log.best_model = state["best_trivial"], None if best is None else best.eval()
        # Times count from the run's start: the metrics' seconds and the progress bar's rate go on, not restart.
        log.start = log.progress.start = time.perf_counter() - float(state["seconds"])


def _check_like(path: Path, kind: str, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """``tensors`` are exactly ``expected``'s names, dtypes and shapes: nothing is converted or left out."""
    if set(tensors) != set(expected):
        odd = sorted(set(tensors) ^ set(expected))[0]
        raise ResumeError(f"{path}: the {kind} tensors do not match the run's network ({kind}.{odd})")
    for name, t in tensors.items():
        if t.dtype != expected[name].dtype or t.shape != expected[name].shape:
            raise ResumeError(
                f"{path}: tensor {kind}.{name} is {t.dtype} {tuple(t.shape)}, the network's {expected[name].dtype} "
                f"{tuple(expected[name].shape)}"
            )


def _adam_state(path: Path, tensors: dict[str, torch.Tensor], optimizer) -> dict[int, dict[str, torch.Tensor]]:
    """Adam's per-parameter state from ``adam.I.KEY`` tensors: every index a parameter of ``optimizer``, all of
    :data:`ADAM_KEYS` for each, moments of the parameter's dtype and shape, the step a float32 scalar."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, t in tensors.items():
        index, _, key = name.partition(".")
        if not index.isdigit() or int(index) >= len(params) or key not in ADAM_KEYS:
            raise ResumeError(f"{path}: unexpected optimizer tensor adam.{name}")
        param = params[int(index)]
        shape, dtype = (torch.Size([]), torch.float32) if key == "step" else (param.shape, param.dtype)
        if t.shape != shape or t.dtype != dtype:
            raise ResumeError(f"{path}: optimizer tensor adam.{name} is {t.dtype} {tuple(t.shape)}")
        state.setdefault(int(index), {})[key] = t
    if any(len(entry) != len(ADAM_KEYS) for entry in state.values()):
        raise ResumeError(f"{path}: the optimizer state of a parameter is incomplete")
    return state
