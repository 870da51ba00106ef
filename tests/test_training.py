"""Training front end: layers, relaxation, gradients, discretization vs the IR, checkpoints, data, DDP."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

from lgn.cli import main  # noqa: E402
from lgn.compiler import evaluate, formats  # noqa: E402
from lgn.compiler.errors import ParameterError  # noqa: E402
from lgn.kernels import functional as F  # noqa: E402
from lgn.training import data as datasets  # noqa: E402
from lgn.training import encoding  # noqa: E402
from lgn.training.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from lgn.training.export import to_graph  # noqa: E402
from lgn.training.layers import LogicLayer, LogicNet  # noqa: E402
from lgn.training.trainer import TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARITIES = [1, 2, 3, 4, 5, 6]


def all_assignments(n: int) -> torch.Tensor:
    m = torch.arange(1 << n)
    return ((m[:, None] >> torch.arange(n)) & 1).to(torch.float64)


@pytest.mark.parametrize("arity", ARITIES)
def test_layer_shapes_and_wiring(arity):
    layer = LogicLayer(50, 40, arity=arity, seed=3)
    assert layer.weight.shape == (40, 1 << arity)
    assert layer.wiring.shape == (40, arity)
    if arity * 40 >= 50:  # every input used when there are enough slots
        assert set(layer.wiring.unique().tolist()) == set(range(50))
    if arity > 1:  # no gate reads the same input twice (the layer is wide enough to avoid it)
        ordered = layer.wiring.sort(dim=1).values
        assert not (ordered[:, 1:] == ordered[:, :-1]).any()
    assert "wiring" in layer.state_dict()
    assert layer(torch.rand(7, 50)).shape == (7, 40)
    op = LogicLayer(50, 40, arity=2, parametrization="op")
    assert op.weight.shape == (40, 16)


@pytest.mark.parametrize("arity", ARITIES)
@pytest.mark.parametrize("rho", ["sin01", "sigmoid"])
def test_relaxation_is_the_truth_table_at_binary_inputs(arity, rho):
    layer = LogicLayer(arity, 5, arity=arity, rho=rho, init="gaussian", seed=arity).double()
    with torch.no_grad():
        layer.wiring.copy_(torch.arange(arity).repeat(5, 1))  # gate reads inputs 0..n-1 in order
    x = all_assignments(arity)
    out = layer(x)  # [2^n, 5]
    assert torch.allclose(out, layer.corners().T, atol=1e-12)  # corner m at assignment m
    tables = layer.truth_tables()
    hard = F.hard_layer(x.long(), layer.wiring, tables)
    assert torch.equal(hard, (out > 0.5).long())


def test_op_relaxation_matches_the_gate_expectations():
    layer = LogicLayer(2, 16, arity=2, parametrization="op", init="gaussian").double()
    with torch.no_grad():
        layer.wiring.copy_(torch.tensor([[0, 1]]).repeat(16, 1))
    p, q = torch.rand(9, dtype=torch.float64), torch.rand(9, dtype=torch.float64)
    gates = [
        torch.zeros_like(p),
        p * q,
        p - p * q,
        p,
        q - p * q,
        q,
        p + q - 2 * p * q,
        p + q - p * q,
        1 - (p + q - p * q),
        1 - (p + q - 2 * p * q),
        1 - q,
        1 - q + p * q,
        1 - p,
        1 - p + p * q,
        1 - p * q,
        torch.ones_like(p),
    ]  # the 2022 paper's table, gate ids 0..15
    expected = torch.stack(gates, -1) @ torch.softmax(layer.weight, -1).T
    assert torch.allclose(layer(torch.stack([p, q], 1)), expected, atol=1e-12)


@pytest.mark.parametrize(
    "arity, parametrization, rho",
    [(n, "iwp", rho) for n in ARITIES for rho in ("sin01", "sigmoid")] + [(2, "op", "sin01")],  # OP: 2 inputs
)
def test_gradcheck(arity, parametrization, rho):
    layer = LogicLayer(6, 4, arity=arity, parametrization=parametrization, rho=rho, init="gaussian").double()
    x = torch.rand(3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda inp, w: _with_weight(layer, w)(inp), (x, layer.weight.detach().clone().requires_grad_(True))
    )


def _with_weight(layer, weight):
    def run(x):
        corners = F.rho(weight, layer.rho) if layer.parametrization == "iwp" else F.op_corners(weight)
        return F.interpolate(corners, F.gather_inputs(x, layer.wiring))

    return run


def test_repeated_fan_in_gets_both_derivatives():
    layer = LogicLayer(1, 1, arity=2, init="gaussian").double()
    x = torch.rand(4, 1, dtype=torch.float64, requires_grad=True)
    assert layer.wiring.tolist() == [[0, 0]]
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.parametrize("init", ["residual", "gaussian", "and-or", "uniform"])
@pytest.mark.parametrize("parametrization", ["iwp", "op"])
def test_inits(init, parametrization):
    layer = LogicLayer(64, 300, arity=2, parametrization=parametrization, init=init, seed=1)
    tables = layer.truth_tables()
    if init == "residual":
        assert (tables == 0xA).float().mean() > (0.99 if parametrization == "op" else 0.95)  # pass-through A
    if init == "and-or":
        assert set(tables.unique().tolist()) <= {0x8, 0xE} or parametrization == "iwp"
        assert ((tables == 0x8) | (tables == 0xE)).float().mean() > 0.9
    if parametrization == "iwp" and init in ("residual", "and-or", "uniform"):
        w = layer.corners()
        assert ((w < 0.2) | (w > 0.8)).float().mean() > 0.95  # heavy tail: corner values near 0 or 1


@pytest.mark.parametrize(
    "arity, parametrization", [(1, "iwp"), (2, "iwp"), (2, "op"), (3, "iwp"), (4, "iwp"), (6, "iwp")]
)
def test_discretized_torch_equals_ir_evaluator(arity, parametrization):
    net = LogicNet(40, 4, layers=3, width=24, arity=arity, parametrization=parametrization, init="gaussian", seed=arity)
    graph = to_graph(net)
    bits = np.random.default_rng(arity).integers(0, 2, size=(700, 40)).astype(bool)
    assert np.array_equal(net.discrete_scores(torch.as_tensor(bits)).numpy(), evaluate.scores(graph, bits))
    assert np.array_equal(net.discrete_predict(torch.as_tensor(bits)).numpy(), evaluate.predict(graph, bits))


@pytest.fixture(scope="module")
def tiny_trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "digits.safetensors"
    result = train(
        TrainConfig(
            dataset="digits",
            layers=2,
            width=300,
            thresholds=2,
            steps=300,
            eval_every=100,
            tau=5,
            out=str(out),
            progress=False,
            seed=3,
        )
    )
    return out, result


def test_trained_tiny_net_learns_and_matches_its_ir(tiny_trained):
    path, result = tiny_trained
    assert result.best_discrete > 0.5  # 10 classes: chance is 0.1
    lines = [json.loads(line) for line in Path(f"{path}.metrics.jsonl").read_text().splitlines()]
    evaluations, final = lines[:-1], lines[-1]
    assert [r["step"] for r in evaluations] == [100, 200, 300]
    assert {"loss", "acc", "acc_discrete", "gap", "trivial_gates", "unused_gates", "best_discrete"} <= set(lines[0])
    assert all(r["split"] == "validation" for r in evaluations)
    assert final["final"] and final["selection"] == "validation" and final == result.final
    model, encoder, info = load_checkpoint(path)
    assert info["acc_discrete"] == result.best_discrete and info["step"] == final["step"]
    graph = to_graph(model, encoder)
    data = datasets.load_dataset("digits")
    bits = encoding.encode(encoder, data.x_test)
    assert np.array_equal(evaluate.encode(graph, data.x_test), bits)
    torch_pred = model.discrete_predict(torch.as_tensor(bits)).numpy()
    assert np.array_equal(torch_pred, evaluate.predict(graph, bits))
    # the test split is evaluated once, on the checkpoint chosen on validation
    assert np.mean(torch_pred == data.y_test) == pytest.approx(final["test_acc_discrete"])
    assert info["test_acc_discrete"] == final["test_acc_discrete"]


def test_training_is_deterministic(tmp_path):
    runs = []
    for i in range(2):
        cfg = TrainConfig(
            dataset="iris",
            layers=2,
            width=30,
            steps=30,
            eval_every=30,
            out=str(tmp_path / f"{i}.st"),
            progress=False,
            seed=5,
            batch_size=20,
        )
        runs.append(train(cfg).model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_checkpoint_files_are_byte_identical_across_processes(tmp_path):
    """Same seed and settings, two processes with different hash seeds: the same checkpoint bytes."""
    for i in range(2):
        run = tmp_path / str(i)
        run.mkdir()
        command = [sys.executable, "-m", "lgn", "train", "--dataset", "iris", "--layers", "2", "--width", "30",
                   "--steps", "20", "--eval-every", "10", "--out", "m.st", "--no-progress"]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": str(i + 1)}
        subprocess.run(command, cwd=run, env=env, check=True, capture_output=True)
    assert (tmp_path / "0" / "m.st").read_bytes() == (tmp_path / "1" / "m.st").read_bytes()


RELOAD = """
import sys, torch, numpy as np
from lgn.training.checkpoint import load_checkpoint
model, encoder, info = load_checkpoint(sys.argv[1])
x = torch.as_tensor(np.random.default_rng(0).integers(0, 2, size=(50, model.layers[0].in_features)))
np.save(sys.argv[2], np.concatenate([model(x.float()).detach().numpy(), model.discrete_scores(x).numpy()], 1))
"""


def test_checkpoint_round_trip_across_processes(tiny_trained, tmp_path):
    path, _ = tiny_trained
    model, _, _ = load_checkpoint(path)
    x = torch.as_tensor(np.random.default_rng(0).integers(0, 2, size=(50, model.layers[0].in_features)))
    here = np.concatenate([model(x.float()).detach().numpy(), model.discrete_scores(x).numpy()], 1)
    env = dict(os.environ)
    subprocess.run([sys.executable, "-c", RELOAD, str(path), str(tmp_path / "out.npy")], check=True, env=env)
    assert np.array_equal(np.load(tmp_path / "out.npy"), here)


def test_tampered_and_foreign_checkpoints_are_refused(tiny_trained, tmp_path):
    path, _ = tiny_trained
    good = path.read_bytes()
    cases = {
        "pickle": (pickle_bytes(), "a Python pickle"),
        "zip": (b"PK\x03\x04" + b"\x00" * 100, "a zip archive"),
        "flipped": (good[:-5] + bytes([good[-5] ^ 1]) + good[-4:], "checksum mismatch"),
        "truncated": (good[: len(good) // 2], "not an lgn checkpoint"),
        "garbage": (b"hello, not a model at all", "not an lgn checkpoint"),
    }
    for name, (payload, message) in cases.items():
        target = tmp_path / f"{name}.safetensors"
        target.write_bytes(payload)
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(target)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "missing.safetensors")


def pickle_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def _rewrite(path, target, config_edit=None, tensor_edit=None, resign=False):
    """Copy a checkpoint with its config or a tensor edited; ``resign`` recomputes the checksum as a forger
    who knows the format would."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from lgn.training.checkpoint import _checksum, _meaning

    with safe_open(str(path), framework="pt") as handle:
        meta = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    if config_edit:
        meta["config"] = config_edit(meta["config"])
    if tensor_edit:
        tensor_edit(tensors)
    if resign:
        meta["checksum"] = _checksum(tensors, _meaning(meta["config"], meta["encoder_n_features"], meta.get("names")))
    save_file(tensors, str(target), metadata=meta)
    return target


