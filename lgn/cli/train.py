"""``lgn train`` and ``lgn export``: the commands that need PyTorch (imported only when one runs, so the
compiler's commands never load torch)."""

from __future__ import annotations

import dataclasses
import os
import sys

from lgn.compiler import outputs
from lgn.training.config import TrainConfig

from .common import EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK, add_force, add_max_memory, load_any, save_graph
from .options import GIVEN, add_config_options, config_from_args, note_given_options


def cmd_train(args) -> int:
    state = _resume_state(args)
    # validates every value before torch is even imported (a resumed run's: when its file is read)
    cfg = config_from_args(TrainConfig, args) if state is None else _resumed_config(state, args)
    _check_tables(cfg, args.max_memory)  # and the table files' headers: a bomb is refused before torch loads
    import torch

    from lgn.training.trainer import TrainingFailed, setup_distributed, train

    distributed = setup_distributed(cfg.device)
    try:
        result = train(cfg, say=lambda line: print(line, file=sys.stderr, flush=True), force=args.force, resumed=state)
    except TrainingFailed as exc:
        print(f"lgn: error: {exc}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    if result.interrupted:
        if result.checkpoint_step is None:
            print(
                f"interrupted before the first evaluation: no checkpoint of this run was written ({cfg.out} unchanged)"
            )
        else:
            print(f"interrupted; {cfg.out} holds this run's best checkpoint so far (step {result.checkpoint_step})")
        if result.resume_step is not None:
            print(f"lgn train --resume {cfg.out}.resume continues the run after step {result.resume_step}")
        return EXIT_INTERRUPTED
    if int(os.environ.get("RANK", "0")) == 0 and result.final is not None:
        final = result.final
        chosen = f"chosen on the {final['selection']} split at step {final['step']}"
        if final["selection"] == "validation":
            chosen += f" (validation {result.best_discrete:.4f})"
        steps = result.config.steps if result.config is not None else cfg.steps
        print(
            f"trained {steps} steps in {result.seconds:.1f} s; test accuracy of the checkpoint {chosen}: "
            f"discretized {final['test_acc_discrete']:.4f}, relaxed {final['test_acc']:.4f} (majority class "
            f"{final['majority_acc']:.4f}); wrote {cfg.out}"
        )
        for warning in final["warnings"]:
            print(f"lgn: warning: {warning}", file=sys.stderr)
        if final["warnings"] and cfg.strict:
            print("lgn: error: --strict: the model is not good enough (its checkpoint is written)", file=sys.stderr)
            return EXIT_CHECK_FAILED
    return EXIT_OK


def _resume_state(args):
    """The state ``--resume`` names, read and checked (None without ``--resume``): it loads torch."""
    if args.resume is None:
        return None
    from lgn.training import resume

    return resume.read_state(args.resume)


def _resumed_config(state, args) -> TrainConfig:
    """The resumed run's own configuration; the settings given on the command line are checked against it."""
    from lgn.training import resume

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {name: getattr(args, name) for name in getattr(args, GIVEN) if name in names}
    return resume.resumed_config(state, given)


def _check_tables(cfg: TrainConfig, max_memory: int | None) -> None:
    from lgn.training import memory, tables

    memory.set_limit(max_memory)
    for path, labels in ((cfg.data, cfg.labels), (cfg.test, cfg.test_labels)):
        if path is not None:
            tables.check_file(path, labels)


def cmd_export(args) -> int:
    outputs.check_file(args.out, "out", outputs.GRAPH, {"the model": args.model}, args.force, parents=False)
    graph = load_any(args.model)
    save_graph(graph, args.out, text=False)
    print(f"wrote {args.out}: {graph.n_inputs} inputs, {graph.n_gates} gates, {graph.n_classes} classes")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("train", help="train a logic gate network (OP or IWP) on an offline dataset")
    note_given_options(p)  # --resume refuses a given setting that contradicts the run's, even its default
    add_config_options(p, TrainConfig)
    p.add_argument(
        "--resume", metavar="OUT.resume",
        help="continue the interrupted run whose state this is (written beside its --out checkpoint after every "
        "evaluation and every 5 minutes), with its own settings, to the same model as a run never interrupted; "
        "data options may name its data again, other settings given must equal the run's",
    )  # fmt: skip
    add_force(p, "--out or --metrics", "a checkpoint or metrics")
    add_max_memory(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="export a trained model's discretized network as an IR graph")
    p.add_argument("model")
    p.add_argument("--out", required=True)
    add_force(p, "--out", "a graph")
    p.set_defaults(func=cmd_export)
