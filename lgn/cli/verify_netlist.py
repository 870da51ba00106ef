"""``lgn verify G --backend netlist --target ice40|ecp5|gowin``: what a bitstream holds against the evaluator.

The streaming top is synthesized with the very yosys commands ``lgn synth --target T --pnr`` runs (so what is
simulated is what nextpnr places), written back as Verilog, and simulated on yosys' own models of the family's
cells, fed the raw features byte by byte: a dataset's test split (``--dataset``), else random bytes. Every
sample's class is compared with the evaluator's; each mismatch is counted and the first few are printed.
"""

from __future__ import annotations

import time

import numpy as np

from lgn.compiler import netlist_sim, toolchain
from lgn.compiler.errors import LgnError, ParameterError
from lgn.compiler.hdl_sim import SimResult
from lgn.compiler.ir import GateGraph

from .common import EXIT_CHECK_FAILED, EXIT_OK

FAMILY_NAMES = {"ice40": "iCE40", "ecp5": "ECP5", "gowin": "Gowin"}
SHOWN_MISMATCHES = 5  # the first few, each with its sample; the count covers all


def netlist_samples(graph: GateGraph, args) -> tuple[np.ndarray, str]:
    """The raw feature bytes to stream (the ``--dataset`` test split, else ``--vectors`` random rows of
    ``--seed``), cut to ``--limit``; and how they were chosen. A dataset whose features are not whole numbers
    0..255 is refused: the streaming top takes bytes."""
    if graph.encoder is None:
        raise LgnError("backend netlist streams raw features: the graph needs encoder thresholds")
    if args.dataset:
        from lgn.training.data import encoded_test_split

        raw, _, _ = encoded_test_split(graph.encoder, args.dataset, args.data_dir, limit=args.limit)
        if raw.dtype != np.uint8:  # whole numbers 0..255 (digits' 0..16) stream as bytes, exactly
            if not (np.all(raw == np.round(raw)) and raw.min() >= 0 and raw.max() <= 255):
                raise LgnError(f"dataset {args.dataset} has features that are not bytes: the streaming top takes bytes")
            raw = raw.astype(np.uint8)
        how = f"{args.dataset} test split"
    else:
        rng = np.random.default_rng(args.seed)
        raw = rng.integers(0, 256, (args.vectors, graph.encoder.n_features)).astype(np.uint8)
        how = f"{args.vectors} random feature vectors, seed {args.seed}"
    return (raw[: args.limit] if args.limit is not None else raw), how


def check_options(args) -> None:
    """Refuse, before any tool runs, a core or part the ``--target`` family does not take."""
    if args.core == "engine" and args.target == "gowin":
        raise ParameterError("core engine is the LUT engine of the iCE40 UP5K and ECP5; --target gowin takes luts or "
                             "gates", "core")  # fmt: skip
    if args.device is not None:
        netlist_sim.synth_commands(args.target, "lgn_top", args.device)  # an unknown part, one line


def describe_mismatches(result: SimResult, shown: int = SHOWN_MISMATCHES) -> list[str]:
    """One line for each of the first ``shown`` mismatching samples (its index, the evaluator's class and the
    netlist's), and one for how many more there are."""
    comparison = result.comparison
    expected, got = comparison.expected, comparison.got
    lines = []
    for index in comparison.mismatching[:shown].tolist():
        theirs = got.classes[index] if got is not None and index < len(got.classes) else "none"
        ours = expected.classes[index] if expected is not None else "?"
        lines.append(f"mismatch: sample {index}: evaluator class {ours}, netlist class {theirs}")
    if comparison.mismatches > shown:
        lines.append(f"... and {comparison.mismatches - shown} more mismatching samples")
    if not result.latency_ok:
        lines.append(f"latency: outputs came after {result.latency} cycles, the design documents a different latency")
    return lines


def verify_netlist(graph: GateGraph, shipped: GateGraph, args) -> int:
    """``shipped`` (what lgn synth builds from ``graph``) through yosys and the ``--sim`` simulator against the
    evaluator on ``graph``; prints the tools, the times, the mismatches, and ``N vectors, M mismatches`` last.
    The exit code: 1 on any mismatch."""
    from lgn.compiler import ice40_sim

    check_options(args)
    toolchain.use(args.toolchain)
    raw, how = netlist_samples(graph, args)
    family = FAMILY_NAMES[args.target]
    print(f"tools: {toolchain.find('yosys').describe()} (--toolchain {toolchain.current()}); {args.sim}", flush=True)
    start = time.perf_counter()
    if args.core == "engine":  # iCE40: the program first, then every sample; ECP5: the program is in the netlist
        if args.target == "ecp5":
            from lgn.compiler import ecp5_engine

            result = ecp5_engine.simulate_engine(shipped, raw, sim=args.sim, reference=graph)
        else:
            result = ice40_sim.simulate_engine(shipped, raw, sim=args.sim, reference=graph)
        seconds = time.perf_counter() - start - result.sim_seconds
        times, what = f"synthesis and build {seconds:.1f} s", f"the LUT engine's synthesized {family} netlist"
    else:
        say = lambda line: print(f"  {line}", flush=True)  # noqa: E731
        run = netlist_sim.simulate(shipped, raw, args.target, args.sim, args.core, args.pipeline, device=args.device,
                                   reference=graph, progress=say)  # fmt: skip
        result = run.result
        times = f"synthesis {run.synth_seconds:.1f} s, build {result.build_seconds:.1f} s"
        what = f"synthesized {family} netlist ({args.core} core)"
    wall = time.perf_counter() - start
    print(f"{what} on {args.sim}, fed byte by byte, vs evaluator ({how}): {times}, "
          f"simulation {result.sim_seconds:.1f} s, {wall:.1f} s in all")  # fmt: skip
    for line in describe_mismatches(result):
        print(line)
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_CHECK_FAILED