def test_checkpoint_with_edited_config_is_refused(tiny_trained, tmp_path):
    path, _ = tiny_trained

    def narrower(config: str) -> str:
        assert '"widths": [300, 300]' in config
        return config.replace('"widths": [300, 300]', '"widths": [300, 210]')

    # The checksum covers the config: an edited config is caught like an edited tensor.
    edited = _rewrite(path, tmp_path / "edited.st", config_edit=narrower)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(edited)
    edited = _rewrite(path, tmp_path / "classes.st", config_edit=lambda c: c.replace('"classes": 10', '"classes": 20'))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(edited)
    # Re-signed, the config is still held against the tensors before any network is built from it.
    forged = _rewrite(path, tmp_path / "forged.st", config_edit=narrower, resign=True)
    with pytest.raises(CheckpointError, match="layer 1 wiring does not match 210 gates"):
        load_checkpoint(forged)

    def outside(tensors):
        tensors["layers.0.wiring"] = tensors["layers.0.wiring"] + 10_000

    forged = _rewrite(path, tmp_path / "wiring.st", tensor_edit=outside, resign=True)
    with pytest.raises(CheckpointError, match="wiring reads outside"):
        load_checkpoint(forged)


def test_version_1_checkpoints_still_load(tiny_trained, tmp_path):
    """A file written before learned wiring (version 1: layers x width, checksum over the tensors only)."""
    import json as _json

    from lgn.training.checkpoint import _checksum

    path, _ = tiny_trained

    def as_version_1(config: str) -> str:
        data = _json.loads(config)
        widths = data.pop("widths")
        data.pop("candidates")
        return _json.dumps({**data, "layers": len(widths), "width": widths[0]}, sort_keys=True)

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as handle:
        meta = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    meta.update(version="1", config=as_version_1(meta["config"]), checksum=_checksum(tensors))
    save_file(tensors, str(tmp_path / "v1.st"), metadata=meta)
    old, _, _ = load_checkpoint(tmp_path / "v1.st")
    new, _, _ = load_checkpoint(path)
    bits = torch.randint(0, 2, (50, new.layers[0].in_features), generator=torch.Generator().manual_seed(0))
    assert torch.equal(old.discrete_scores(bits), new.discrete_scores(bits))


