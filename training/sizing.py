"""Defaults that follow the data: the settings a :class:`~lgn.training.config.TrainConfig` leaves at None
(:data:`~lgn.training.config.FROM_THE_DATA`) get their values here, when training starts and the data is known.

Images (data with a fixed value range: MNIST, Fashion-MNIST, digits, CIFAR, IDX) keep the classic values:
4 layers of 2,000 gates, one threshold per pixel, 10,000 steps, soft gates with hard wiring choices, a constant
learning rate. Tables (scikit-learn's sets and every ``--data`` file) get what ``bench/tabular.py`` chose
(docs/results.md, "Tables"):

- the straight-through estimator (``ste``): the forward pass is the discretized network itself, so what is
  trained is what is shipped. On small inputs the soft relaxation learns a network whose discretization
  collapses (a census table: 0.84 relaxed, 0.51 discretized, below the majority class);
- 16 thresholds per numeric column, half at its quantiles and half where a small decision tree on that column
  alone splits the classes, plus the cuts of one tree over all columns (``supervised``): a rule's cut is then an
  input bit, not the quantile nearest it, even where it matters only together with another column;
- learned wiring: each fan-in slot chooses among 8 candidate inputs (``--candidates``), so a gate finds the
  two bits a rule combines instead of hoping its random wiring drew them (MONK's, synthetic rules: +2 to +7
  points over fixed wiring, and fewer gates);
- two layers of 300 to 1,000 gates (ten times the square root of the rows), the last rounded down to a multiple
  of the classes;
- about 30 passes over the training rows at 100 rows a step, at least 2,000 and at most 12,000 steps, with a
  cosine learning-rate decay;
- the GroupSum temperature tau: 10 above :data:`~.tau_search.SEARCH_ROWS` training rows; below, left to
  :func:`~.tau_search.search` (the trainer runs it: it trains), which picks 3, 10 or 30 on held-out rows.

Every value the user gives is kept; :func:`resolve` returns the resolved configuration and the lines that say
what was chosen.
"""

from __future__ import annotations

from lgn.compiler.errors import ParameterError

from . import tau_search
from .config import FROM_THE_DATA, TrainConfig
from .data import Dataset

IMAGE_DEFAULTS = dict(
    layers=4,
    width=2000,
    thresholds=1,
    steps=10_000,
    estimator="soft,ste",
    lr_schedule="constant",
    connections="random",
    tau=tau_search.DEFAULT,
)
TABLE_LAYERS = 2
TABLE_WIDTH = (300, 1000)  # gates per layer: from small tables (a few hundred rows) to large ones (10,000+)
TABLE_THRESHOLDS = 16
TABLE_EPOCHS = 30
TABLE_STEPS = (2000, 12_000)


def is_table(data: Dataset) -> bool:
    """Tables are data without a fixed raw value range (images have one: 0..255 pixels)."""
    return data.value_range is None


def table_width(rows: int) -> int:
    """Gates per layer for ``rows`` training rows: ten times the square root, in hundreds, within
    :data:`TABLE_WIDTH` (wider nets overfit small tables: 2 x 300 beat 2 x 1,000 on six of seven tables of
    150-550 rows, by 1-7 points)."""
    low, high = TABLE_WIDTH
    return int(min(high, max(low, round(10 * rows**0.5, -2))))


def table_steps(rows: int, batch_size: int) -> int:
    """About :data:`TABLE_EPOCHS` passes over ``rows`` training rows, within :data:`TABLE_STEPS`."""
    low, high = TABLE_STEPS
    return int(min(high, max(low, round(TABLE_EPOCHS * rows / batch_size, -2))))


def resolve(cfg: TrainConfig, data: Dataset, training_rows: int | None = None) -> tuple[TrainConfig, list[str]]:
    """(``cfg`` with every setting left to the data chosen, the lines that say what was chosen). A resolved
    ``cfg`` comes back unchanged with no lines. ``training_rows``: the rows the optimizer draws from (the
    training split less the validation rows; default: all of ``data.x_train``)."""
    rows = len(data.x_train) if training_rows is None else training_rows
    table = is_table(data)
    for name in ("crop", "shift", "conv"):  # before anything is trained for the table (the tau search)
        if getattr(cfg, name) and table:
            raise ParameterError(f"{name} applies to images; {data.name} is a table", name)
    chosen: dict = {}
    if table:
        defaults = dict(
            layers=TABLE_LAYERS,
            width=table_width(rows),
            thresholds=TABLE_THRESHOLDS,
            steps=table_steps(rows, cfg.batch_size),
            estimator="ste",
            lr_schedule="cosine",
            connections="learned",
        )
        if rows > tau_search.SEARCH_ROWS:
            defaults["tau"] = tau_search.DEFAULT  # else left to tau_search.search, which trains
    else:
        defaults = IMAGE_DEFAULTS
    for name, value in defaults.items():
        if getattr(cfg, name) is None:
            chosen[name] = value
    lines: list[str] = []
    if cfg.widths is None and "width" in chosen:
        # The last layer feeds GroupSum, which splits it evenly among the classes.
        layers: int = chosen["layers"] if cfg.layers is None else cfg.layers
        width: int = chosen["width"]
        last = max(data.classes, width - width % data.classes)
        if last != width:
            chosen.update(widths=(width,) * (layers - 1) + (last,))
            lines.append(f"last layer: {last} gates instead of {width}, a multiple of the {data.classes} classes")
    resolved = cfg.replace(**chosen)
    if table and chosen:
        lines.insert(0, _table_line(data, resolved, rows, chosen))
    return resolved, lines


def _table_line(data: Dataset, cfg: TrainConfig, rows: int, chosen: dict) -> str:
    names = data.names
    categorical = len(names.categorical) if names is not None else 0
    one_hot = sum(len(c) for _, c in names.categorical) if names is not None else 0
    numeric = data.features - one_hot
    columns = numeric + categorical
    widths = cfg.layer_widths
    if len(set(widths)) == 1:
        shape = f"{len(widths)} layers x {widths[0]:,} gates of {cfg.arity} inputs"
    else:
        shape = f"{len(widths)} layers ({' + '.join(f'{w:,}' for w in widths)} gates of {cfg.arity} inputs)"
    method = "supervised" if cfg.threshold_method == "auto" else cfg.threshold_method
    parts = [
        shape,
        f"{cfg.thresholds} thresholds per numeric column ({method})" if numeric else "no numeric column",
        f"{cfg.connections} wiring" + (f" ({cfg.candidates} candidates)" if cfg.connections == "learned" else ""),
        f"estimator {cfg.estimator}, {cfg.init} init",
        f"{cfg.steps:,} steps of {cfg.batch_size} rows, {cfg.lr_schedule} learning rate",
        f"tau {cfg.tau:g}" if cfg.tau is not None else "tau searched",
    ]
    given = [n for n in FROM_THE_DATA if n not in chosen and not (n == "tau" and cfg.tau is None)]
    tail = f" (given: {', '.join(given)})" if given else ""
    return (
        f"table of {rows:,} training rows, {columns} columns ({numeric} numeric, {categorical} categorical), "
        f"{data.classes} classes -> " + ", ".join(parts) + f"{tail}; every flag overrides"
    )
