"""Gate kernel benchmark (not a test): forward and backward time per step, OP vs IWP on the same network,
our CUDA kernels vs the pure-torch reference, on one GPU, in one run. See docs/benchmarks.md.

    python bench/kernels.py              # 20 and 80 layers of 8k, 32k, 128k gates; batch 1, 25, 100, 1000
    python bench/kernels.py --quick      # 20 layers of 8k and 32k gates; a couple of minutes
    python bench/kernels.py --device cpu           # the CPU operators (vectorised C++, every arity, candidate
                                                   # mixtures) vs the torch reference, 6 x 8,000 gates, batch
                                                   # 1 and 100; then whole training steps of compact nets:
                                                   # arity 6 vs arity 2 at the same parameter count, learned
                                                   # wiring (K = 8) vs fixed wiring; a conv net's step per
                                                   # gate evaluation against an FC net's of as many gates
    python bench/kernels.py --quick --device cpu   # the same on tiny sizes: a smoke run of this script

A step = forward of the relaxed network (GroupSum included) and, separately timed, backward of a
cross-entropy loss, CUDA-event timed, median of the repeats. Also the discretized network on packed
bits (the packed kernel) against the reference per-sample evaluator. Configurations that run out of GPU
memory are reported as "oom", never dropped silently. Prints one table; writes JSON next to it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as nnf

from lgn import kernels
from lgn.kernels import ops
from lgn.kernels.cpu import reuse_freed_memory
from lgn.training.config import TrainConfig
from lgn.training.layers import LogicNet
from lgn.training.trainer import _optimizer

IN_FEATURES, CLASSES = 784, 10


class Timer:
    """Milliseconds of a callable, and its result: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device):
        self.device = device

    def __call__(self, fn):
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            result = fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end), result
        began = time.perf_counter()
        result = fn()
        return 1000 * (time.perf_counter() - began), result


def step_times(net: LogicNet, batch: int, device: torch.device, repeats: int) -> tuple[float, float]:
    """Median forward and backward milliseconds for one training step."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (batch, IN_FEATURES), generator=gen).float().to(device)
    y = torch.randint(0, CLASSES, (batch,), generator=gen).to(device)
    timer = Timer(device)
    forwards, backwards = [], []
    for i in range(repeats + 2):  # two warm-up steps (the first builds the extension and caches)
        net.zero_grad(set_to_none=True)
        forward_ms, loss = timer(lambda: nnf.cross_entropy(net(x), y))
        backward_ms, _ = timer(loss.backward)
        if i >= 2:
            forwards.append(forward_ms)
            backwards.append(backward_ms)
    return statistics.median(forwards), statistics.median(backwards)


def discrete_rate(net: LogicNet, batch: int, device: torch.device, repeats: int) -> float:
    """Samples per second of the discretized network (GroupSum popcounts included)."""
    bits = torch.randint(0, 2, (batch, IN_FEATURES), generator=torch.Generator().manual_seed(1)).to(device)
    timer = Timer(device)
    times = [timer(lambda: net.discrete_scores(bits))[0] for _ in range(repeats + 1)][1:]
    return batch / (statistics.median(times) / 1000)


def measure(layers: int, width: int, batch: int, device: torch.device, repeats: int) -> dict:
    row = {"layers": layers, "width": width, "batch": batch}
    for parametrization in ("op", "iwp"):
        for implementation in ("kernels", "torch"):
            key = f"{parametrization}_{implementation}"
            try:
                net = LogicNet(IN_FEATURES, CLASSES, layers, width, 2, parametrization, implementation=implementation)
                net.to(device)
                row[f"{key}_fwd_ms"], row[f"{key}_bwd_ms"] = step_times(net, batch, device, repeats)
            except torch.OutOfMemoryError:
                row[f"{key}_fwd_ms"] = row[f"{key}_bwd_ms"] = "oom"
            finally:
                net = None
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return row


def training_step(net: LogicNet, estimator: str, batch: int):
    """A callable running one whole training step on the CPU: forward, backward and the Adam update."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (batch, IN_FEATURES), generator=gen).float()
    y = torch.randint(0, CLASSES, (batch,), generator=gen)
    optimizer = _optimizer(TrainConfig(), net)
    net.set_estimator(estimator.split(",")[0], estimator.split(",")[-1], 1.0)

    def step() -> None:
        loss = nnf.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def interleaved_ms(steps: dict, rounds: int) -> dict:
    """Median milliseconds of each callable, timed in rounds that run every one once (after two warm-up
    rounds), so that a shared machine's drift touches every case alike."""
    times: dict = {name: [] for name in steps}
    for i in range(rounds + 2):
        for name, step in steps.items():
            began = time.perf_counter()
            step()
            if i >= 2:
                times[name].append(1000 * (time.perf_counter() - began))
    return {name: statistics.median(t) for name, t in times.items()}