# ---- datasets ------------------------------------------------------------------------------------
def _skip_unless(name):
    try:
        return datasets.load_dataset(name)
    except datasets.DatasetError as exc:
        pytest.skip(f"{name} not installed: {exc}")


@pytest.mark.parametrize(
    "name, shape, classes",
    [
        ("mnist", (60000, 784), 10),
        ("fashion-mnist", (60000, 784), 10),
        ("digits", (1438, 64), 10),
        ("breast-cancer", (455, 30), 2),
        ("iris", (120, 4), 3),
    ],
)
def test_offline_datasets(name, shape, classes):
    data = _skip_unless(name)
    assert data.x_train.shape == shape and data.classes == classes
    assert len(data.x_test) and data.y_test.max() < classes and data.y_train.min() >= 0


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def test_idx_folder_loader_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (20, 4, 4)), compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 3, 20))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (5, 4, 4)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 1, 0]))
    data = datasets.load_dataset("idx", tmp_path)
    assert data.x_train.shape == (20, 16) and data.classes == 3
    raw = (tmp_path / "t10k-labels-idx1-ubyte").read_bytes()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw[:-1])
    with pytest.raises(datasets.DatasetError, match="truncated"):
        datasets.load_dataset("idx", tmp_path)
    with pytest.raises(ParameterError, match="needs data_dir"):
        datasets.load_dataset("idx")


