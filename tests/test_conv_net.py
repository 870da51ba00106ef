"""Conv logic networks as a whole (training/conv_stack.py in LogicNet): the export == the discretized torch
network, the relaxed forward the same through the operators and through torch, the --conv spec's refusals."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lgn.compiler import evaluate  # noqa: E402
from lgn.training.conv_spec import block_gates, image_of, parse_conv  # noqa: E402
from lgn.training.export import to_graph, verify_model  # noqa: E402
from lgn.training.layers import LogicNet  # noqa: E402


def _net(blocks, image=(1, 8, 8, 2), arity=2, implementation="auto", parametrization="iwp", seed=0):
    in_features = int(np.prod(image))
    net = LogicNet(in_features, 3, widths=[24, 12], arity=arity, conv=blocks, image=list(image), init="gaussian",
                   implementation=implementation, parametrization=parametrization, seed=seed)  # fmt: skip
    return net.eval()


@st.composite
def conv_blocks(draw):
    """One or two blocks that fit an 8 x 8 image (pooling after the first only when the second still fits)."""
    n = draw(st.integers(1, 2))
    blocks, side, channels = [], 8, 2
    for i in range(n):
        kernel = draw(st.sampled_from([1, 2, 3]))
        padding = draw(st.integers(0, kernel // 2 + 1 if kernel > 1 else 0))
        groups = draw(st.sampled_from([g for g in (1, 2) if channels % g == 0]))
        out = groups * draw(st.integers(1, 3))
        side = side + 2 * padding - kernel + 1
        pool = draw(st.sampled_from([1, 2])) if side >= 2 and (i == n - 1 or side >= 6) else 1
        side //= pool
        blocks.append(dict(channels=out, kernel=kernel, depth=draw(st.integers(1, 3)), stride=1, padding=padding,
                           groups=groups, pool=pool))  # fmt: skip
        channels = out
    return blocks


@settings(max_examples=25, deadline=None)
@given(conv_blocks(), st.sampled_from([2, 3]), st.sampled_from(["iwp", "op"]), st.integers(0, 3))
def test_export_equals_discrete_torch(blocks, arity, parametrization, seed):
    if parametrization == "op":
        arity = 2
    net = _net(blocks, arity=arity, parametrization=parametrization, seed=seed)
    graph = to_graph(net)
    bits = np.random.default_rng(seed).integers(0, 2, (200, graph.n_inputs)).astype(bool)
    comparison = verify_model(net, graph, bits)
    assert comparison.ok, comparison.summary()
    assert graph.n_gates == block_gates(net.conv.image, blocks) + 24 + 12


def test_the_export_check_can_fail():
    """A tree gate's table changed after export: the comparison sees it."""
    blocks = parse_conv("4:3:2", 2)
    net = _net(blocks)
    graph = to_graph(net)
    with torch.no_grad():
        net.conv.convs()[0].levels[-1].weight.neg_()  # every corner of the root gates flipped
    bits = np.random.default_rng(0).integers(0, 2, (300, graph.n_inputs)).astype(bool)
    assert not verify_model(net, graph, bits).ok


def test_operators_and_torch_agree_on_the_relaxed_forward():
    blocks = parse_conv("4:3:2,6:3:2:2", 2)
    fast, slow = _net(blocks, implementation="auto"), _net(blocks, implementation="torch")
    x = torch.rand(7, 128, dtype=torch.float64)
    fast.double(), slow.double()
    torch.testing.assert_close(fast(x), slow(x))


def test_the_graph_takes_raw_pixels_through_its_encoder():
    """An encoder of 2 thresholds per pixel: the graph classifies raw pixels as the net does their bits."""
    from lgn.compiler.ir import Encoder
    from lgn.training.encoding import encode

    encoder = Encoder(64, np.repeat(np.arange(64), 2), np.tile([80.0, 170.0], 64))
    net = _net(parse_conv("4:3:2", 2))
    graph = to_graph(net, encoder)
    pixels = np.random.default_rng(1).integers(0, 256, (100, 64))
    expected = net.discrete_predict(torch.as_tensor(encode(encoder, pixels))).numpy()
    np.testing.assert_array_equal(evaluate.predict(graph, evaluate.encode(graph, pixels)), expected)
    assert image_of(encoder.feature, 64, 1) == [1, 8, 8, 2]


