"""The seed paper's claims, measured on this machine (benchmarks, not tests). Results: docs/results.md.

    python bench/training_claims.py CLAIM [--quick] [--out DIR]

CLAIM: params | timing | convergence | depth | gradients | mnist | all. --quick runs each in under two
minutes on 2 cores (smaller nets, fewer steps); without it the sizes follow the issue (hours for some).
PNG plots and a JSON of the figures go to --out (default bench/results/).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as nnf

from lgn.training import encoding
from lgn.training.data import load_dataset
from lgn.training.layers import LogicLayer, LogicNet
from lgn.training.trainer import TrainConfig, train


def plot(path: Path, title: str, xlabel: str, ylabel: str, series: dict, logy: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def claim_params(args) -> dict:
    """Parameters and Adam state per 2-input gate."""
    out = {}
    for parametrization in ("op", "iwp"):
        layer = LogicLayer(100, 1000, parametrization=parametrization)
        params = layer.weight.numel() / layer.out_features
        out[parametrization] = {
            "params_per_gate": params,
            "adam_state_per_gate": 2 * params,
            "bytes_per_gate_fp32_with_adam": 4 * 3 * params,
        }
    out["ratio"] = out["op"]["params_per_gate"] / out["iwp"]["params_per_gate"]
    print(
        f"params per 2-input gate: OP {out['op']['params_per_gate']:.0f}, IWP {out['iwp']['params_per_gate']:.0f} "
        f"-> {out['ratio']:.1f}x smaller model and optimizer state"
    )
    return out


def _step_times(model: LogicNet, batch: int, repeats: int) -> tuple[float, float]:
    x = (torch.rand(batch, model.config["in_features"]) > 0.5).float()
    y = torch.randint(0, model.config["classes"], (batch,))
    forward = backward = 0.0
    for i in range(repeats + 2):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss = nnf.cross_entropy(model(x), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if i >= 2:  # the first two are warm-up
            forward += t1 - t0
            backward += t2 - t1
    return forward / repeats, backward / repeats


def claim_timing(args) -> dict:
    """Forward and backward time per step, OP vs IWP, same deep net, batch 1 and 100 (CPU), for both
    implementations: the torch reference and the operators (vectorised C++ for 2-input gates)."""
    layers, width = (20, 2000) if args.quick else (20, 8000)
    repeats = 5 if args.quick else 10
    out = {"layers": layers, "width": width, "threads": torch.get_num_threads()}
    for implementation in ("torch", "kernels"):
        for batch in (1, 100):
            row = {}
            for parametrization in ("op", "iwp"):
                torch.manual_seed(0)
                model = LogicNet(784, 10, layers, width, 2, parametrization, implementation=implementation)
                row[parametrization] = dict(zip(("forward_s", "backward_s"), _step_times(model, batch, repeats)))
            row["forward_ratio_op_over_iwp"] = row["op"]["forward_s"] / row["iwp"]["forward_s"]
            row["backward_ratio_op_over_iwp"] = row["op"]["backward_s"] / row["iwp"]["backward_s"]
            out[f"{implementation}_batch_{batch}"] = row
            op, iwp = row["op"], row["iwp"]
            print(
                f"{implementation}: {layers} x {width}, batch {batch}: "
                f"forward OP {op['forward_s'] * 1e3:.1f} ms, IWP {iwp['forward_s'] * 1e3:.1f} ms "
                f"({row['forward_ratio_op_over_iwp']:.2f}x); backward OP {op['backward_s'] * 1e3:.1f} ms, "
                f"IWP {iwp['backward_s'] * 1e3:.1f} ms ({row['backward_ratio_op_over_iwp']:.2f}x)"
            )
    for batch in (1, 100):
        torch_row, fast_row = out[f"torch_batch_{batch}"]["iwp"], out[f"kernels_batch_{batch}"]["iwp"]
        total = (torch_row["forward_s"] + torch_row["backward_s"]) / (fast_row["forward_s"] + fast_row["backward_s"])
        print(f"IWP step, batch {batch}: the operators are {total:.2f}x faster than the torch reference")
    return out


def _curve(cfg: TrainConfig) -> tuple[list[int], list[float]]:
    result = train(cfg)
    steps = [r["step"] for r in result.history]
    running = list(np.maximum.accumulate([r["test_acc_discrete"] for r in result.history]))
    return steps, running


def claim_convergence(args) -> dict:
    """Steps to reach OP's best discretized test accuracy: IWP-RI vs OP-RI and OP-gaussian."""
    layers, width, steps, every = (12, 200, 600, 100) if args.quick else (12, 4000, 20000, 500)
    common = dict(
        dataset="mnist",
        layers=layers,
        width=width,
        steps=steps,
        eval_every=every,
        tau=10.0,
        progress=False,
        eval_samples=2000 if args.quick else None,
    )
    runs = {
        "IWP residual": TrainConfig(
            parametrization="iwp", init="residual", **common, out=str(args.out / "conv_iwp.safetensors")
        ),
        "OP residual": TrainConfig(
            parametrization="op", init="residual", **common, out=str(args.out / "conv_op_ri.safetensors")
        ),
        "OP gaussian": TrainConfig(
            parametrization="op", init="gaussian", **common, out=str(args.out / "conv_op_g.safetensors")
        ),
    }
    curves = {name: _curve(cfg) for name, cfg in runs.items()}
    op_best = max(max(curves["OP residual"][1]), max(curves["OP gaussian"][1]))

    def first_reaching(name: str) -> int | None:
        steps_, accs = curves[name]
        return next((s for s, a in zip(steps_, accs) if a >= op_best), None)

    op_steps = min(s for s in (first_reaching("OP residual"), first_reaching("OP gaussian")) if s is not None)
    iwp_steps = first_reaching("IWP residual")
    ratio = op_steps / iwp_steps if iwp_steps else None
    plot(
        args.out / "convergence.png",
        f"MNIST, {layers} x {width}: running max of discretized test accuracy",
        "step",
        "accuracy",
        {k: v for k, v in curves.items()},
    )
    print(
        f"OP's best discretized accuracy {op_best:.4f} first reached at step {op_steps} (OP) and "
        f"{iwp_steps} (IWP-RI): {ratio if ratio is None else round(ratio, 2)}x fewer steps for IWP"
    )
    return {
        "layers": layers,
        "width": width,
        "steps": steps,
        "op_best": op_best,
        "op_steps": op_steps,
        "iwp_steps": iwp_steps,
        "ratio": ratio,
        "curves": curves,
    }


