"""``lgn demo``: the main job end to end. Train a network on an offline dataset, export and simplify it,
compile it to a C library and run it on the whole test split, emit Verilog and simulate it (Verilator on
the whole test split, Icarus on a sample), synthesize it with yosys, and write one folder with the
artifacts, report.md and PNG plots. Exits non-zero if any two implementations disagree."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch

from lgn.compiler import c_build, c_emit, c_tune, formats, fpga, hardware, hdl_sim, hdl_tools, pipeline, verilog_emit
from lgn.compiler.errors import LgnError
from lgn.compiler.ir import GateGraph
from lgn.compiler.output_lock import OutputLock
from lgn.compiler.outputs import claim_folder
from lgn.compiler.verify import Comparison, verify_c, verify_c_features, verify_graphs
from lgn.training.checkpoint import load_checkpoint
from lgn.training.config import TrainConfig
from lgn.training.export import to_graph, verify_model
from lgn.training.tables import test_split
from lgn.training.trainer import train

from .benchmark import rate


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """What the demo does beyond training."""

    out: Path
    icarus_sample: int = 300
    synth: bool = True
    synth_timeout: float = 600.0


def _plot_curves(path: Path, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluations = [r for r in history if not r.get("final")]
    steps = [r["step"] for r in evaluations]
    split = evaluations[0]["split"] if evaluations else "validation"
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ax.plot(steps, [r["acc"] for r in evaluations], marker="o", label="relaxed (continuous)")
    ax.plot(steps, [r["acc_discrete"] for r in evaluations], marker="o", label="discretized")
    ax.set(title=f"Accuracy during training ({split} split)", xlabel="step", ylabel="accuracy")
    ax.grid(alpha=0.3)
    _legend_below(fig, ax)
    fig.savefig(path)
    plt.close(fig)


def _plot_gates(path: Path, before: GateGraph, after: GateGraph) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depth = max(before.depth, after.depth, 1)
    levels = np.arange(1, depth + 1)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    width = 0.4
    ax.bar(levels - width / 2, np.bincount(before.levels, minlength=depth + 1)[1:], width, label="exported")
    ax.bar(levels + width / 2, np.bincount(after.levels, minlength=depth + 1)[1:], width, label="simplified")
    ax.set(title="Gates per layer (logic level)", xlabel="level", ylabel="gates", xticks=levels)
    _legend_below(fig, ax)
    fig.savefig(path)
    plt.close(fig)


def _legend_below(fig, ax) -> None:
    """The legend under the axes, where it hides no data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


@dataclasses.dataclass
class _Report:
    """The figures of one demo run, in the order report.md lists them."""

    accuracy: dict[str, float] = dataclasses.field(default_factory=dict)
    checks: dict[str, Comparison] = dataclasses.field(default_factory=dict)
    figures: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        rows = [f"| accuracy: {k} | {v:.4f} |" for k, v in self.accuracy.items()]
        rows += [f"| mismatches: {k} | {v.mismatches} |" for k, v in self.checks.items()]
        return rows + [f"| {k} | {v} |" for k, v in self.figures]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks.values())


def _accuracy(classes: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(classes == labels)) if len(classes) == len(labels) else float("nan")


