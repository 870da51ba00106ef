"""The inference benchmark behind ``lgn bench`` and ``bench/c_backend.py``: samples per second of the compiled
C library (every ISA on one core, the best on every core), the numpy evaluator and a difflogic-style C
baseline, measured side by side in one run.

Every figure runs end to end from sample-major uint8 input bits to classes: packing, the gate network,
GroupSum and argmax; the "from packed bits" rows start from input already in the library's block layout
(``predict_packed``), which skips the transpose. "one core" = one thread.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from lgn import ceiling
from lgn.compiler import c_build, c_program, c_tune, evaluate
from lgn.compiler.errors import LgnError
from lgn.compiler.ir import FIRST_INPUT, GateGraph
from lgn.compiler.verify import Answers, Comparison, compare, evaluator_answers

from .difflogic_style import BaselineNet


def _must_agree(what: str, comparison: Comparison) -> None:
    """A benchmark of a wrong implementation is worthless: stop."""
    if not comparison.ok:
        raise LgnError(f"{what} disagrees with the evaluator: {comparison.summary()}")


def rate(predict, x: np.ndarray, repeats: int = 3) -> float:
    """Best-of-``repeats`` samples per second."""
    return alternating_rates([predict], x, repeats)[0]


def alternating_rates(predicts: list, x: np.ndarray, rounds: int = 7) -> list[float]:
    """Best-of-``rounds`` samples per second of each of ``predicts`` on ``x``, the calls taking turns, so
    that a slow moment of a shared machine slows all of them alike: their ratios are what this measures."""
    for predict in predicts:
        predict(x[:256])
    best = [float("inf")] * len(predicts)
    for _ in range(rounds):
        for k, predict in enumerate(predicts):
            start = time.perf_counter()
            predict(x)
            best[k] = min(best[k], time.perf_counter() - start)
    return [len(x) / seconds for seconds in best]


def _packed_rate(net, packed: np.ndarray, samples: int, repeats: int = 7) -> float:
    """Samples per second of ``predict_packed`` (the input already in the block layout: no transpose); best
    of 7, as one call takes about a millisecond and a shared machine's hiccups are as long."""
    net.predict_packed(packed[:1], min(samples, net.lanes))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        net.predict_packed(packed, samples)
        best = min(best, time.perf_counter() - start)
    return samples / best


def streaming_floor_graph(graph: GateGraph) -> GateGraph:
    """``graph``'s encoder and inputs with no network: one input per class as its output. Its C library reads,
    thresholds and packs the same raw features and does next to nothing else: the pixel-streaming floor."""
    n = graph.n_classes
    outputs = [FIRST_INPUT + c % max(graph.n_inputs, 1) for c in range(n)]
    return GateGraph.build(graph.n_inputs, [], [], outputs, class_offsets=list(range(n + 1)), encoder=graph.encoder)


def _c_rows(graph: GateGraph, nets: dict, x: np.ndarray, expected: Answers, pixels: np.ndarray | None) -> list:
    """One thread: each (ISA, shape) from 0/1 bytes, from packed bits and (with an encoder) from raw uint8
    features; every path first checked against the evaluator (``expected``: its answers on ``x[:2000]``)."""
    pixel_check = None
    if pixels is not None:
        pixel_check = pixels, evaluator_answers(graph, evaluate.encode(graph, pixels[:2000]), with_outputs=False)
    rows = []
    for (isa, shape), net in nets.items():
        what = f"lgn C, {isa}, {shape}, 1 thread"
        _must_agree(what, compare(expected, Answers(net.scores(x[:2000]), net.predict(x[:2000]))))
        rows.append((f"{what}, from 0/1 bytes", rate(net.predict, x), isa))
        packed = c_build.pack_bits(x, net.lanes)
        _must_agree(f"{what} packed", compare(expected, Answers(None, net.predict_packed(packed, len(x))[:2000])))
        rows.append((f"{what}, from packed bits", _packed_rate(net, packed, len(x)), isa))
        if pixel_check is not None:
            raw, answers = pixel_check
            _must_agree(f"{what} pixels", compare(answers, Answers(None, net.predict_features(raw[:2000]))))
            rows.append((f"{what}, from uint8 pixels", rate(net.predict_features, raw), isa))
    return rows