@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_binary_loader(tmp_path, classes):
    rng = np.random.default_rng(classes)
    train_names, test_names, label_bytes = datasets.CIFAR_FILES[classes]
    for name in train_names + test_names:
        records = rng.integers(0, 256, size=(7, label_bytes + 3072)).astype(np.uint8)
        records[:, :label_bytes] = rng.integers(0, classes, size=(7, label_bytes))
        records.tofile(tmp_path / name)
    data = datasets.load_dataset(f"cifar{classes}", tmp_path)
    assert data.x_train.shape == (7 * len(train_names), 3072) and data.x_test.shape == (7, 3072)
    first = np.fromfile(tmp_path / train_names[0], dtype=np.uint8).reshape(7, -1)
    assert np.array_equal(data.x_train[:7], first[:, label_bytes:])
    assert np.array_equal(data.y_train[:7], first[:, label_bytes - 1])
    (tmp_path / test_names[0]).write_bytes(b"\x00" * 100)
    with pytest.raises(datasets.DatasetError, match="whole number"):
        datasets.load_dataset(f"cifar{classes}", tmp_path)


def test_missing_datasets_say_how_to_get_them(tmp_path):
    with pytest.raises(datasets.DatasetError, match="binary version"):
        datasets.load_dataset("cifar10", tmp_path)
    with pytest.raises(datasets.DatasetError, match="never downloads"):
        datasets.load_dataset("fashion-mnist", tmp_path / "nowhere")
    with pytest.raises(datasets.DatasetError, match="unknown dataset"):
        datasets.load_dataset("imagenet")