def _check_c(
    simple: GateGraph, raw: np.ndarray, bits: np.ndarray, labels, out: Path, report: _Report, unit: str
) -> None:
    say("compiling the C library and running it on the test split")
    start = time.perf_counter()
    choice = c_tune.fastest(simple)  # what lgn compile ships: the ISA and shape measured fastest here
    isa, shape = choice.isa, choice.shape
    net = c_build.compile_c(simple, isa=isa, shape=shape, threads=1)
    t_compile = time.perf_counter() - start
    (out / "c").mkdir(exist_ok=True)
    for name, text in c_emit.library_files(simple, isa=isa, shape=shape).files.items():
        (out / "c" / name).write_text(text)
    # Raw features through the library's encoder: uint8 pixels, or a table's float32 values.
    features = raw if raw.dtype == np.uint8 else raw.astype(np.float32)
    with_encoder = simple.encoder is not None
    check = verify_c_features(simple, net, features) if with_encoder else verify_c(simple, net, bits)
    report.checks["IR vs C (scores and class)"] = check
    assert check.got is not None
    report.accuracy["compiled C"] = _accuracy(check.got.classes, labels)
    feed = features if with_encoder else bits
    call = net.predict_features if with_encoder else net.predict
    big = np.concatenate([feed] * max(1, 50_000 // len(feed)))
    rate_one = rate(call, big)
    net.threads = os.cpu_count() or 1
    rate_all = rate(call, big)
    report.figures += [
        (
            f"C: build + load ({isa} {shape}"
            + (f", the fastest of {len(choice.rates)} ISA and shape pairs measured)" if choice.rates else ")"),
            f"{t_compile:.1f} s",
        ),
        (
            f"C throughput, one core, {_feed_name(feed) if with_encoder else 'input bits'} to classes",
            f"{rate_one / 1e6:.2f} M {unit}/s",
        ),
        (f"C throughput, all {os.cpu_count()} cores", f"{rate_all / 1e6:.2f} M {unit}/s"),
    ]


def _feed_name(features: np.ndarray) -> str:
    return "uint8 pixels" if features.dtype == np.uint8 else "float32 features"


def _check_verilog(simple: GateGraph, raw, bits, labels, out: Path, settings: DemoSettings, report: _Report) -> None:
    say("emitting Verilog and simulating it (Verilator on the whole test split, Icarus on a sample)")
    features_u8 = raw.dtype == np.uint8
    (out / "verilog").mkdir(exist_ok=True)
    raw_hdl = raw if features_u8 else None
    for name, text in verilog_emit.package_files(simple, raw_input=features_u8).files.items():
        (out / "verilog" / name).write_text(text)
    build_root = out / "verilog" / "sim"
    verilator = hdl_sim.simulate(simple, bits, sim="verilator", raw=raw_hdl, build_root=build_root)
    sample = min(settings.icarus_sample, len(bits))
    icarus = hdl_sim.simulate(
        simple,
        bits[:sample],
        sim="icarus",
        raw=raw_hdl[:sample] if raw_hdl is not None else None,
        build_root=build_root,
    )
    report.checks["IR vs Verilog on Verilator"] = verilator.comparison
    report.checks[f"IR vs Verilog on Icarus ({sample} samples)"] = icarus.comparison
    report.accuracy["Verilog on Verilator"] = _accuracy(verilator.classes, labels)
    report.figures.append(
        ("Verilator: build, simulation", f"{verilator.build_seconds:.0f} s, {verilator.sim_seconds:.0f} s")
    )


def _place_engine(simple: GateGraph, out: Path, report: _Report, unit: str) -> None:
    """The LUT engine placed and routed on an iCE40 UP5K, with its bitstream (seconds; skipped with the
    reason where nextpnr-ice40 or icepack is not installed)."""
    what = "iCE40 UP5K, LUT engine (`lgn synth --pnr --core engine`)"
    say("placing and routing the LUT engine on an iCE40 UP5K")
    try:
        result = fpga.place_and_route(simple, "up5k", out / "up5k", core="engine", timeout=600)
    except LgnError as exc:  # a missing tool, or a program larger than the SPRAM
        report.figures.append((what, f"not placed: {exc}"))
        return
    speed = "Fmax not reported"
    if result.fmax_mhz:
        speed = f"{result.fmax_mhz:.1f} MHz, {result.fmax_mhz * 1e6 / result.cycles_per_sample:,.0f} {unit}/s"
    cells = f"{result.logic_cells:,} of {result.logic_cells_available:,} logic cells"
    memory = f"{result.ram} block RAMs, {result.spram} SPRAMs"
    report.figures.append((what, f"{cells}, {memory}, {speed}; {result.bitstream} (its program: {result.program})"))


def _synthesize(simple: GateGraph, settings: DemoSettings, report: _Report, out: Path, unit: str) -> None:
    """LUT6 by part, two ways: our mapping of the lowered design (its LUT6 cells read, checked and counted by
    yosys, never re-mapped) and, for 2-input gates, yosys on the gate-level Verilog part by part. A network of k-input
    LUTs is skipped in the second (yosys elaborates each table lookup into a mux tree: minutes for a few
    thousand; `lgn synth` runs it)."""
    say(f"counting LUT6 (our mapping, checked and counted by yosys; at most {settings.synth_timeout:.0f} s)")
    start = time.perf_counter()
    sizes = hardware.part_sizes(simple, 6)
    try:
        whole, ours = fpga.synth_lut_native(simple, "xilinx", timeout=settings.synth_timeout)
    except hdl_tools.SynthTimeout as exc:
        say(f"synthesis stopped: {exc} (raise --synth-timeout, or run lgn synth)")
        report.figures.append(("yosys synthesis", f"stopped: {exc}"))
        return
    parts = " / ".join(f"{sizes[name]:,}" for name in sizes)
    report.figures.append((f"LUT6, our mapping: {' / '.join(sizes)}", parts))
    report.figures.append(
        ("LUT6, whole design, yosys reading our LUT-native cells", f"{whole.luts:,} (ours: {ours:,}) in "
         f"{time.perf_counter() - start:.0f} s")
    )  # fmt: skip
    _place_engine(simple, out, report, unit)
    if simple.arity > 2:
        report.figures.append(("yosys on the gate-level Verilog", "skipped for k-input LUTs (`lgn synth` runs it)"))
        return
    say(f"synthesizing the gate-level Verilog with yosys (LUT6, generic; at most {settings.synth_timeout:.0f} s)")
    try:
        parts_yosys = hdl_tools.synth_report(simple, target="generic", timeout=settings.synth_timeout, progress=say)
    except hdl_tools.SynthTimeout as exc:
        say(f"synthesis stopped: {exc}; the report has no yosys part counts (raise --synth-timeout, or run lgn synth)")
        report.figures.append(("yosys synthesis", f"stopped: {exc}"))
        return
    for part in parts_yosys:
        report.figures.append((f"yosys LUT6 / FF: {part.name}", f"{part.luts} / {part.ffs} (`{part.script}`)"))


def _shape(cfg: TrainConfig) -> str:
    widths = cfg.layer_widths
    fc = f"{len(widths)} x {widths[0]}" if len(set(widths)) == 1 else " + ".join(map(str, widths))
    return fc if cfg.conv is None else f"conv {cfg.conv} (OR pool {cfg.conv_pool}), then {fc}"


def _data_name(cfg: TrainConfig) -> str:
    return cfg.data if cfg.data is not None else cfg.dataset


def _test_file(cfg: TrainConfig, out: Path) -> str:
    """The file of the test rows: ``--test``, or the rows of ``--data`` held out for testing, written with their
    columns to ``out/test.csv`` so that every check can be rerun on exactly them."""
    if cfg.test is not None:
        return cfg.test
    import csv

    from lgn.training.tables import class_labels, read_table, test_rows

    assert cfg.data is not None
    table = read_table(cfg.data, cfg.labels)
    _, held = test_rows(class_labels(table, cfg.label or "y")[1], cfg)
    path = out / "test.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(table.names)
        writer.writerows(zip(*(column[held].tolist() for column in table.cells)))
    return str(path)


def _reproduce(cfg: TrainConfig, out: Path, test_file: str | None) -> list[str]:
    from lgn.cli.options import command_line

    model_arg = f"{out}/model.safetensors"
    training = f"- training: `{command_line('lgn train', cfg.replace(out=model_arg), skip=('progress', 'metrics'))}`"
    if cfg.data is not None:  # your own file: the test rows through every backend, and their predictions
        checks = [
            f"- the test rows through the evaluator and C: `lgn predict {model_arg} --data {test_file} --backend c`",
            f"- C vs IR, every test row: `lgn verify {model_arg} --data {test_file} --backend c`",
            f"- Verilog vs IR, every test row: `lgn verify {model_arg} --data {test_file} --backend verilog "
            "--sim verilator`",
        ]
    else:
        checks = [
            f"- torch vs IR: `lgn verify {model_arg} --dataset {cfg.dataset}`",
            f"- C vs IR: `lgn verify {model_arg} --backend c --dataset {cfg.dataset}`",
            f"- Verilog vs IR: `lgn verify {model_arg} --backend verilog --sim verilator --dataset {cfg.dataset}`",
        ]
    return [
        "",
        "Reproduce each figure:",
        "",
        training,
        *checks,
        f"- LUTs: `lgn synth {model_arg}`; gates: `lgn simplify {out}/graph.npz --out s.npz`",
        f"- throughput: `lgn bench {model_arg}`",
        "",
        "![Accuracy during training](training_curves.png)",
        "",
        "![Gates per layer](gates_per_layer.png)",
    ]


# Everything the demo writes in its folder (subfolders as a whole): reserved before training starts.
DEMO_FILES = (
    "model.safetensors", "model.safetensors.metrics.jsonl", "model.safetensors.lock", ".lgn-demo.lock",
    "training_curves.png", "test.csv", "graph.npz", "graph.simplified.npz", "gates_per_layer.png", "report.md",
    "c/", "verilog/", "up5k/",
)  # fmt: skip


def run_demo(cfg: TrainConfig, settings: DemoSettings) -> int:
    """Train per ``cfg`` (its ``out`` is replaced by the demo folder's model), then check every
    implementation against the evaluator and write the report. 0 when all agree, 1 otherwise.

    The folder follows lgn's output rule (:mod:`lgn.compiler.outputs`: new, empty or one lgn wrote, no input
    of the run and no file of the user's replaced), checked before training, and one demo writes it at a time
    (``.lgn-demo.lock``)."""
    inputs = {name: getattr(cfg, name) for name in ("data", "test", "labels", "test_labels")}
    folder = claim_folder(settings.out, "out", inputs)
    folder.reserve(DEMO_FILES)
    try:
        with OutputLock(settings.out, "out", say=say, lock=settings.out / ".lgn-demo.lock"):
            return _run_demo(cfg, settings)
    finally:
        folder.settle()


def _run_demo(cfg: TrainConfig, settings: DemoSettings) -> int:
    out = settings.out
    cfg = cfg.replace(out=str(out / "model.safetensors"), metrics=None)
    sizes = f"{_shape(cfg)} (arity {cfg.arity}) for {cfg.steps} steps" if cfg.resolved else "(sizes from the data)"
    say(f"training {cfg.parametrization.upper()} on {_data_name(cfg)} {sizes}")
    result = train(cfg, say=say)
    if result.interrupted or result.checkpoint_step is None:
        say("interrupted" if result.interrupted else "training wrote no checkpoint")
        return 130
    cfg = result.config or cfg
    warnings = result.final["warnings"] if result.final else []
    for warning in warnings:
        say(f"warning: {warning}")
    _plot_curves(out / "training_curves.png", result.history)
    model, encoder, info = load_checkpoint(cfg.out)  # the best discretized checkpoint
    raw, bits, labels = test_split(cfg, encoder)
    unit = "rows" if cfg.data is not None or encoder.n_features < 64 else "images"
    test_file = _test_file(cfg, out) if cfg.data is not None else None

    say("exporting and simplifying")
    graph = to_graph(model, encoder, info["names"])
    formats.save_npz(graph, out / "graph.npz")
    start = time.perf_counter()
    simple = pipeline.simplify(graph)
    t_simplify = time.perf_counter() - start
    formats.save_npz(simple, out / "graph.simplified.npz")
    _plot_gates(out / "gates_per_layer.png", graph, simple)
    pass_share = pipeline.pass_through_count(graph) / max(1, graph.n_gates)

    report = _Report()
    with torch.no_grad():
        relaxed = model(torch.as_tensor(bits, dtype=torch.float32)).argmax(-1).numpy()
    model_check = verify_model(model, graph, bits)
    simplify_check = verify_graphs(graph, simple, bits)
    assert model_check.got is not None and simplify_check.got is not None
    report.accuracy["relaxed (continuous) network, torch"] = _accuracy(relaxed, labels)
    report.accuracy["discretized network, torch"] = _accuracy(model_check.got.classes, labels)
    report.accuracy["IR evaluator (simplified graph)"] = _accuracy(simplify_check.got.classes, labels)
    report.checks["discretized torch vs IR (exported)"] = model_check
    report.checks["IR exported vs IR simplified"] = simplify_check
    _check_c(simple, raw, bits, labels, out, report, unit)
    _check_verilog(simple, raw, bits, labels, out, settings, report)
    report.figures[:0] = [
        ("gates exported", f"{graph.n_gates} ({pass_share:.1%} pass-throughs)"),
        (
            "gates after simplification (pass-throughs removed, as the literature counts)",
            f"{simple.n_gates} (in {t_simplify:.2f} s)",
        ),
    ]
    if settings.synth:
        _synthesize(simple, settings, report, out, unit)

    title = [
        f"# lgn demo: {cfg.parametrization.upper()} on {_data_name(cfg)}",
        "",
        f"{_shape(cfg)} gates of {cfg.arity} inputs, {cfg.steps} steps in {result.seconds / 60:.1f} min; "
        f"the best discretized checkpoint is from step {info.get('step')}. Test split: {len(labels)} {unit}"
        + (f" ({test_file})." if test_file else "."),
        "",
        *(f"**Warning:** {w}." for w in warnings),
        *([""] if warnings else []),
        "| figure | value |",
        "|---|---|",
    ]
    table = report.lines()
    (out / "report.md").write_text("\n".join(title + table + _reproduce(cfg, out, test_file)) + "\n")
    print("\n".join(title[4:] + table))
    say(f"wrote {out}/report.md; {'every pair of implementations agrees' if report.ok else 'MISMATCHES FOUND'}")
    return 0 if report.ok else 1
