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

from .conv_spec import parse_conv

PARAMETRIZATIONS = ("iwp", "op")
RHOS = ("sin01", "sigmoid")
INITS = ("residual", "gaussian", "and-or", "uniform")
THRESHOLD_METHODS = ("auto", "uniform", "quantile", "supervised")
FILL_NA = ("error", "zero", "mean")
DEVICES = ("auto", "cpu", "cuda")
IMPLEMENTATIONS = ("auto", "torch", "kernels")
ACTIVATIONS = ("float32", "bfloat16")
CONNECTIONS = ("random", "learned")
POOLS = ("random", "local")
ESTIMATORS = ("soft", "ste", "gumbel")
LR_SCHEDULES = ("constant", "cosine")
MAX_SEED = 2**63 - 1
# The settings whose default (None) is chosen from the data when training starts (training.sizing.resolve).
FROM_THE_DATA = ("layers", "width", "thresholds", "steps", "estimator", "lr_schedule", "connections", "tau")
# Upper bounds that keep a mistyped value from allocating the machine away before the first step.
MAX_LAYERS = 64
MAX_WIDTH = 2**20
MAX_THRESHOLDS = 255
MAX_BATCH = 2**16
MAX_SHIFT = 8  # pixels: beyond this an MNIST digit leaves its frame