def _print_table(graph: GateGraph, rows: list[tuple], base_rate: float | None, ceilings: dict, shape: str) -> None:
    """The rows, and for one-thread C rows the sample-gate evaluations per cycle and the fraction of the core's
    ceiling at the memory level the model's live value vectors fit in (lgn.ceiling)."""
    print(f"\n{'implementation':64s} {'samples/s':>12s} {'vs baseline':>12s} {'gate-evals/s':>13s} {'per cycle':>10s}"
          f" {'of ceiling':>12s}")  # fmt: skip
    clock = max(c.clock_hz for c in ceilings.values())  # one core: a busy machine only lowers a measurement
    # the value vectors the kernels keep (c_plan)
    slots = c_program.plan_program(graph, shape).n_slots
    for name, r, isa in rows:
        ratio = f"{r / base_rate:10.1f}x" if base_rate else "-"
        evals = r * graph.n_gates
        cycle, share = "-", "-"
        if isa is not None:
            c = ceilings[isa]
            level, top = c.matching(slots * c.lanes // 8)
            cycle, share = f"{evals / clock:.0f}", f"{100 * evals / top:.0f}% of {level}"
        print(f"{name:64s} {r / 1e6:9.3f} M {ratio:>12s} {evals / 1e9:11.2f} G {cycle:>10s} {share:>12s}")
    print(
        f"\nceiling of this core (lgn.ceiling; clock {clock / 1e9:.2f} GHz from dependent additions), sample-gate "
        "evaluations per cycle from registers / L1 / L2 (values read at random: a model with locality can beat it)"
    )
    for isa, c in ceilings.items():
        print(f"  {isa:8s} " + " / ".join(f"{v / clock:.0f}" for v in (c.registers, c.l1, c.l2)))


def inference_benchmark(graph: GateGraph, samples: int = 50_000, baseline: bool = True, seed: int = 0) -> list[tuple]:
    """Print and return the table: lgn C (every ISA on one core, in the code shape ``lgn compile`` ships and
    the table shape, from 0/1 bytes, packed bits and raw uint8 features; the best ISA on all cores), the
    pixel-streaming floor, the numpy evaluator, and the difflogic-style baseline, with ratios to the baseline
    and compile times."""
    cache = Path(tempfile.mkdtemp(prefix="lgn-bench-"))  # cold builds: compile times are real
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(samples, graph.n_inputs), dtype=np.uint8)
    pixels = None if graph.encoder is None else rng.integers(0, 256, (samples, graph.encoder.n_features), np.uint8)
    print(
        f"net: {graph.n_inputs} inputs, {graph.n_gates:,} gates (arity {graph.arity}), {graph.n_classes} "
        f"classes; {samples:,} random samples; {os.cpu_count()} cores"
    )
    # What lgn compile ships (--isa auto: every candidate ISA and shape built and timed together), then every
    # candidate again in this benchmark's own rounds, and portable C's table shape beside them.
    start = time.perf_counter()
    choice = c_tune.fastest(graph, cache_dir=cache)
    tune_seconds = time.perf_counter() - start
    best_isa, shipped = choice.isa, choice.shape
    isas, shapes = c_tune.candidates(graph)
    pairs = [(i, s) for i in c_build.host_isas() for s in shapes if i in isas or s == "table"]
    start = time.perf_counter()
    nets = {pair: c_build.compile_c(graph, isa=pair[0], shape=pair[1], threads=1, cache_dir=cache) for pair in pairs}
    build_seconds = time.perf_counter() - start
    expected = evaluator_answers(graph, x[:2000], with_outputs=False)
    rows = _c_rows(graph, nets, x, expected, pixels)
    auto_line = _auto_line(choice, nets, x, pixels)
    net = nets[best_isa, shipped]
    floor_line = ""
    if pixels is not None:
        # The floor and the shipped code from the same pixels, taking turns: their ratio is the figure that counts.
        floor = c_build.compile_c(streaming_floor_graph(graph), isa=best_isa, threads=1, cache_dir=cache)
        model_rate, floor_rate = alternating_rates([net.predict_features, floor.predict_features], pixels)
        rows.append((f"pixel-streaming floor ({best_isa}): encoder + packing only", floor_rate, None))
        floor_line = (
            f"\nfrom uint8 pixels, {best_isa} {shipped} against the floor, one thread, 7 alternating rounds: "
            f"{model_rate / 1e6:.3f} M against {floor_rate / 1e6:.3f} M samples/s, "
            f"{100 * model_rate / floor_rate:.0f}% of the floor"
        )
    net.threads = os.cpu_count() or 1
    rows.append((f"lgn C, {best_isa}, {shipped}, {net.threads} threads, from 0/1 bytes", rate(net.predict, x), None))
    rows.append(("numpy reference evaluator", rate(lambda v: evaluate.predict(graph, v), x[:10_000], 1), None))
    base_rate, baseline_line = None, "baseline skipped"
    if baseline and graph.arity == 2:
        start = time.perf_counter()
        base = BaselineNet(graph)
        compile_base = time.perf_counter() - start
        _must_agree("the baseline", compare(expected, Answers(expected.scores, base.predict(x[:2000]))))
        base_rate = rate(base.predict, x[:20_000])
        rows.append(("baseline: difflogic-style C, gcc -O1, 1 thread", base_rate, None))
        base.close()
        baseline_line = f"baseline build (gcc -O1): {compile_base:.1f} s"
    ceilings = {isa: ceiling.measure(isa, cache) for isa in c_build.host_isas()}
    _print_table(graph, rows, base_rate, ceilings, shipped)
    if floor_line:
        print(floor_line)
    print(auto_line)
    tuned = len(choice.rates) or 1
    print(
        f"\nlgn build + load: --isa auto's {tuned} candidates built and timed in {tune_seconds:.1f} s, the other "
        f"{len(pairs) - tuned} in {build_seconds:.1f} s; {baseline_line}"
    )
    return rows


def _auto_line(choice, nets: dict, x: np.ndarray, pixels: np.ndarray | None) -> str:
    """What ``--isa auto`` chose and what every candidate gave in its calibration, and the candidates timed
    again here from the same input, taking turns: the chosen pair against the best of them."""
    candidates = [tuple(pair.split(" ")) for pair in choice.rates] or [(choice.isa, choice.shape)]
    feed = x if pixels is None else pixels
    calls = [nets[pair].predict if pixels is None else nets[pair].predict_features for pair in candidates]
    rates = dict(zip(candidates, alternating_rates(calls, feed)))
    best = max(rates, key=rates.__getitem__)
    chosen = rates[choice.isa, choice.shape]
    seen = ", ".join(f"{i} {s} {r / 1e6:.2f} M" for (i, s), r in sorted(rates.items(), key=lambda kv: -kv[1]))
    return (
        f"\n--isa auto chose {choice.said()}\nthe candidates again, one thread, 7 alternating rounds from "
        f"{'uint8 features' if pixels is not None else '0/1 bytes'}: {seen} samples/s; auto's pair is "
        f"{100 * chosen / rates[best]:.1f}% of the best ({best[0]} {best[1]})"
    )
