"""Gate kernel benchmark (not a test): forward and backward time per step, OP vs IWP on the same network,
our CUDA kernels vs the pure-torch reference, on one GPU, in one run. See docs/benchmarks.md.

    python bench/kernels.py              # 20 and 80 layers of 8k, 32k, 128k gates; batch 1, 25, 100, 1000
    python bench/kernels.py --quick      # 20 layers of 8k and 32k gates; a couple of minutes
    python bench/kernels.py --device cpu           # the CPU operators (vectorised C++ for 2-input gates)
                                                   # vs the torch reference, 6 x 8,000 gates, batch 1 and 100
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

from lgn.training.layers import LogicNet

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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"device": gpu, "torch": torch.__version__, "rows": rows, "packed": packed}, indent=1)
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
