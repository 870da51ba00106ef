"""``lgn demo``: the main job (train, compile to C and Verilog, verify, report). Its training options are
``lgn train``'s; their defaults are the demo's network, :data:`lgn.training.config.DEMO`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lgn.compiler.errors import ParameterError
from lgn.training.config import DEMO, TrainConfig

from .common import integer, number
from .options import add_config_options, config_from_args, note_given_options

# The datasets whose training images the demo shifts by default (DEMO.shift): 28 x 28 grey images. On 8 x 8
# digits a one-pixel shift cost 3 points (94.2% against 97.2%); tables have no pixels to shift.
SHIFTED_BY_DEFAULT = ("mnist", "fashion-mnist")


# --arch conv: a small conv logic net (training/conv_stack.py) in place of the demo's FC network: two blocks
# of depth-3 trees with OR pooling, then two layers of 2-input gates, soft gates (straight-through gates
# plateaued at 91% on MNIST in an FC net of 12,000 gates); about 3 minutes of training on 2 cores.
CONV_DEMO = dict(conv="16:3:3,32:3:3", thresholds=3, arity=2, widths=(2000, 2000), connections="random",
                 estimator="soft", init="residual", tau=10.0, lr=0.02, lr_schedule="cosine", steps=1200,
                 batch_size=100)  # fmt: skip
ARCHES = ("fc", "conv")

# The demo's network is made for images. On a table (--data) every option the user does not give takes
# lgn train's default instead, which the table's size and columns decide (lgn.training.sizing).
IMAGE_NETWORK = tuple(
    f.name
    for f in dataclasses.fields(TrainConfig)
    if getattr(DEMO, f.name) != f.default and f.name not in ("shift", "out", "metrics", "progress")
)


def resolve_defaults(args) -> None:
    """The options the user did not give: ``--shift`` DEMO's for MNIST and Fashion-MNIST, 0 for anything
    else; the network's settings DEMO's for built-in datasets, lgn train's (chosen from the data) for a
    ``--data`` table."""
    if args.shift is None:
        args.shift = DEMO.shift if args.dataset in SHIFTED_BY_DEFAULT and args.data is None else 0
    if args.arch == "conv":
        if args.data is not None:
            raise ParameterError("arch conv reads images: not a --data table", "arch", "data")
        for name, value in CONV_DEMO.items():  # what the user gave stays theirs
            if name not in args.given_options:
                setattr(args, name, value)
    defaults = TrainConfig.__dataclass_fields__
    for name in IMAGE_NETWORK:
        if getattr(args, name) is None:
            setattr(args, name, getattr(DEMO, name) if args.data is None else defaults[name].default)


def cmd_demo(args) -> int:
    resolve_defaults(args)
    cfg = config_from_args(TrainConfig, args, progress=not args.quiet)
    if args.icarus_sample < 1:
        raise ParameterError(f"icarus_sample must be at least 1, got {args.icarus_sample}", "icarus_sample")
    if not args.synth_timeout > 0:
        raise ParameterError(f"synth_timeout must be positive, got {args.synth_timeout}", "synth_timeout")
    from lgn.demo import DemoSettings, run_demo

    settings = DemoSettings(Path(args.out), args.icarus_sample, not args.no_synth, args.synth_timeout)
    return run_demo(cfg, settings)


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def register(sub) -> None:
    p = sub.add_parser("demo", help="the main job: train, compile to C and Verilog, verify, report")
    note_given_options(p)
    p.add_argument(
        "--arch", choices=ARCHES, default="fc", help="the network: the demo's fully connected one, or a small "
        "conv logic net (" + " ".join(f"--{k.replace('_', '-')} {_shown(v)}" for k, v in CONV_DEMO.items()) + ")"
    )  # fmt: skip
    later = {"shift": f"{DEMO.shift} for MNIST and Fashion-MNIST, 0 otherwise"}
    for name in IMAGE_NETWORK:
        value = getattr(DEMO, name)
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        later[name] = f"{shown} for built-in datasets; for --data, lgn train's, chosen from the table"
    add_config_options(p, TrainConfig, skip=("out", "metrics", "progress"), defaults=DEMO, decided_later=later)
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--icarus-sample", type=integer(1, 10**7), default=300, help="test samples simulated on Icarus")
    p.add_argument("--no-synth", action="store_true", help="skip the yosys synthesis")
    p.add_argument(
        "--synth-timeout",
        type=number(0.0, 1e7, low_open=True),
        default=600.0,
        help="seconds the yosys synthesis may take (default: 600)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)