def claim_depth(args) -> dict:
    """Discretized test accuracy vs depth, OP vs IWP (both residual init)."""
    depths = [4, 8, 16, 32]
    width, steps = (200, 200) if args.quick else (2000, 5000)
    out = {"width": width, "steps": steps}
    series = {}
    for parametrization in ("op", "iwp"):
        accs = []
        for depth in depths:
            cfg = TrainConfig(
                dataset="mnist",
                parametrization=parametrization,
                layers=depth,
                width=width,
                steps=steps,
                eval_every=steps,
                progress=False,
                eval_samples=2000 if args.quick else None,
                out=str(args.out / f"depth_{parametrization}_{depth}.safetensors"),
            )
            accs.append(train(cfg).best_discrete)
            print(f"{parametrization} depth {depth}: {accs[-1]:.4f}")
        series[parametrization.upper()] = (depths, accs)
        out[parametrization] = dict(zip(map(str, depths), accs))
    plot(
        args.out / "depth.png",
        f"MNIST, width {width}, {steps} steps: accuracy vs depth",
        "layers",
        "discretized test accuracy",
        series,
    )
    return out


def claim_gradients(args) -> dict:
    """Mean gradient norm per layer at initialization, 40 layers."""
    width = 200 if args.quick else 2000
    data = load_dataset("mnist")
    enc = encoding.encoder_from_thresholds(encoding.fit_thresholds(data.x_train, 1, "uniform", (0, 255)))
    x = torch.as_tensor(encoding.encode(enc, data.x_train[:100]), dtype=torch.float32)
    y = torch.as_tensor(data.y_train[:100])
    series, out = {}, {"width": width, "layers": 40}
    for parametrization in ("op", "iwp"):
        for init in ("gaussian", "residual"):
            torch.manual_seed(0)
            model = LogicNet(784, 10, 40, width, 2, parametrization, init=init).double()
            nnf.cross_entropy(model(x.double()), y).backward()
            norms = [float(layer.weight.grad.norm() / layer.weight.grad.numel() ** 0.5) for layer in model.layers]
            label = f"{parametrization.upper()} {init}"
            series[label] = (list(range(1, 41)), [max(n, 1e-300) for n in norms])
            out[label] = norms
            print(f"{label}: layer 1 {norms[0]:.2e}, layer 20 {norms[19]:.2e}, layer 40 {norms[39]:.2e}")
    plot(
        args.out / "gradients.png",
        "40 layers at initialization: RMS gradient per layer",
        "layer",
        "RMS gradient of the layer's parameters",
        series,
        logy=True,
    )
    return out


def claim_mnist(args) -> dict:
    """MNIST discretized accuracy with at most 48k 2-input gates, and arity 4/6 at the same parameter budget."""
    steps = 300 if args.quick else 60000
    width2 = 1600 if args.quick else 8000  # divisible by 16 * 10: the arity-6 run keeps the budget
    runs = {f"IWP arity 2, 6 x {width2}": dict(arity=2, width=width2)}
    # Same parameter budget: 4 corners per 2-input gate = 16 per 4-input gate = 64 per 6-input gate.
    runs[f"IWP arity 4, 6 x {width2 // 4}"] = dict(arity=4, width=width2 // 4)
    runs[f"IWP arity 6, 6 x {width2 // 16}"] = dict(arity=6, width=width2 // 16)
    out = {}
    for name, extra in runs.items():
        start = time.perf_counter()
        cfg = TrainConfig(
            dataset="mnist",
            layers=6,
            steps=steps,
            eval_every=max(steps // 10, 1),
            tau=10.0,
            progress=False,
            out=str(args.out / f"mnist_{extra['arity']}.safetensors"),
            **extra,
        )
        result = train(cfg)
        out[name] = {
            "best_discrete": result.best_discrete,
            "seconds": time.perf_counter() - start,
            "steps": steps,
        }
        print(
            f"{name}: best discretized test accuracy {result.best_discrete:.4f} after {steps} steps "
            f"({out[name]['seconds'] / 60:.1f} min on this machine)"
        )
    return out


CLAIMS = {
    "params": claim_params,
    "timing": claim_timing,
    "convergence": claim_convergence,
    "depth": claim_depth,
    "gradients": claim_gradients,
    "mnist": claim_mnist,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("claim", choices=[*CLAIMS, "all"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = list(CLAIMS) if args.claim == "all" else [args.claim]
    for name in names:
        start = time.perf_counter()
        figures = CLAIMS[name](args)
        figures["seconds"] = time.perf_counter() - start
        figures["quick"] = args.quick
        (args.out / f"{name}{'_quick' if args.quick else ''}.json").write_text(json.dumps(figures, indent=1))
        print(f"[{name}] {figures['seconds']:.0f} s")


if __name__ == "__main__":
    main()