@pytest.mark.parametrize(
    "spec, pool, message",
    [
        ("", 2, "must be 1 to 16 blocks"),
        ("32:3", 2, "must be CHANNELS:KERNEL:DEPTH"),
        ("32:3:3:4:5", 2, "must be CHANNELS:KERNEL:DEPTH"),
        ("32:x:3", 2, "must be CHANNELS:KERNEL:DEPTH"),
        ("32:-3:3", 2, "must be CHANNELS:KERNEL:DEPTH"),
        ("0:3:3", 2, "channels must be between 1 and 4096"),
        ("32:16:3", 2, "kernel must be between 1 and 15"),
        ("32:3:9", 2, "depth must be between 1 and 8"),
        ("32:3:3:5", 2, "5 groups do not divide 32 channels"),
        ("32:3:3", 9, "conv_pool must be between 1"),
    ],
)
def test_bad_specs_are_one_line(spec, pool, message):
    with pytest.raises(ValueError, match=message):
        parse_conv(spec, pool)


def test_a_stack_that_does_not_fit_names_its_block():
    with pytest.raises(ValueError, match="conv block 4: a 2x2 pool does not fit its 1x1 output"):
        _net(parse_conv("2:3:1,2:3:1,2:3:1,2:3:1", 2))


@pytest.mark.parametrize(
    "feature, n_features, colors, message",
    [
        (np.repeat(np.arange(10), 2), 10, 1, "square images"),
        (np.arange(15), 15, 3, "square planes"),
        (np.arange(64)[::-1].copy(), 64, 1, "in pixel order"),
        (np.repeat(np.arange(64), 2)[:-1], 64, 1, "same thresholds for every pixel"),
    ],
)
def test_image_of_refuses_what_is_not_an_image(feature, n_features, colors, message):
    with pytest.raises(ValueError, match=message):
        image_of(feature, n_features, colors)


# ---- trained through lgn train ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_conv(tmp_path_factory):
    """A conv net on digits (8 x 8, 2 thresholds) trained a few hundred steps, with its checkpoint (no pooling:
    pooled twice, an 8 x 8 image leaves 2 x 2 positions and the net learns little in 300 steps)."""
    from lgn.training.config import TrainConfig
    from lgn.training.trainer import train

    out = tmp_path_factory.mktemp("conv") / "c.safetensors"
    cfg = TrainConfig(dataset="digits", conv="16:3:2,16:3:2:2", conv_pool=1, widths=(300, 100), thresholds=2,
                      steps=300, eval_every=100, tau=3, lr=0.05, out=str(out), progress=False)  # fmt: skip
    result = train(cfg)
    return out, result


def test_a_trained_conv_net_learns_and_its_export_is_exact(trained_conv):
    from lgn.training.checkpoint import load_checkpoint
    from lgn.training.data import encoded_test_split

    out, result = trained_conv
    model, encoder, info = load_checkpoint(out)
    assert model.config["conv"][1] == dict(channels=16, kernel=3, depth=2, stride=1, padding=1, groups=2, pool=1)
    raw, bits, labels = encoded_test_split(encoder, "digits")
    graph = to_graph(model, encoder, info["names"])
    comparison = verify_model(model, graph, bits)
    assert comparison.ok, comparison.summary()
    accuracy = float(np.mean(evaluate.predict(graph, evaluate.encode(graph, raw)) == labels))
    assert accuracy == pytest.approx(info["test_acc_discrete"]) and accuracy > 0.5  # 10 classes: chance is 0.1