def compact_rows(quick: bool, repeats: int, batch: int = 128) -> list[dict]:
    """Side by side, one run: (1) arity 2 vs arity 6 at the same parameter count (4 vs 64 per gate, so 16x
    fewer arity-6 gates), (2) fixed wiring vs learned wiring with 8 candidates per slot (soft and hard).
    Every case's step runs once per round, ``3 * repeats`` rounds."""
    width2 = 800 if quick else 8000
    width6 = width2 // 16
    cases = [
        ("arity 2, fixed", dict(widths=[width2, width2], arity=2), "soft"),
        ("arity 6, fixed, same parameters", dict(widths=[width6, width6], arity=6), "soft"),
        ("arity 2, learned K=8, soft", dict(widths=[width2, width2], arity=2, candidates=[8, 8]), "soft"),
        ("arity 2, learned K=8, ste", dict(widths=[width2, width2], arity=2, candidates=[8, 8]), "soft,ste"),
    ]
    rows, steps = [], {}
    for name, shape, estimator in cases:
        row = {"case": name, "estimator": estimator, "params": 0}
        for implementation in ("auto", "torch"):
            net = LogicNet(IN_FEATURES, CLASSES, implementation=implementation, **shape)
            row["params"] = sum(layer.weight.numel() for layer in net.layers)
            steps[(name, implementation)] = training_step(net, estimator, batch)
        rows.append(row)
    fast = interleaved_ms({key: step for key, step in steps.items() if key[1] == "auto"}, 3 * repeats)
    print("  measured the C++ operators", file=sys.stderr, flush=True)
    reference = interleaved_ms({key: step for key, step in steps.items() if key[1] == "torch"}, repeats)
    for row in rows:
        row["auto_ms"], row["torch_ms"] = fast[(row["case"], "auto")], reference[(row["case"], "torch")]
    base = rows[0]["auto_ms"]
    print(f"\nwhole training steps on the CPU, batch {batch}, {torch.get_num_threads()} threads (median ms):")
    print(f"{'case':36s} {'gate params':>11s} {'C++ ops':>9s} {'torch':>9s} {'vs arity 2, fixed':>18s}")
    for r in rows:
        print(
            f"{r['case']:36s} {r['params']:>11,d} {r['auto_ms']:9.1f} {r['torch_ms']:9.1f} {r['auto_ms'] / base:17.2f}x"
        )
    return rows


