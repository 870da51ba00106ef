"""``lgn demo``: the main job end to end. Train an IWP network on an offline dataset, export and
simplify it, compile it to a C library and run it on the whole test split, emit Verilog and simulate it
(Verilator on the whole test split, Icarus on a sample), synthesize it with yosys, and write one folder
with the artifacts, report.md and PNG plots. Exits non-zero if any two implementations disagree."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from compiler import c_build, c_emit, evaluate, formats, hdl_sim, hdl_tools, pipeline, verilog_emit
from compiler.errors import LgnError

from . import encoding
from .data import load_dataset
from .export import to_graph
from .trainer import TrainConfig, train


def _plot_curves(path: Path, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ax.plot(steps, [r["test_acc"] for r in history], marker="o", label="relaxed (continuous)")
    ax.plot(steps, [r["test_acc_discrete"] for r in history], marker="o", label="discretized")
    ax.set(title="Test accuracy during training", xlabel="step", ylabel="accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_gates(path: Path, before, after) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depth = max(before.depth, after.depth, 1)
    levels = np.arange(1, depth + 1)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    width = 0.4
    ax.bar(levels - width / 2, np.bincount(before.levels, minlength=depth + 1)[1:], width, label="exported")
    ax.bar(levels + width / 2, np.bincount(after.levels, minlength=depth + 1)[1:], width, label="simplified")
    ax.set(title="Gates per layer (logic level)", xlabel="level", ylabel="gates")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _rate(fn, x: np.ndarray, repeats: int = 3) -> float:
    fn(x[:64])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def run_demo(args) -> int:
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LgnError(f"{out}: cannot create the output folder: {exc.strerror or exc}") from None

    def say(message: str) -> None:
        print(f"[demo] {message}", flush=True)

    # 1. Train.
    cfg = TrainConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        parametrization=args.parametrization,
        arity=args.arity,
        layers=args.layers,
        width=args.width,
        steps=args.steps,
        eval_every=max(1, args.steps // 6),
        tau=args.tau,
        seed=args.seed,
        out=str(out / "model.safetensors"),
        progress=not args.quiet,
    )
    say(
        f"training {cfg.parametrization.upper()} {cfg.layers} x {cfg.width} (arity {cfg.arity}) on {cfg.dataset} "
        f"for {cfg.steps} steps"
    )
    result = train(cfg)
    if result.interrupted:
        say("interrupted")
        return 130
    _plot_curves(out / "training_curves.png", result.history)
    from .checkpoint import load_checkpoint

    model, encoder, info = load_checkpoint(cfg.out)  # the best discretized checkpoint
    data = load_dataset(cfg.dataset, cfg.data_dir)
    raw, labels = data.x_test, data.y_test
    bits = encoding.encode(encoder, raw)

    # 2. Export and simplify.
    say("exporting and simplifying")
    graph = to_graph(model, encoder)
    formats.save_npz(graph, out / "graph.npz")
    start = time.perf_counter()
    simple = pipeline.simplify(graph)
    t_simplify = time.perf_counter() - start
    formats.save_npz(simple, out / "graph.simplified.npz")
    _plot_gates(out / "gates_per_layer.png", graph, simple)
    pass_share = pipeline.pass_through_count(graph) / max(1, graph.n_gates)

    # 3. Accuracies and agreement: torch (discretized), the IR before and after simplification.
    torch_scores = model.discrete_scores(torch.as_tensor(bits)).numpy()
    with torch.no_grad():
        relaxed = model(torch.as_tensor(bits, dtype=torch.float32)).argmax(-1).numpy()
    ir_scores = evaluate.scores(simple, bits)
    ir_pred = evaluate.argmax_lowest(ir_scores)
    ir_before = evaluate.scores(graph, bits)
    checks = {
        "discretized torch vs IR (exported)": int((torch_scores != ir_before).any(1).sum()),
        "IR exported vs IR simplified": int((ir_before != ir_scores).any(1).sum()),
    }

    # 4. C.
    say("compiling the C library and running it on the test split")
    (out / "c").mkdir(exist_ok=True)
    isa = c_build.resolve_isa("native")
    for name, text in c_emit.library_files(simple, isa=isa).items():
        (out / "c" / name).write_text(text)
    start = time.perf_counter()
    net = c_build.compile_c(simple, isa=isa, threads=1)
    t_compile = time.perf_counter() - start
    features_u8 = raw.dtype == np.uint8
    c_scores = net.scores_features(raw) if features_u8 else net.scores(bits)
    c_pred = net.predict_features(raw) if features_u8 else net.predict(bits)
    checks["IR vs C (scores and class)"] = int(((c_scores != ir_scores).any(1) | (c_pred != ir_pred)).sum())
    feed = raw if features_u8 else bits
    call = net.predict_features if features_u8 else net.predict
    big = np.concatenate([feed] * max(1, 50_000 // len(feed)))
    rate_one = _rate(call, big)
    net.threads = os.cpu_count() or 1
    rate_all = _rate(call, big)

    # 5. Verilog.
    say("emitting Verilog and simulating it (Verilator on the whole test split, Icarus on a sample)")
    (out / "verilog").mkdir(exist_ok=True)
    raw_hdl = raw if features_u8 else None
    for name, text in verilog_emit.package_files(simple, raw_input=features_u8).items():
        (out / "verilog" / name).write_text(text)
    build_root = out / "verilog" / "sim"
    sims = {}
    sims["verilator"] = hdl_sim.simulate(simple, bits, sim="verilator", raw=raw_hdl, build_root=build_root)
    sample = min(args.icarus_sample, len(bits))
    sims["icarus"] = hdl_sim.simulate(
        simple,
        bits[:sample],
        sim="icarus",
        raw=raw_hdl[:sample] if raw_hdl is not None else None,
        build_root=build_root,
    )
    checks["IR vs Verilog on Verilator"] = sims["verilator"].mismatches
    checks[f"IR vs Verilog on Icarus ({sample} samples)"] = sims["icarus"].mismatches
    verilog_acc = (
        float(np.mean(sims["verilator"].classes == labels))
        if len(sims["verilator"].classes) == len(labels)
        else float("nan")
    )

    # 6. yosys.
    parts = []
    if not args.no_synth:
        say("synthesizing with yosys (LUT6, generic)")
        parts = hdl_tools.synth_report(simple, target="generic")

    # 7. Report.
    acc = {
        "relaxed (continuous) network, torch": float(np.mean(relaxed == labels)),
        "discretized network, torch": float(np.mean(torch_scores.argmax(1) == labels)),
        "IR evaluator (simplified graph)": float(np.mean(ir_pred == labels)),
        "compiled C": float(np.mean(c_pred == labels)),
        "Verilog on Verilator": verilog_acc,
    }
    lines = [
        f"# lgn demo: {cfg.parametrization.upper()} on {cfg.dataset}",
        "",
        f"{cfg.layers} x {cfg.width} gates of {cfg.arity} inputs, {cfg.steps} steps in {result.seconds / 60:.1f} min; "
        f"the best discretized checkpoint is from step {info.get('step')}. Test split: {len(labels)} samples.",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lines += [f"| accuracy: {k} | {v:.4f} |" for k, v in acc.items()]
    lines += [f"| mismatches: {k} | {v} |" for k, v in checks.items()]
    lines += [
        f"| gates exported | {graph.n_gates} ({pass_share:.1%} pass-throughs) |",
        f"| gates after simplification (pass-throughs removed, as the literature counts) | {simple.n_gates} "
        f"(in {t_simplify:.2f} s) |",
        f"| C: build + load ({isa}) | {t_compile:.1f} s |",
        f"| C throughput, one core, {'uint8 pixels' if features_u8 else 'input bits'} to classes | "
        f"{rate_one / 1e6:.2f} M samples/s |",
        f"| C throughput, all {os.cpu_count()} cores | {rate_all / 1e6:.2f} M samples/s |",
        f"| Verilator: build, simulation | {sims['verilator'].build_seconds:.0f} s, "
        f"{sims['verilator'].sim_seconds:.0f} s |",
    ]
    lines += [f"| yosys LUT6 / FF: {p.name} | {p.luts} / {p.ffs} |" for p in parts]
    model_arg = f"{out}/model.safetensors"
    lines += [
        "",
        "Reproduce each figure:",
        "",
        f"- training: `lgn train --dataset {cfg.dataset} --parametrization {cfg.parametrization} --arity {cfg.arity} "
        f"--layers {cfg.layers} --width {cfg.width} --steps {cfg.steps} --seed {cfg.seed} --out {model_arg}`",
        f"- torch vs IR: `lgn verify {model_arg} --dataset {cfg.dataset}`",
        f"- C vs IR: `lgn verify {model_arg} --backend c --dataset {cfg.dataset}`",
        f"- Verilog vs IR: `lgn verify {model_arg} --backend verilog --sim verilator --dataset {cfg.dataset}`",
        f"- LUTs: `lgn synth {model_arg}`; gates: `lgn simplify {out}/graph.npz --out s.npz`",
        f"- throughput: `lgn bench {model_arg}`",
        "",
        "Plots: training_curves.png, gates_per_layer.png.",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    table_end = lines.index("", 4)
    print("\n".join(lines[4:table_end]))
    ok = all(v == 0 for v in checks.values())
    say(f"wrote {out}/report.md; {'every pair of implementations agrees' if ok else 'MISMATCHES FOUND'}")
    return 0 if ok else 1
