"""The training configuration: every setting of a run, its default, its help text and its check, in one place.

The command line builds ``lgn train`` and ``lgn demo`` options from these fields (so both share one set of
defaults); a :class:`TrainConfig` validates itself when it is made, so a bad value is refused before any
work starts, with a :class:`ParameterError` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from lgn.compiler.errors import ParameterError

PARAMETRIZATIONS = ("iwp", "op")
RHOS = ("sin01", "sigmoid")
INITS = ("residual", "gaussian", "and-or", "uniform")
THRESHOLD_METHODS = ("uniform", "quantile")
DEVICES = ("auto", "cpu", "cuda")
IMPLEMENTATIONS = ("auto", "torch", "kernels")
ACTIVATIONS = ("float32", "bfloat16")
MAX_SEED = 2**63 - 1


def setting(default: Any, help: str, choices: tuple | None = None, cli: bool = True) -> Any:
    """A field with its help text and, where the values are names, its choices."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "cli": cli})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. Defaults train the demo's network (about 2 minutes on 2 CPU cores)."""

    dataset: str = setting(
        "mnist",
        "mnist, fashion-mnist, digits, breast-cancer, iris, cifar10, cifar100 or idx (the last three need --data-dir)",
    )
    data_dir: str | None = setting(None, "folder of the dataset (cifar10, cifar100, idx)")
    parametrization: str = setting("iwp", "gate parametrization: input-wise (iwp) or the 16-gate original (op)",
                                   PARAMETRIZATIONS)  # fmt: skip
    arity: int = setting(2, "inputs per gate, 1..6 (op: 2)")
    layers: int = setting(4, "logic layers")
    width: int = setting(2000, "gates per layer (a multiple of the number of classes)")
    tau: float = setting(10.0, "GroupSum temperature: class logit = popcount / tau")
    thresholds: int = setting(1, "thermometer thresholds per feature")
    threshold_method: str = setting("uniform", "where the thresholds sit", THRESHOLD_METHODS)
    crop: int | None = setting(None, "square images: read only the central CROP x CROP pixels (MNIST: 20)")
    rho: str = setting("sin01", "IWP: the map from parameters to corner values", RHOS)
    init: str = setting("residual", "initialisation of the gates", INITS)
    steps: int = setting(10_000, "optimizer steps")
    batch_size: int = setting(100, "samples per step")
    lr: float = setting(0.01, "Adam learning rate")
    weight_decay: float = setting(0.0, "Adam weight decay (op only; IWP parameters near 0 are undecided gates)")
    seed: int = setting(0, "random seed (wiring, initialisation, batches)")
    eval_every: int | None = setting(None, "evaluate every N steps (default: 6 evaluations over the run)")
    eval_samples: int | None = setting(None, "evaluate on the first N test samples (default: all)")
    out: str = setting("model.safetensors", "checkpoint file (the best discretized network)")
    metrics: str | None = setting(None, "JSONL metrics file (default: OUT.metrics.jsonl)")
    progress: bool = setting(True, "progress bar on stderr")
    device: str = setting("auto", "auto: the GPU when PyTorch sees one, else the CPU", DEVICES)
    implementation: str = setting(
        "auto", "gate math: auto = our kernels on a GPU and the fast CPU operators where they apply, torch = the "
        "pure-torch reference everywhere", IMPLEMENTATIONS
    )  # fmt: skip
    activations: str = setting("float32", "activation type between layers on the GPU kernels (bfloat16 halves "
                               "their memory traffic)", ACTIVATIONS)  # fmt: skip

    def __post_init__(self) -> None:
        self.validate()

    @property
    def evaluation_interval(self) -> int:
        """Steps between evaluations: ``eval_every``, or 6 evaluations over the run."""
        return self.eval_every if self.eval_every is not None else max(1, self.steps // 6)

    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the first field whose value no run can use."""
        for field in dataclasses.fields(self):
            choices = field.metadata.get("choices")
            value = getattr(self, field.name)
            if choices and value not in choices:
                raise ParameterError(f"{field.name} must be one of {', '.join(choices)}, got {value!r}", field.name)
        _check_int(self, "arity", 1, 6)
        _check_int(self, "layers", 1)
        _check_int(self, "width", 1)
        _check_int(self, "thresholds", 1)
        _check_int(self, "steps", 0)
        _check_int(self, "batch_size", 1)
        _check_int(self, "seed", 0, MAX_SEED)
        for name in ("crop", "eval_every", "eval_samples"):
            if getattr(self, name) is not None:
                _check_int(self, name, 1)
        _check_float(self, "tau", positive=True)
        _check_float(self, "lr", positive=True)
        _check_float(self, "weight_decay", positive=False)
        if self.parametrization == "op" and self.arity != 2:
            raise ParameterError(
                "parametrization op has 2-input gates only: use arity 2 (or iwp)", "parametrization", "arity"
            )

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _check_int(cfg: TrainConfig, name: str, low: int, high: int | None = None) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{name} must be an integer, got {value!r}", name)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ParameterError(f"{name} must be {bound}, got {value}", name)


def _check_float(cfg: TrainConfig, name: str, positive: bool) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{name} must be a number, got {value!r}", name)
    # Adam and GroupSum turn huge values into inf and NaN within a step: refuse them before any work.
    if not math.isfinite(value) or abs(value) > 1e6 or value < 0 or (positive and value == 0):
        kind = "a positive finite number" if positive else "a finite number >= 0"
        raise ParameterError(f"{name} must be {kind} (at most 1e6), got {value!r}", name)
