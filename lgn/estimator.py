"""``lgn.LogicClassifier``: a logic gate network as a scikit-learn classifier, from a table to a C library.

It trains with :func:`lgn.training.trainer.train` on the table it is given, keeps the exported gate graph (the
IR) and predicts with the graph's evaluator (numpy: a fitted classifier predicts, pickles and exports without
torch). The columns are read the way ``lgn train --data`` reads a CSV of them (:mod:`lgn.frames`), so the graph
it saves is one that ``lgn predict``, ``lgn compile`` and ``lgn verify`` take.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import numbers
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

try:  # validate_data and the tags' dataclasses arrived in scikit-learn 1.6
    from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d, validate_data
except ImportError as exc:  # pragma: no cover - depends on the installed version
    raise ImportError(
        f"lgn.LogicClassifier needs scikit-learn 1.6 or later: pip install -U scikit-learn ({exc})"
    ) from None

from lgn.compiler import evaluate, pipeline
from lgn.compiler.errors import LgnError, ParameterError
from lgn.compiler.ir import GateGraph
from lgn.training.config import FILL_NA, MAX_SEED, TrainConfig
from lgn.training.data import Dataset, stratified_split
from lgn.training.tables import UNKNOWN_POLICIES, features_and_unseen, infer_names

from . import frames

DEFAULT_SEED = 0  # random_state=None: the same network on every fit (set an int to draw another)
# The parameters that are TrainConfig fields of the same name.
_TRAINED = (
    *("layers", "width", "thresholds", "steps", "estimator", "lr_schedule", "arity", "tau", "lr", "batch_size"),
    *("threshold_method", "device"),
)


class LogicClassifier(ClassifierMixin, BaseEstimator):
    """A differentiable logic gate network trained on a table, predicting with the discrete gates it became.

    ``fit(X, y)`` takes a pandas DataFrame or a numeric array and labels of any type. A DataFrame's numeric
    columns are thresholded (thermometer bits); its ``bool`` (``False``/``True``), ``category`` and string
    columns, object columns of text, and the columns named in ``categorical`` are one-hot encoded, one bit per
    category seen in training; the raw feature vector is the numeric columns in order, then one 0/1 feature
    per category of each categorical column (columns in order, categories sorted as text), as ``lgn train
    --data`` reads a CSV of the same columns. A missing cell of a categorical column is a category of its own
    (the empty text, as an empty CSV cell is). A numpy array's columns are named ``x0, x1, ...``.

    Parameters (the first six default to None: chosen from the data when ``fit`` starts, as for ``lgn train
    --data``; every value is stored as given and checked by ``fit``):

    - ``layers``: logic layers (default 2).
    - ``width``: gates per layer (default: ten times the square root of the training rows, 300 to 1,000). The
      last layer feeds GroupSum, which splits it among the classes: it is rounded down to a multiple of their
      number (at least one gate per class).
    - ``thresholds``: thermometer thresholds per numeric column (default 16).
    - ``steps``: optimizer steps (default: about 30 passes over the rows, 2,000 to 12,000).
    - ``estimator``: the training forward pass: ``"soft"``, ``"ste"`` (straight-through, the default for
      tables) or ``"gumbel"``; ``"GATES,WIRING"`` sets gates and wiring apart.
    - ``lr_schedule``: ``"constant"`` or ``"cosine"`` (default for tables).
    - ``arity``: inputs per gate, 1 to 6.
    - ``tau``: GroupSum temperature; ``predict_proba`` is softmax(scores / tau). None: 10, or on a table of at
      most 2,000 training rows the best of 3, 10 and 30 in a 3-fold cross-validation on them.
    - ``lr``: Adam learning rate. ``batch_size``: rows per step.
    - ``threshold_method``: ``"auto"`` (supervised for tables), ``"quantile"``, ``"uniform"`` or ``"supervised"``.
    - ``categorical``: column names or positions to one-hot encode besides those whose dtype says so.
    - ``fill_na``: a missing or NaN numeric cell: ``"error"`` (a ValueError naming the column and the row),
      ``"zero"``, or ``"mean"`` (the training mean). The fill values travel with the exported graph.
    - ``unknown``: a category not seen in training, at predict time: ``"error"`` (a ValueError naming it),
      ``"zero"`` (all of its column's one-hot features 0) or ``"default"`` (the column's most frequent category
      in training); with the last two, a UserWarning counts such rows per column. ``lgn predict --unknown``.
    - ``validation_fraction``: a stratified share of the rows held out of training to choose the checkpoint
      (the best of six evaluations) and to judge it (``validation_score_``, and a UserWarning when the model
      is not clearly better than the majority class there). 0, or data too small to hold out a row of a
      class: the training rows do both.
    - ``random_state``: None (a fixed seed, 0: fits are reproducible), an int, or a ``RandomState`` /
      ``Generator`` (an int is drawn from it). It seeds the wiring, the initialisation, the batches and the
      validation split.
    - ``device``: ``"auto"`` (a GPU when PyTorch sees one), ``"cpu"`` or ``"cuda"``.
    - ``verbose``: print the sizes chosen from the data and a progress bar on stderr.

    Attributes after ``fit``: ``classes_`` (the labels, sorted as ``np.unique``), ``n_features_in_``,
    ``feature_names_in_`` (DataFrames with text column names), ``graph_`` (the exported
    :class:`~lgn.compiler.ir.GateGraph`), ``config_`` (the resolved training configuration),
    ``validation_score_``, ``history_`` (the training evaluations). Training health findings are UserWarnings.

    Problems with the data or the parameters are ValueErrors naming the column and the row (rows counted
    from 0), as ``lgn train`` names them in a file. Labels keep their values in ``classes_``; the graph names
    each class as a CSV cell of it reads (``3``, ``1`` for 1.0, ``True``, the text), so ``lgn predict`` on a CSV
    written by ``DataFrame.to_csv`` (label column included) reads the columns and scores the labels.

    scikit-learn's ``check_estimator`` (``parametrize_with_checks`` in tests/test_estimator.py, with 50 steps
    of 2 x 60 gates): every check passes and none is marked as an expected failure; ``check_array_api_input``
    skips itself (no array API support, as for most estimators). The sample-weight checks do not apply
    (``fit`` takes no ``sample_weight``). Tags: ``allow_nan`` with ``fill_na`` zero or mean;
    ``non_deterministic`` with ``device="cuda"`` (GPU kernels do not promise bit-for-bit repeats; on the CPU a
    seed gives the same network every time, which ``check_fit_idempotent`` holds). ``poor_score`` is not set:
    the checks' accuracy floor (0.83 on their blobs) is met.
    """

    def __init__(
        self,
        layers: int | None = None,
        width: int | None = None,
        thresholds: int | None = None,
        steps: int | None = None,
        estimator: str | None = None,
        lr_schedule: str | None = None,
        arity: int = 2,
        tau: float | None = None,
        lr: float = 0.01,
        batch_size: int = 100,
        threshold_method: str = "auto",
        categorical: Any = None,
        fill_na: str = "error",
        unknown: str = "error",
        validation_fraction: float = 0.1,
        random_state: Any = None,
        device: str = "auto",
        verbose: bool = False,
    ):
        self.layers = layers
        self.width = width
        self.thresholds = thresholds
        self.steps = steps
        self.estimator = estimator
        self.lr_schedule = lr_schedule
        self.arity = arity
        self.tau = tau
        self.lr = lr
        self.batch_size = batch_size
        self.threshold_method = threshold_method
        self.categorical = categorical
        self.fill_na = fill_na
        self.unknown = unknown
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ---- training ---------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> LogicClassifier:
        """Train on ``X`` (DataFrame or numeric array) and labels ``y``; return ``self``."""
        cfg = self._config()
        X = frames.checked(X)
        validate_data(self, X, y, skip_check_array=True, reset=True)
        self._columns = frames.column_names(X)
        label = frames.label_name(y, self._columns)  # a Series' name, before y becomes an array
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs two or more classes; y holds one class: {self.classes_[0]!r}"
            )
        data = self._dataset(X, codes.astype(np.int64), label, cfg.seed)
        self._train(cfg, data)
        return self

    def _config(self) -> TrainConfig:
        """The training configuration of the parameters (a ValueError names a bad one)."""
        for name, value, choices in (("fill_na", self.fill_na, FILL_NA), ("unknown", self.unknown, UNKNOWN_POLICIES)):
            if value not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 <= fraction < 0.5:
            raise ValueError(f"validation_fraction must be a number in [0, 0.5), got {fraction!r}")
        given = {name: _plain(getattr(self, name)) for name in _TRAINED}
        try:
            return TrainConfig(**given, seed=_seed(self.random_state), val_fraction=0.0, progress=bool(self.verbose))
        except LgnError as exc:
            raise ValueError(_python_words(str(exc))) from exc

    def _dataset(self, X: Any, codes: np.ndarray, label: str, seed: int) -> Dataset:
        """The rows as the trainer takes them: raw features by the inferred names (the label column called
        ``label``), split into the training rows and the held-out rows that choose and judge the checkpoint
        (``x_test``)."""
        categorical = frames.categorical_columns(X, self._columns, self.categorical)
        table = frames.columns(X, self._columns)
        table = dataclasses.replace(
            table, names=[*table.names, label], cells=[*table.cells, codes.astype(str).astype(object)]
        )
        try:
            names = infer_names(table, label, categorical, [], self.fill_na)
            names = dataclasses.replace(names, classes=frames.label_texts(self.classes_), label=label)
            x = features_and_unseen(table, names)[0]
        except LgnError as exc:
            raise ValueError(_python_words(str(exc))) from exc
        informative = names.categorical or np.ptp(x, axis=0).any()
        if not informative:  # no threshold can split a constant column: the network would have no input
            raise ValueError("every column of X is constant: there is nothing to learn from")
        kept, held = stratified_split(codes, float(self.validation_fraction), seed, salt=0x51E7)
        if len(held) == 0 or len(np.unique(codes[kept])) < len(self.classes_):
            kept = held = np.arange(len(codes))  # too few rows to hold some out: the training rows do both
        n_classes = len(self.classes_)
        return Dataset("X", x[kept], codes[kept], x[held], codes[held], n_classes, None, names, "quantile")

    def _train(self, cfg: TrainConfig, data: Dataset) -> None:
        from lgn.training import sizing
        from lgn.training.checkpoint import load_checkpoint
        from lgn.training.export import to_graph
        from lgn.training.trainer import train

        cfg, lines = sizing.resolve(cfg, data)
        widths = cfg.layer_widths
        last = max(data.classes, widths[-1] - widths[-1] % data.classes)
        if last != widths[-1]:  # GroupSum splits the last layer evenly among the classes
            cfg = cfg.replace(widths=(*widths[:-1], last))
            lines.append(f"last layer: {last} gates instead of {widths[-1]}, a multiple of the {data.classes} classes")
        if self.verbose:
            print("\n".join(lines), file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="lgn-fit-") as folder:
            cfg = cfg.replace(out=str(Path(folder) / "model.safetensors"))
            try:
                result = train(cfg, data)
                if result.interrupted and result.checkpoint_step is None:
                    raise KeyboardInterrupt
                model, encoder, info = load_checkpoint(cfg.out)
                graph = to_graph(model, encoder, info["names"])
            except LgnError as exc:
                raise ValueError(_python_words(str(exc))) from exc
        self.config_ = dataclasses.replace(result.config or cfg, out="")
        self.history_ = result.history
        self.graph_ = graph
        self._simple = pipeline.simplify(graph)
        final = result.final or {}
        self.validation_score_ = float(final.get("test_acc_discrete", np.nan))
        for finding in final.get("warnings", []):
            message = _python_words(finding).replace("test rows", "held-out rows")
            warnings.warn(f"{type(self).__name__}: {message}", UserWarning, stacklevel=3)
        if result.interrupted:
            warnings.warn(f"training interrupted: kept the checkpoint of step {result.checkpoint_step}", stacklevel=3)

    # ---- predicting -------------------------------------------------------------------------------
    def _scores(self, X: Any) -> np.ndarray:
        """``int64[rows, classes]``: the GroupSum scores of the gate graph on the rows of ``X``."""
        check_is_fitted(self)
        X = frames.checked(X)
        validate_data(self, X, skip_check_array=True, reset=False)
        table = frames.columns(X, self._columns)  # by position, the fit's names (validate_data checked them)
        names = self.graph_.names
        assert names is not None  # the export always names the features, the classes and tau
        try:
            raw, unseen = features_and_unseen(table, names, self.unknown)
        except LgnError as exc:
            raise ValueError(_python_words(str(exc))) from exc
        if unseen:
            counts = ", ".join(f"{column!r}: {n} rows" for column, n in unseen.items())
            warnings.warn(f"categories not seen in training, read as unknown={self.unknown!r}: {counts}", stacklevel=3)
        return evaluate.scores(self._simple, evaluate.encode(self._simple, raw))

    def predict(self, X: Any) -> np.ndarray:
        """The class of each row, from ``classes_`` (the highest score; ties: the first class)."""
        scores = self._scores(X)
        return self.classes_[evaluate.argmax_lowest(scores)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """``float64[rows, classes]`` in ``classes_`` order: softmax(scores / tau), each row summing to 1; its
        row-wise argmax (ties: the first class) is ``predict``."""
        scores = self._scores(X)
        assert self.graph_.names is not None  # the export always names the classes and tau
        return evaluate.probabilities(scores, self.graph_.names.tau)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):  # a probability that underflowed to 0 is log 0 = -inf
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.fill_na in ("zero", "mean")
        tags.non_deterministic = self.device == "cuda"  # GPU kernels do not promise bit-for-bit repeats
        return tags

    # ---- export -----------------------------------------------------------------------------------
    def export(self) -> GateGraph:
        """The trained network as the IR (:class:`~lgn.compiler.ir.GateGraph`), with its encoder and names."""
        check_is_fitted(self)
        return self.graph_

    def save(self, path: str | Path) -> Path:
        """Write the graph file every lgn command takes (``lgn predict``, ``compile``, ``verify``): the
        ``.npz`` format, or the text form for a ``.txt`` path. Return the path."""
        from lgn.cli.common import save_graph

        save_graph(self.export(), str(path))
        return Path(path)

    def compile_c(
        self,
        out_dir: str | Path,
        *,
        isa: str = "auto",
        shape: str = "auto",
        prefix: str = "lgn_net",
        verify: bool = False,
    ) -> Path:
        """Write the standalone C library ``lgn compile --target c`` writes (``.c``, ``.h``, Makefile, example
        program) to ``out_dir``; ``verify``: build it and check it against the evaluator."""
        return self._compile(out_dir, ["--target", "c", "--isa", isa, "--shape", shape, "--prefix", prefix], verify)

    def compile_verilog(
        self, out_dir: str | Path, *, module: str = "lgn_net", pipeline: int | None = None, verify: bool = False
    ) -> Path:
        """Write the Verilog ``lgn compile --target verilog`` writes to ``out_dir`` (it takes the encoded input
        bits); ``pipeline``: a register stage every N logic levels; ``verify``: simulate it (needs Icarus)."""
        argv = ["--target", "verilog", "--module", module] + ([] if pipeline is None else ["--pipeline", str(pipeline)])
        return self._compile(out_dir, argv, verify)

    def _compile(self, out_dir: str | Path, options: list[str], verify: bool) -> Path:
        """Run ``lgn compile`` itself on the graph, so the folder is the one the command writes."""
        from lgn.cli import build_parser

        graph = self.export()
        with tempfile.TemporaryDirectory(prefix="lgn-compile-") as folder:
            path = Path(folder) / "model.npz"
            self.save(path)
            argv = ["compile", str(path), "--out", str(out_dir), *options, *(["--verify"] if verify else [])]
            said = io.StringIO()
            try:
                with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                    args = build_parser().parse_args(argv)
                    code = args.func(args)
            except SystemExit:  # an option argparse refused: its one line is in `said`
                raise ValueError(_python_words(said.getvalue().strip().removeprefix("lgn: error: "))) from None
            except ParameterError as exc:
                raise ValueError(str(exc)) from exc
        if self.verbose:
            print(said.getvalue(), end="")
        if code != 0:
            raise LgnError(f"the compiled {graph.n_gates}-gate network does not match the evaluator: {said.getvalue()}")
        return Path(out_dir)


def _plain(value: Any) -> Any:
    """numpy scalars (a grid search's values) as the Python numbers TrainConfig checks for."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _seed(random_state: Any) -> int:
    if random_state is None:
        return DEFAULT_SEED
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= int(random_state) <= MAX_SEED:
            raise ValueError(f"random_state must be between 0 and {MAX_SEED}, got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(np.iinfo(np.int32).max))
    raise ValueError(f"random_state must be None, an int, a RandomState or a Generator, got {random_state!r}")


def _python_words(message: str) -> str:
    """A message of the command line's words in the estimator's: ``--fill-na`` -> ``fill_na``."""
    return re.sub(r"--([a-z][a-z-]*)", lambda m: m.group(1).replace("-", "_"), message)