def test_thresholds():
    x = np.array([[0, 10], [255, 20]], dtype=np.uint8)
    uniform = encoding.fit_thresholds(x, 3, "uniform", (0.0, 255.0))
    assert np.allclose(uniform, [[63.75, 127.5, 191.25]] * 2)
    learned = encoding.fit_thresholds(x, 1, "uniform")
    assert np.allclose(learned[:, 0], [127.5, 15.0])
    assert encoding.fit_thresholds(np.arange(10.0)[:, None], 1, "quantile")[0, 0] == pytest.approx(4.5)
    enc = encoding.encoder_from_thresholds(uniform)
    assert enc.feature.tolist() == [0, 0, 0, 1, 1, 1]


# ---- distributed, interruption, CLI ------------------------------------------------------------------
def test_ddp_two_processes_equals_one(tmp_path):
    common = [
        "--dataset",
        "iris",
        "--layers",
        "2",
        "--width",
        "30",
        "--steps",
        "20",
        "--eval-every",
        "20",
        "--batch-size",
        "20",
        "--seed",
        "2",
        "--no-progress",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    single = subprocess.run(
        [sys.executable, "-m", "lgn", "train", *common, "--out", str(tmp_path / "one.st")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "lgn",
            "train",
            *common,
            "--out",
            str(tmp_path / "two.st"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one, _, _ = load_checkpoint(tmp_path / "one.st")
    two, _, _ = load_checkpoint(tmp_path / "two.st")
    for (name, a), b in zip(one.state_dict().items(), two.state_dict().values()):
        assert torch.allclose(a.double(), b.double(), atol=1e-5), name


def _train_then_interrupt(out: Path, eval_every: int, wait_for) -> subprocess.CompletedProcess:
    argv = ["--dataset", "digits", "--layers", "2", "--width", "100", "--steps", "1000000", "--eval-every",
            str(eval_every), "--out", str(out), "--no-progress"]  # fmt: skip
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps an ignored
    # SIGINT ignored: the child gets the default back, as a program started from a terminal has it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "lgn", "train", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and not wait_for():
        time.sleep(0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_ctrl_c_after_an_evaluation_leaves_this_runs_checkpoint(tmp_path):
    out = tmp_path / "m.st"
    done = _train_then_interrupt(out, 50, lambda: Path(f"{out}.metrics.jsonl").exists())
    assert done.returncode == 130, done.stderr
    assert "holds this run's best checkpoint so far (step " in done.stdout
    model, _, info = load_checkpoint(out)
    assert model.config["widths"][-1] == 100 and isinstance(info["step"], int)


def test_ctrl_c_before_any_evaluation_leaves_earlier_files_untouched(tmp_path, tiny_trained):
    """--out names another run's checkpoint: it and its metrics stay byte for byte, and the message says so."""
    earlier, _ = tiny_trained
    out = tmp_path / "m.st"
    out.write_bytes(earlier.read_bytes())
    metrics = Path(f"{out}.metrics.jsonl")
    metrics.write_text('{"step": 1}\n')
    started = time.time()
    done = _train_then_interrupt(out, 1_000_000, lambda: time.time() - started > 4)
    assert done.returncode == 130, done.stderr
    assert out.read_bytes() == earlier.read_bytes() and metrics.read_text() == '{"step": 1}\n'
    assert "no checkpoint of this run was written" in done.stdout or "lgn: interrupted" in done.stderr


def test_a_loss_that_becomes_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    from lgn.training import trainer

    calls = {"n": 0}
    real = trainer.nnf.cross_entropy

    def poisoned(logits, labels):
        calls["n"] += 1
        loss = real(logits, labels)
        return loss * float("nan") if calls["n"] > 25 else loss

    monkeypatch.setattr(trainer.nnf, "cross_entropy", poisoned)
    out = tmp_path / "m.st"
    args = ["train", "--dataset", "iris", "--layers", "2", "--width", "30", "--steps", "40", "--eval-every", "10"]
    assert main([*args, "--tau", "10", "--out", str(out), "--no-progress"]) == 1  # --tau: the run alone, no search
    message = capsys.readouterr().err
    assert "the loss became nan at step 26" in message and "last good checkpoint (step " in message
    _, _, info = load_checkpoint(out)
    assert info["step"] in (10, 20)


def test_cli_train_export_verify(tmp_path, capsys):
    out = tmp_path / "iris.st"
    assert (
        main(
            [
                "train",
                "--dataset",
                "iris",
                "--layers",
                "2",
                "--width",
                "30",
                "--steps",
                "40",
                "--eval-every",
                "20",
                "--batch-size",
                "20",
                "--thresholds",
                "4",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert main(["export", str(out), "--out", str(tmp_path / "g.npz")]) == 0
    graph = formats.load_npz(tmp_path / "g.npz")
    # 4 supervised thresholds per column (fewer where they coincide) plus the all-columns tree's cuts (<= 7)
    assert graph.encoder is not None and graph.encoder.n_features == 4 and 4 <= graph.n_inputs <= 16 + 7
    capsys.readouterr()
    assert main(["verify", str(out), "--dataset", "iris"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "30 vectors, 0 mismatches"
    assert main(["info", str(out)]) == 0
    assert main(["train", "--dataset", "iris", "--width", "31", "--out", str(tmp_path / "x.st")]) == 2
    assert (
        main(
            [
                "train",
                "--parametrization",
                "op",
                "--arity",
                "3",
                "--dataset",
                "iris",
                "--width",
                "30",
                "--out",
                str(tmp_path / "x.st"),
            ]
        )
        == 2
    )


def test_center_crop_keeps_raw_pixel_indices():
    encoder = encoding.encoder_from_thresholds(np.full((64, 2), 7.5))  # 8 x 8 images, 2 thresholds
    cropped = encoding.center_crop(encoder, 6)
    assert cropped.n_features == 64 and len(cropped.feature) == 36 * 2
    rows, cols = np.divmod(cropped.feature, 8)
    assert rows.min() == cols.min() == 1 and rows.max() == cols.max() == 6
    with pytest.raises(ParameterError, match="square"):
        encoding.center_crop(encoding.encoder_from_thresholds(np.ones((10, 1))), 2)
    with pytest.raises(ParameterError, match="between 1 and the image side 8"):
        encoding.center_crop(encoder, 9)


def test_cropped_model_compiles_and_agrees_everywhere(tmp_path, capsys):
    """A model trained on a crop takes whole images: torch, the IR and the C library agree on every one."""
    out = tmp_path / "digits.st"
    args = ["train", "--dataset", "digits", "--crop", "6", "--layers", "2", "--width", "60", "--steps", "60"]
    assert main([*args, "--eval-every", "30", "--thresholds", "2", "--out", str(out), "--no-progress"]) == 0
    assert main(["export", str(out), "--out", str(tmp_path / "g.npz")]) == 0
    graph = formats.load_npz(tmp_path / "g.npz")
    assert graph.encoder.n_features == 64 and graph.n_inputs == 72
    capsys.readouterr()
    assert main(["verify", str(out), "--dataset", "digits"]) == 0
    assert capsys.readouterr().out.strip().endswith(" 0 mismatches")
    assert main(["verify", str(tmp_path / "g.npz"), "--backend", "c", "--dataset", "digits"]) == 0
    assert capsys.readouterr().out.strip().endswith(" 0 mismatches")
    assert main(["train", "--dataset", "iris", "--crop", "2", "--out", str(tmp_path / "x.st")]) == 2