def setting(default: Any, help: str, choices: tuple | None = None, cli: bool = True) -> Any:
    """A field with its help text and, where the values are names, its choices."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "cli": cli})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. The defaults are a plain starting point; ``lgn demo`` starts from :data:`DEMO`.

    The settings that default to None (:data:`FROM_THE_DATA`) are chosen from the data when training starts
    (:func:`lgn.training.sizing.resolve`): the classic values for images, sizes that follow the rows and
    columns for tables. A resolved configuration has none left.
    """

    dataset: str = setting(
        "mnist",
        "mnist, fashion-mnist, digits, breast-cancer, iris, cifar10, cifar100 or idx (the last three need --data-dir)",
    )
    data_dir: str | None = setting(None, "folder of the dataset (cifar10, cifar100, idx)")
    data: str | None = setting(
        None, "your own table instead of --dataset: a .csv or .tsv (header row), .npz (arrays X and y), .npy "
        "(with --labels) or .parquet file"
    )  # fmt: skip
    label: str | None = setting(None, "the label column of --data (default for .npz and .npy: y)")
    labels: str | None = setting(None, "with an .npy --data: the .npy file of its labels")
    test: str | None = setting(None, "a test file with the columns of --data (default: --test-fraction of it)")
    test_labels: str | None = setting(None, "with an .npy --test: the .npy file of its labels")
    test_fraction: float = setting(0.2, "with --data and no --test: the fraction held out for testing (stratified)")
    categorical: str = setting("", "columns of --data to one-hot encode, e.g. color,size (text columns are anyway)")
    drop: str = setting("", "columns of --data to ignore, e.g. id,timestamp")
    fill_na: str = setting("error", "missing or NaN numeric cells of --data: an error naming the row, 0, or the "
                           "training mean (kept with the model for predictions)", FILL_NA)  # fmt: skip
    parametrization: str = setting("iwp", "gate parametrization: input-wise (iwp) or the 16-gate original (op)",
                                   PARAMETRIZATIONS)  # fmt: skip
    arity: int = setting(2, "inputs per gate, 1..6 (op: 2)")
    layers: int | None = setting(
        None, "logic layers (with --width; --widths gives each layer its own; default: 4 for images, 2 for tables)"
    )
    width: int | None = setting(
        None, "gates per layer (default: 2000 for images, 1000 for tables, the last layer rounded to a multiple "
        "of the classes)"
    )  # fmt: skip
    widths: tuple[int, ...] | None = setting(
        None, "gates per layer, e.g. 8000,4000,1000 (instead of --layers and --width; the last feeds GroupSum)"
    )
    conv: str | None = setting(
        None, "conv blocks before the layers, CHANNELS:KERNEL:DEPTH[:GROUPS],... (e.g. 32:3:3,64:3:3): each output "
        "channel a tree of DEPTH levels of 2-input gates over 2^DEPTH bits of a KERNEL x KERNEL window (the same "
        "tree at every position, padding KERNEL // 2), then OR pooling; images only"
    )  # fmt: skip
    conv_pool: int = setting(2, "with --conv: the OR pooling window after each conv block (1: none)")
    connections: str | None = setting(
        None, "wiring: random and fixed, or learned among candidates (default: random for images, learned for "
        "tables)", CONNECTIONS
    )  # fmt: skip
    candidates: str = setting(
        "8", "learned wiring: candidates per fan-in slot, per layer (the last value holds for the layers after "
        "it; 0: that layer's wiring stays fixed; all: every input of the layer)"
    )  # fmt: skip
    pool: str = setting("random", "learned wiring: candidates drawn at random, or half of them near the "
                        "starting input for images (first layer)", POOLS)  # fmt: skip
    estimator: str | None = setting(
        None, "training forward of the gates and the wiring: soft relaxation, or hard choices with "
        "straight-through gradients (ste; gumbel adds noise); GATES,WIRING sets them apart (default: soft gates "
        "and hard wiring choices for images, what every shipped model trains with and learned wiring's fast path; "
        "ste for tables, which trains the discretized network itself)"
    )  # fmt: skip
    temperature: tuple[float, ...] = setting(
        (1.0,), "softmax temperature of the wiring and of the hard estimators; START,END anneals it "
        "geometrically over the run"
    )  # fmt: skip
    wiring_lr: float | None = setting(None, "Adam learning rate of the wiring logits (default: --lr)")
    val_fraction: float = setting(
        0.1, "fraction of the training split held out (stratified, seeded) to choose the checkpoint; the test "
        "split is evaluated once, at the end (0: choose on the test split, as the 2022 paper did)"
    )  # fmt: skip
    tau: float | None = setting(
        None, "GroupSum temperature: class logit = popcount / tau (default: 10 for images and for tables of more "
        "than 2,000 training rows; on smaller tables the best of 3, 10 and 30 on a held-out 30% of the rows)"
    )  # fmt: skip
    thresholds: int | None = setting(
        None, "thermometer thresholds per feature (default: 1 for images, 16 per numeric column of a table)"
    )
    threshold_method: str = setting(
        "auto", "where the thresholds sit (auto: evenly over the value range for images; for tables, supervised: "
        "half at each column's quantiles, half where a decision tree on that column splits the classes)",
        THRESHOLD_METHODS
    )  # fmt: skip
    crop: int | None = setting(None, "square images: read only the central CROP x CROP pixels (MNIST: 20)")
    shift: int = setting(0, "square images: shift each training image by up to SHIFT pixels each way, at random "
                         "(data augmentation; 0: off)")  # fmt: skip
    rho: str = setting("sin01", "IWP: the map from parameters to corner values", RHOS)
    init: str = setting("residual", "initialisation of the gates", INITS)
    steps: int | None = setting(
        None, "optimizer steps (default: 10000 for images; for tables about 30 passes over the rows, 2000 to 12000)"
    )
    batch_size: int = setting(100, "samples per step")
    lr: float = setting(0.01, "Adam learning rate")
    lr_schedule: str | None = setting(
        None, "learning rates over the run: constant, or cosine decay to 1% of the start (default: constant for "
        "images, cosine for tables)", LR_SCHEDULES
    )  # fmt: skip
    weight_decay: float = setting(0.0, "Adam weight decay (op only; IWP parameters near 0 are undecided gates)")
    seed: int = setting(0, "random seed (wiring, initialisation, batches)")
    eval_every: int | None = setting(None, "evaluate every N steps (default: 6 evaluations over the run)")
    eval_samples: int | None = setting(None, "evaluate on the first N test samples (default: all)")
    out: str = setting("model.safetensors", "checkpoint file (the best discretized network)")
    metrics: str | None = setting(None, "JSONL metrics file (default: OUT.metrics.jsonl)")
    progress: bool = setting(True, "progress bar on stderr")
    strict: bool = setting(
        False, "exit 1 (after writing the model) when the discretized model is not clearly better than always "
        "answering the majority class, or is far below the relaxed network it came from"
    )  # fmt: skip
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
        return self.eval_every if self.eval_every is not None else max(1, _resolved(self.steps, "steps") // 6)

    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the first field whose value no run can use."""
        for field in dataclasses.fields(self):
            choices = field.metadata.get("choices")
            value = getattr(self, field.name)
            if choices and value not in choices and not (value is None and field.name in FROM_THE_DATA):
                raise ParameterError(f"{field.name} must be one of {', '.join(choices)}, got {value!r}", field.name)
        _check_int(self, "arity", 1, 6)
        for name, low, high in (("layers", 1, MAX_LAYERS), ("width", 1, MAX_WIDTH), ("thresholds", 1, MAX_THRESHOLDS),
                                ("steps", 0, None)):  # fmt: skip
            if getattr(self, name) is not None:
                _check_int(self, name, low, high)
        _check_int(self, "batch_size", 1, MAX_BATCH)
        _check_int(self, "seed", 0, MAX_SEED)
        _check_int(self, "shift", 0, MAX_SHIFT)
        for name in ("crop", "eval_every", "eval_samples"):
            if getattr(self, name) is not None:
                _check_int(self, name, 1)
        if self.tau is not None:
            _check_float(self, "tau", positive=True)
        _check_float(self, "lr", positive=True)
        _check_float(self, "weight_decay", positive=False)
        if self.wiring_lr is not None:
            _check_float(self, "wiring_lr", positive=True)
        _check_float(self, "val_fraction", positive=False)
        self._check_files()
        if self.val_fraction >= 0.5:
            raise ParameterError(f"val_fraction must be below 0.5, got {self.val_fraction}", "val_fraction")
        self._check_architecture()
        if self.parametrization == "op" and self.arity != 2:
            raise ParameterError(
                "parametrization op has 2-input gates only: use arity 2 (or iwp)", "parametrization", "arity"
            )

    def _check_architecture(self) -> None:
        if self.widths is not None and (
            not 1 <= len(self.widths) <= MAX_LAYERS
            or any(isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= MAX_WIDTH for w in self.widths)
        ):
            raise ParameterError(
                f"widths must be 1 to {MAX_LAYERS} integers between 1 and {MAX_WIDTH}, got {self.widths}", "widths"
            )
        self.layer_candidates()  # parses and checks
        _check_int(self, "conv_pool", 1, 8)
        if self.conv is not None:
            try:
                parse_conv(self.conv, self.conv_pool)
            except ValueError as exc:
                raise ParameterError(str(exc), "conv_pool" if "conv_pool" in str(exc) else "conv") from None
            if self.crop is not None:
                raise ParameterError("conv reads whole images: leave out crop", "conv", "crop")
        elif self.conv_pool != 2:
            raise ParameterError("conv_pool goes with conv", "conv_pool", "conv")
        parts = (self.estimator or "ste").split(",")
        if len(parts) > 2 or any(p not in ESTIMATORS for p in parts):
            raise ParameterError(
                f"estimator must be one of {', '.join(ESTIMATORS)}, or two of them (gates,wiring), got "
                f"{self.estimator!r}",
                "estimator",
            )
        if not 1 <= len(self.temperature) <= 2 or any(
            not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0 for t in self.temperature
        ):
            raise ParameterError(
                f"temperature must be one or two positive numbers (START,END), got {self.temperature}", "temperature"
            )

    def _check_files(self) -> None:
        if self.data is None:
            given = [n for n in ("label", "labels", "test", "test_labels") if getattr(self, n) is not None]
            given += [n for n in ("categorical", "drop") if getattr(self, n)]
            if given:
                raise ParameterError(f"{given[0]} applies to --data files only", given[0], "data")
        _check_float(self, "test_fraction", positive=True)
        if self.test_fraction >= 1:
            raise ParameterError(f"test_fraction must be below 1, got {self.test_fraction}", "test_fraction")

    @property
    def column_lists(self) -> tuple[list[str], list[str]]:
        """(``categorical``, ``drop``) as lists of column names."""

        def names(text: str) -> list[str]:
            return [c.strip() for c in text.split(",") if c.strip()]

        return names(self.categorical), names(self.drop)

    @property
    def resolved(self) -> bool:
        """Whether every setting chosen from the data has its value."""
        return all(getattr(self, name) is not None for name in FROM_THE_DATA)

    @property
    def layer_widths(self) -> list[int]:
        if self.widths is not None:
            return list(self.widths)
        if self.width is None or self.layers is None:
            raise ParameterError("the layer widths are chosen from the data: resolve the configuration first", "width")
        return [self.width] * self.layers

    def layer_candidates(self) -> list[int | None]:
        """Per layer: 0 (fixed wiring), a pool size, or None (every input). All 0 for random connections.
        Before the layer count is chosen from the data, the values as given (parsed and checked)."""
        n = len(self.widths) if self.widths is not None else self.layers
        if self.connections == "random" or (self.connections is None and n is not None):
            return [0] * (n or 0)
        values: list[int | None] = []
        for word in self.candidates.split(","):
            word = word.strip()
            if word == "all":
                values.append(None)
            elif word.isdigit():
                values.append(int(word))
            else:
                raise ParameterError(f"candidates must be numbers or all, got {self.candidates!r}", "candidates")
        if n is None:
            return values
        if len(values) > n:
            raise ParameterError(f"candidates gives {len(values)} layers, the network has {n}", "candidates")
        return values + values[-1:] * (n - len(values))  # the last value holds for the remaining layers

    @property
    def gate_estimator(self) -> str:
        return _resolved(self.estimator, "estimator").split(",")[0]

    @property
    def wiring_estimator(self) -> str:
        return _resolved(self.estimator, "estimator").split(",")[-1]

    def temperature_at(self, step: int) -> float:
        """The temperature at ``step`` (1-based): constant, or geometric from START at step 1 to END at the
        last step."""
        start, end = self.temperature[0], self.temperature[-1]
        steps: int = _resolved(self.steps, "steps")
        if steps <= 1 or start == end:
            return float(start)
        fraction = min(1.0, max(0.0, (step - 1) / (steps - 1)))
        return float(start * (end / start) ** fraction)

    def lr_factor(self, step: int) -> float:
        """The learning rates' multiplier at ``step`` (1-based)."""
        steps: int = _resolved(self.steps, "steps")
        if _resolved(self.lr_schedule, "lr_schedule") == "constant" or steps <= 1:
            return 1.0
        fraction = min(1.0, max(0.0, (step - 1) / (steps - 1)))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * fraction))

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _resolved(value: Any, name: str) -> Any:
    if value is None:
        raise ParameterError(f"{name} is chosen from the data: resolve the configuration first", name)
    return value


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


# The demo's network: the most accurate one found that trains in the demo's time (about 45 s on 2 cores): two
# layers of 1,000 six-input gates, learned wiring among 64 candidates (half of them near the gate's pixel) and
# then 16, training images shifted by up to one pixel, 3,400 steps (97.0% on MNIST; 1,700 steps without the
# shift, what fitted in that time before the learned-wiring operators were made 2x faster, reached 96.4%, and
# the earlier 4 x 2,000 fixed-wiring default 92.6%).
DEMO = TrainConfig(
    thresholds=1,
    arity=6,
    layers=2,
    width=1000,
    connections="learned",
    candidates="64,16",
    pool="local",
    estimator="soft,ste",
    wiring_lr=0.05,
    init="gaussian",
    tau=3.0,
    lr_schedule="cosine",
    batch_size=128,
    shift=1,
    steps=3400,
)
