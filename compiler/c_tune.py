"""``--isa auto``: the C library's vector ISA and code shape, chosen together by measuring them on this machine.

Every candidate pair is built (the vector ISAs this CPU runs, or portable C where it runs none; with shape
``auto``, the straight-line and the table shape) and timed on one thread from the model's own input (uint8
features through the encoder, else 0/1 bytes) in the same interleaved rounds, so a busy moment of a shared
machine slows every candidate alike; the fastest pair wins. Neither the widest ISA nor the rule that picked
the shape by gate count (``c_emit.choose_shape``) always wins: on a 6 x 8,000 random net a Zen 4 ran avx512
table code at 1.51 M samples/s and avx512 straight-line code at 3.07, where a Zen 3 ran the table faster than
straight code (2.21 against 1.83).

The choice is recorded beside the libraries, keyed by the model, the candidates, the CPU (flags and model
name) and the compiler, so it is measured once per model and machine. Straight-line code costs gcc about
1.2-2 ms a gate (a 48,000-gate net: 100 s for one ISA on a busy machine): past
:data:`STRAIGHT_MEASURE_MAX_GATES` gates (half that for nets mostly of wider LUTs) only the rule's shape (table)
is a candidate.
"""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import c_build, c_emit
from .build_cache import cache_root, cpu_model, cpu_signature, digest, write_atomic
from .ir import GateGraph
from .lowering import two_input_form

CALIBRATION_SAMPLES = 8192  # per candidate and round at least: 16 blocks of the widest vectors
CALIBRATION_MAX_SAMPLES = 65_536  # more for fast models, so that a call lasts CALIBRATION_CALL_SECONDS
CALIBRATION_CALL_SECONDS = 0.005  # a scheduler's time slice: a shorter call is all noise on a busy machine
CALIBRATION_ROUNDS = 9
CALIBRATION_BYTES = 64 << 20  # the most input the calibration holds (a table of 100,000 columns: 671 rows)
STRAIGHT_MEASURE_MAX_GATES = 64_000  # about 1-2 minutes of gcc per ISA at the limit, once per model and machine


@dataclasses.dataclass(frozen=True)
class Choice:
    """The pair chosen, every candidate's samples/s by ``"isa shape"`` (empty where there was one
    candidate and nothing was measured), and whether the choice was read from the cache."""

    isa: str
    shape: str
    rates: dict[str, float]
    cached: bool

    def said(self) -> str:
        """What was chosen and what the others gave, in one line."""
        if not self.rates:
            return f"{self.isa} {self.shape} (the only candidate: nothing measured)"
        seen = ", ".join(f"{pair} {rate / 1e6:.2f} M" for pair, rate in sorted(self.rates.items(), key=_by_rate))
        cached = "; cached" if self.cached else ""
        return f"{self.isa} {self.shape}, the fastest here ({seen} samples/s, one thread{cached})"


def _by_rate(item: tuple[str, float]) -> float:
    return -item[1]


def candidates(graph: GateGraph, isa: str = "auto", shape: str = "auto") -> tuple[list[str], list[str]]:
    """(the ISAs, the code shapes) that ``isa`` and ``shape`` leave open for ``graph`` on this machine."""
    if isa == "auto":
        isas = [i for i in c_build.host_isas() if i != "portable"] or ["portable"]
    else:
        isas = [c_build.resolve_isa(isa)]
    if shape != "auto" or not straight_worth_building(graph):
        return isas, [c_emit.choose_shape(graph, shape)]
    return isas, ["straight", "table"]


def straight_worth_building(graph: GateGraph) -> bool:
    """Whether gcc builds ``graph``'s straight-line code in reasonable time (see the module's docstring):
    the gate-count limit, halved for nets mostly of LUTs of more than two inputs (several operations each)."""
    if graph.n_gates == 0:  # nothing for the shapes to differ in (the encoder and GroupSum are the same code)
        return False
    mostly_luts = 2 * int((two_input_form(graph)[0] > 2).sum()) >= graph.n_gates
    return graph.n_gates <= (STRAIGHT_MEASURE_MAX_GATES // 2 if mostly_luts else STRAIGHT_MEASURE_MAX_GATES)


def fastest(graph: GateGraph, isa: str = "auto", shape: str = "auto", cache_dir: Path | None = None) -> Choice:
    """The (ISA, shape) pair among :func:`candidates` that runs ``graph`` fastest here (see the module)."""
    isas, shapes = candidates(graph, isa, shape)
    pairs = [(i, s) for i in isas for s in shapes]
    if len(pairs) == 1:
        return Choice(pairs[0][0], pairs[0][1], {}, False)
    root = cache_dir or cache_root()
    compiler = c_build._compiler_identity(c_build.find_compiler())
    key = digest([c_emit.model_hash(graph), *isas, "/", *shapes, cpu_signature(), cpu_model(), compiler])
    path = root / "isa" / f"{key[:32]}.json"
    try:
        record = json.loads(path.read_text())
        if (record.get("isa"), record.get("shape")) in pairs:
            return Choice(record["isa"], record["shape"], dict(record.get("rates", {})), True)
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # not measured yet, or a damaged record: measure again
    rates = _measure(graph, pairs, cache_dir)
    best = max(rates, key=rates.__getitem__)
    isa, shape = best.split(" ")
    chosen = Choice(isa, shape, rates=rates, cached=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"isa": chosen.isa, "shape": chosen.shape, "rates": rates}).encode())
    except OSError:
        pass  # an unwritable cache only costs measuring again next time
    return chosen


def _measure(graph: GateGraph, pairs: list[tuple[str, str]], cache_dir: Path | None) -> dict[str, float]:
    """Samples/s of each pair: built side by side, then best of CALIBRATION_ROUNDS interleaved rounds."""

    def build(pair: tuple[str, str]):
        return c_build.compile_c(graph, isa=pair[0], shape=pair[1], threads=1, cache_dir=cache_dir)

    with ThreadPoolExecutor(len(pairs)) as pool:  # the compilers run side by side (straight code: seconds each)
        nets = dict(zip(pairs, pool.map(build, pairs)))
    rng = np.random.default_rng(0)
    encoded = graph.encoder is not None
    width, top = (graph.encoder.n_features, 256) if graph.encoder is not None else (graph.n_inputs, 2)
    most = min(CALIBRATION_MAX_SAMPLES, max(512, CALIBRATION_BYTES // max(width, 1)))  # wide inputs: fewer rows
    x = rng.integers(0, top, (most, width), dtype=np.uint8)
    least = min(CALIBRATION_SAMPLES, most)
    calls = {pair: net.predict_features if encoded else net.predict for pair, net in nets.items()}
    first = {}
    for pair, call in calls.items():
        call(x[:64])  # warm: first touch of code and workspace
        start = time.perf_counter()
        call(x[:least])
        first[pair] = time.perf_counter() - start
    scale = CALIBRATION_CALL_SECONDS / max(min(first.values()), 1e-9)
    n = int(min(most, max(least, least * scale)))
    best = dict.fromkeys(pairs, float("inf"))
    for _ in range(CALIBRATION_ROUNDS):  # interleaved, so a busy moment slows every candidate alike
        for pair, call in calls.items():
            start = time.perf_counter()
            call(x[:n])
            best[pair] = min(best[pair], time.perf_counter() - start)
    return {f"{i} {s}": n / seconds for (i, s), seconds in best.items()}