def test_info_names_the_conv_blocks(trained_conv, capsys):
    from lgn.cli import main

    assert main(["info", str(trained_conv[0])]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert "conv on 2 channels (1 x 2 thresholds) of 8x8: 16 trees of depth 2 over 3x3, 16 trees" in line
    assert "16 trees of depth 2 over 3x3 (groups 2); then 300 + 100 gates" in line and "OR pool" not in line


def test_a_damaged_conv_config_is_refused_in_one_line(trained_conv, tmp_path):
    """A re-signed checkpoint whose stored conv says something no run writes: one CheckpointError line."""
    import json

    from lgn.training import checkpoint

    model, encoder, _ = checkpoint.load_checkpoint(trained_conv[0])
    good = model.config
    for change, message in [
        (dict(depth=99), "depth must be between 1 and 8"),
        (dict(pool=9), "pool must be between 0 and 8"),
        (dict(kernel=9, padding=0), "does not fit"),
        (dict(channels="16"), "integer keys"),
    ]:
        bad = dict(good, conv=[good["conv"][0], {**good["conv"][1], **change}])
        path = tmp_path / "bad.safetensors"
        model.config = bad
        checkpoint.save_checkpoint(path, model, encoder)
        with pytest.raises(checkpoint.CheckpointError, match=message):
            checkpoint.load_checkpoint(path)
        assert json.loads(json.dumps(bad))  # the config was stored as given


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--conv", "8:3"], "--conv block '8:3' must be CHANNELS:KERNEL:DEPTH"),
        (["--conv", "8:3:3:3"], "3 groups do not divide 8 channels"),
        (["--conv", "8:3:1,8:3:1,8:3:1,8:3:1"], "--conv block 4: a 2x2 pool does not fit its 1x1 output"),
        (["--conv-pool", "3"], "--conv-pool goes with --conv"),
        (["--conv", "8:3:2", "--crop", "6"], "conv reads whole images"),
        (["--conv", "8:3:2", "--dataset", "iris"], "--conv applies to images; iris is a table"),
    ],
)
def test_bad_conv_flags_exit_2_with_one_line(argv, message, tmp_path, capsys):
    from lgn.cli import main

    argv = ["train", "--dataset", "digits", "--steps", "2", "--out", str(tmp_path / "m.st"), *argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in err[-1] and err[-1].startswith("lgn: error:"), err
    assert "Traceback" not in "\n".join(err) and not (tmp_path / "m.st").exists()


# ---- CIFAR-shaped data (the binary format, written here: no CIFAR copy is offline) ---------------------------
def _write_cifar10(folder, rng) -> None:
    """A CIFAR-10 binary set of random images, the class readable from the red plane's mean brightness."""
    from lgn.training.data import CIFAR_FILES

    train_names, test_names, _ = CIFAR_FILES[10]
    for name in train_names + test_names:
        labels = rng.integers(0, 10, 40)
        pixels = rng.integers(0, 256, (40, 3, 32, 32))
        pixels[:, 0] = np.clip(pixels[:, 0] // 4 + labels[:, None, None] * 20, 0, 255)
        np.concatenate([labels[:, None], pixels.reshape(40, -1)], axis=1).astype(np.uint8).tofile(folder / name)


@pytest.mark.hdl
def test_a_conv_net_on_cifar_shaped_data_end_to_end(tmp_path, capsys):
    """3 x 32 x 32 images through lgn train --conv, the export, C and Icarus, each against the evaluator."""
    from lgn.cli import main

    data = tmp_path / "cifar"
    data.mkdir()
    _write_cifar10(data, np.random.default_rng(7))
    model = str(tmp_path / "c.safetensors")
    where = ["--dataset", "cifar10", "--data-dir", str(data)]
    train = ["train", *where, "--conv", "4:3:2,8:3:2:2", "--widths", "60", "--thresholds", "1", "--steps", "20"]
    assert main([*train, "--out", model, "--no-progress"]) == 0
    assert main(["info", model]) == 0
    assert "conv on 3 channels (3 x 1 thresholds) of 32x32" in capsys.readouterr().out
    assert main(["export", model, "--out", str(tmp_path / "c.npz")]) == 0
    assert main(["verify", model, *where]) == 0  # discretized torch against the evaluator
    assert main(["verify", str(tmp_path / "c.npz"), "--backend", "c", *where]) == 0
    assert main(["verify", str(tmp_path / "c.npz"), "--backend", "verilog", "--sim", "icarus", "--limit", "40",
                 *where]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "0 mismatches" in out and " mismatches" not in out.replace("0 mismatches", "")


def test_an_interrupted_conv_run_resumes_to_the_uninterrupted_one(tmp_path, monkeypatch):
    """lgn train --resume on a conv net: the trees' parameters, their Adam moments and the shifted images'
    random state come back, so the resumed run ends with the uninterrupted run's checkpoint, byte for byte."""
    from lgn.cli import main

    from .test_resume import _interrupt_at, _outcome

    args = ["--dataset", "digits", "--conv", "8:3:2,8:3:2:2", "--conv-pool", "1", "--widths", "100,50",
            "--thresholds", "2", "--estimator", "ste", "--shift", "1", "--tau", "3", "--steps", "60",
            "--eval-every", "20", "--batch-size", "32", "--seed", "2", "--no-progress", "--out", "m.st"]  # fmt: skip
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    whole.mkdir(), broken.mkdir()
    monkeypatch.chdir(whole)
    assert main(["train", *args]) == 0
    monkeypatch.chdir(broken)
    _interrupt_at(monkeypatch, 50)
    assert main(["train", *args]) == 130
    monkeypatch.undo()
    monkeypatch.chdir(broken)
    assert main(["train", "--resume", "m.st.resume"]) == 0
    expected, got = _outcome(whole), _outcome(broken)
    assert got["checkpoint"] == expected["checkpoint"] and got["graph"] == expected["graph"]


def test_training_moves_the_trees(trained_conv):
    """The optimizer holds the conv trees' parameters (they live outside the FC layers): after training they
    differ from the same network as initialised."""
    model = trained_conv[1].model
    fresh = LogicNet(**model.config)
    for new, trained in zip(fresh.conv.convs(), model.conv.convs()):
        for start, end in zip(new.levels, trained.levels):
            assert not torch.equal(start.weight, end.weight.cpu())
    assert any(not torch.equal(a.weight, b.weight) for a, b in zip(fresh.layers, model.layers))