def own_inputs_row(quick: bool, repeats: int, batch: int = 128) -> dict:
    """The gate backward of a learned-wiring layer (two-input gates over their own slots, fused in one pass)
    against the general path on the same numbers (the same wiring over one more, unread, feature), alternating,
    median of ``5 * repeats`` calls each. Both give the same bits (tests/test_kernels.py)."""
    gates = 800 if quick else 8000
    gen = torch.Generator().manual_seed(0)
    wiring = torch.arange(2 * gates).view(gates, 2)
    x = torch.rand(2 * gates, batch, generator=gen)
    corners, grad_y = torch.rand(gates, 4, generator=gen), torch.randn(gates, batch, generator=gen)
    cases = {
        "fused": (x, kernels.prepare_wiring(wiring, 2 * gates, x.device)),
        "general": (torch.cat([x, torch.zeros(1, batch)]), kernels.prepare_wiring(wiring, 2 * gates + 1, x.device)),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(5 * repeats + 1):
        for name, (inputs, prepared) in cases.items():
            began = time.perf_counter()
            ops.gate_backward(
                grad_y, inputs, prepared.wiring, corners, prepared.consumer_offsets, prepared.consumer_entries, True
            )
            times[name].append(1000 * (time.perf_counter() - began))
    row = {name: statistics.median(t[1:]) for name, t in times.items()}  # the first call of each warms up
    print(
        f"\nlearned-wiring gate backward, {gates:,} two-input gates over their own slots, batch {batch}: fused "
        f"{row['fused']:.2f} ms, general path {row['general']:.2f} ms ({row['general'] / row['fused']:.2f}x)"
    )
    return {"gates": gates, "batch": batch, "fused_ms": row["fused"], "general_ms": row["general"]}


def conv_rows(quick: bool, repeats: int, batch: int = 64) -> dict:
    """Issue 31's yardstick, side by side in one run: a whole training step of a conv logic net (trees of depth 3
    over 3 x 3 windows at every position of a 28 x 28 image, OR pooling, then a layer of 1,000 gates) against a
    fixed-wiring FC net with as many gates per sample, the step time per gate evaluation of each."""
    from lgn.training.conv_spec import block_gates, parse_conv

    channels = 4 if quick else 16
    blocks, image = parse_conv(f"{channels}:3:3", 2), [1, 28, 28, 1]
    head = 100 if quick else 1000
    conv_gates = block_gates(image, blocks) + head
    nets = {
        "conv": LogicNet(784, CLASSES, widths=[head], conv=blocks, image=image),
        "fc": LogicNet(784, CLASSES, widths=[conv_gates - head, head]),
    }
    gates = {"conv": conv_gates, "fc": sum(layer.out_features for layer in nets["fc"].layers)}
    steps = {name: training_step(net, "soft", batch) for name, net in nets.items()}
    times = interleaved_ms(steps, 3 * repeats)
    per_gate = {name: times[name] / gates[name] for name in nets}
    print(
        f"\nconv vs FC, whole training step on the CPU, batch {batch}: conv {conv_gates:,} gate evaluations per "
        f"sample in {times['conv']:.1f} ms, FC {gates['fc']:,} in {times['fc']:.1f} ms; per gate evaluation conv "
        f"costs {per_gate['conv'] / per_gate['fc']:.2f}x FC"
    )
    return {"batch": batch, "gates": gates, "ms": times, "conv_per_fc_per_gate": per_gate["conv"] / per_gate["fc"]}


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if isinstance(a, float) and isinstance(b, float) and b > 0 else "-"


def ms(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict]) -> None:
    header = (
        "layers  width    batch | OP fwd   IWP fwd  OP bwd   IWP bwd  (ms, kernels) | bwd OP/IWP fwd OP/IWP"
        " | IWP torch/kernels fwd bwd"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['layers']:>6} {r['width']:>6} {r['batch']:>8} | "
            f"{ms(r['op_kernels_fwd_ms']):>8} {ms(r['iwp_kernels_fwd_ms']):>8} "
            f"{ms(r['op_kernels_bwd_ms']):>8} {ms(r['iwp_kernels_bwd_ms']):>8}               | "
            f"{ratio(r['op_kernels_bwd_ms'], r['iwp_kernels_bwd_ms']):>10} "
            f"{ratio(r['op_kernels_fwd_ms'], r['iwp_kernels_fwd_ms']):>10} | "
            f"{ratio(r['iwp_torch_fwd_ms'], r['iwp_kernels_fwd_ms']):>8} "
            f"{ratio(r['iwp_torch_bwd_ms'], r['iwp_kernels_bwd_ms']):>8}"
        )
    print("reference (torch) OP/IWP backward at each row:", end=" ")
    print(", ".join(ratio(r["op_torch_bwd_ms"], r["iwp_torch_bwd_ms"]) for r in rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "kernels.json")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "error: no CUDA GPU visible to PyTorch; run on a GPU machine (or --device cpu for a smoke run)",
            file=sys.stderr,
        )
        return 1
    device = torch.device(args.device)
    if device.type == "cpu":
        reuse_freed_memory()  # every CPU row measures what the trainer runs
        grid = [(4, 200, b) for b in (1, 25)] if args.quick else [(6, 8000, b) for b in (1, 100)]
        repeats = 2 if args.quick else 5
    elif args.quick:
        grid = [(20, w, b) for w in (8000, 32000) for b in (1, 25, 100, 1000)]
        repeats = args.repeats
    else:
        grid = [(depth, w, b) for depth in (20, 80) for w in (8000, 32000, 128000) for b in (1, 25, 100, 1000)]
        repeats = args.repeats
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {gpu}; torch {torch.__version__}; repeats {repeats}, median")
    rows = []
    for layers, width, batch in grid:
        rows.append(measure(layers, width, batch, device, repeats))
        print(f"  measured {layers} x {width}, batch {batch}", file=sys.stderr, flush=True)
    print_table(rows)
    packed = []
    for width in sorted({w for _, w, _ in grid}):
        net = LogicNet(IN_FEATURES, CLASSES, grid[0][0], width, 2, implementation="kernels").to(device)
        batch = 65536 if device.type == "cuda" else 512
        fast = discrete_rate(net, batch, device, repeats)
        slow = discrete_rate(net.set_implementation("torch"), min(batch, 4096), device, repeats)
        packed.append({"layers": grid[0][0], "width": width, "batch": batch, "packed_per_s": fast, "torch_per_s": slow})
        print(
            f"discretized {grid[0][0]} x {width}: packed kernel {fast / 1e6:.2f} M samples/s, "
            f"reference {slow / 1e6:.3f} M samples/s ({fast / slow:.1f}x)"
        )
    compact = compact_rows(args.quick, repeats) if device.type == "cpu" else []
    own_inputs = own_inputs_row(args.quick, repeats) if device.type == "cpu" else None
    conv = conv_rows(args.quick, repeats) if device.type == "cpu" else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"device": gpu, "torch": torch.__version__, "rows": rows, "packed": packed, "compact": compact,
              "own_inputs_backward": own_inputs, "conv_vs_fc": conv}  # fmt: skip
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
