"""Compact networks: learned wiring (candidate pools and full pools), hard-forward estimators, per-layer
widths, the validation split and the gate-usage metrics. Every trained choice must export bit-exactly."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

from lgn.compiler import evaluate  # noqa: E402
from lgn.compiler.errors import ParameterError  # noqa: E402
from lgn.training import encoding  # noqa: E402
from lgn.training.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from lgn.training.config import TrainConfig  # noqa: E402
from lgn.training.data import load_dataset  # noqa: E402
from lgn.training.export import to_graph, verify_model  # noqa: E402
from lgn.training.layers import LogicLayer, LogicNet  # noqa: E402
from lgn.training.sizing import resolve  # noqa: E402
from lgn.training.trainer import _prepare_data, train, validation_split  # noqa: E402
from lgn.training.wiring import draw_pools, image_positions  # noqa: E402

KINDS = [("iwp", 2), ("iwp", 4), ("iwp", 6), ("op", 2)]
ESTIMATORS = ["soft", "ste", "gumbel"]


def _trained_a_little(net: LogicNet, x: torch.Tensor, y: torch.Tensor, estimator: str, steps: int = 5) -> None:
    """A few Adam steps, so the wiring logits and the gates move away from their start."""
    optimizer = torch.optim.Adam(net.parameters(), lr=0.2)
    net.set_estimator(estimator, estimator, 0.5)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(net(x.float()), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize("parametrization, arity", KINDS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_learned_wiring_exports_bit_exactly(parametrization, arity, estimator):
    gen = torch.Generator().manual_seed(arity)
    x = torch.randint(0, 2, (200, 30), generator=gen)
    y = torch.randint(0, 3, (200,), generator=gen)
    # a candidate pool, a full pool (every input) and a fixed layer
    net = LogicNet(30, 3, widths=[24, 12, 9], arity=arity, parametrization=parametrization, candidates=[5, 24, 0])
    assert net.layers[1].full_pool and not net.layers[2].learned
    with torch.no_grad():  # choices away from the starting wiring, as after a long training
        for layer in net.layers[:2]:
            layer.wiring_logits.normal_(0, 3, generator=gen)
    assert all(not torch.equal(layer.wiring, layer.selected_wiring()) for layer in net.layers[:2])
    _trained_a_little(net, x, y, estimator)
    net.eval()
    graph = to_graph(net)
    bits = np.random.default_rng(1).integers(0, 2, (300, 30))
    assert verify_model(net, graph, bits).ok
    for implementation in ("torch", "kernels"):
        net.set_implementation(implementation)
        assert verify_model(net, graph, bits).ok, implementation


def test_pools_keep_the_starting_input_and_draw_distinct_nearby_candidates():
    rng = np.random.default_rng(0)
    start = rng.integers(0, 100, size=(40, 2))
    positions = np.stack(np.divmod(np.arange(100), 10), axis=1)  # a 10 x 10 image, one bit per pixel
    pools = draw_pools(rng, start, 100, 8, positions, radius=2)
    assert pools.shape == (80, 8) and np.array_equal(pools[:, 0], start.reshape(-1))
    assert all(len(set(row)) == 8 for row in pools.tolist())
    distance = np.abs(positions[pools[:, 1:5]] - positions[pools[:, :1]]).max(axis=-1)
    assert (distance <= 2).mean() > 0.9  # the local half (a few may be redrawn at random)
    assert image_positions(np.arange(100), 100).shape == (100, 2)
    assert image_positions(np.arange(30), 30) is None


def test_learned_layer_starts_as_its_random_wiring_and_is_seeded():
    a = LogicLayer(50, 20, 2, candidates=8, seed=3)
    b = LogicLayer(50, 20, 2, candidates=8, seed=3)
    assert torch.equal(a.selected_wiring(), a.wiring) and torch.equal(a.pool, b.pool)
    assert LogicLayer(50, 20, 2, candidates=500, seed=3).full_pool


def test_hard_estimators_run_the_discrete_network():
    """With ste gates and wiring on binary inputs, the training forward is the discretized network."""
    gen = torch.Generator().manual_seed(0)
    net = LogicNet(20, 2, widths=[16, 8], arity=3, candidates=[6, 4], init="gaussian")
    x = torch.randint(0, 2, (64, 20), generator=gen)
    net.set_estimator("ste", "ste", 1.0)
    scores = net(x.float()) * net.group_sum.tau
    assert torch.equal(scores.round().long(), net.discrete_scores(x))

    net.train()
    h = x.float()
    for layer in net.layers:  # every layer's training output is exactly a bit, not a bit give or take an ulp
        h = layer(h)
        assert bool(((h == 0) | (h == 1)).all())


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_straight_through_choice_is_exactly_the_first_maximum_with_the_softmax_gradient(temperature):
    from lgn.kernels.functional import choice_weights

    gen = torch.Generator().manual_seed(1)
    logits = torch.randint(-3, 4, (200, 8), generator=gen).float().requires_grad_(True)  # many ties
    weights = choice_weights(logits, "ste", temperature)
    assert torch.equal(weights, torch.nn.functional.one_hot(logits.argmax(-1), 8).float())
    grad = torch.randn(200, 8, generator=gen)
    weights.backward(grad)
    reference = logits.detach().clone().requires_grad_(True)
    torch.softmax(reference / temperature, dim=-1).backward(grad)
    assert torch.allclose(logits.grad, reference.grad, atol=1e-7)


def test_learned_wiring_checkpoint_round_trips(tmp_path):
    net = LogicNet(30, 3, widths=[24, 9], arity=4, candidates=[6, 24], seed=2)
    _trained_a_little(net, torch.randint(0, 2, (64, 30)), torch.randint(0, 3, (64,)), "ste")
    encoder = encoding.encoder_from_thresholds(np.full((30, 1), 0.5))
    save_checkpoint(tmp_path / "m.st", net, encoder)
    loaded, _, _ = load_checkpoint(tmp_path / "m.st")
    for mine, theirs in zip(net.layers, loaded.layers):
        assert torch.equal(mine.selected_wiring(), theirs.selected_wiring())
        assert torch.equal(mine.truth_tables(), theirs.truth_tables())
    assert to_graph(net).same_as(to_graph(loaded))


def test_validation_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(4), [50, 30, 20, 100])
    train_idx, val_idx = validation_split(labels, 0.1, seed=7)
    assert not set(train_idx) & set(val_idx) and len(train_idx) + len(val_idx) == len(labels)
    assert np.bincount(labels[val_idx]).tolist() == [5, 3, 2, 10]
    assert np.array_equal(validation_split(labels, 0.1, seed=7)[1], val_idx)
    assert not np.array_equal(validation_split(labels, 0.1, seed=8)[1], val_idx)


def test_the_validation_split_comes_from_training_data_never_the_test_split():
    data = load_dataset("digits")
    cfg, _ = resolve(TrainConfig(dataset="digits", val_fraction=0.2, progress=False), data)
    prepared = _prepare_data(cfg, torch.device("cpu"), data)
    train_idx, val_idx = validation_split(data.y_train, 0.2, cfg.seed)
    bits = encoding.encode(prepared.encoder, data.x_train)
    assert np.array_equal(prepared.x_eval.numpy(), bits[val_idx])
    assert np.array_equal(prepared.x_train.numpy(), bits[train_idx])
    assert np.array_equal(prepared.x_test.numpy(), encoding.encode(prepared.encoder, data.x_test))
    # no test image is among the training or validation images
    test_rows = {row.tobytes() for row in data.x_test}
    assert not any(row.tobytes() in test_rows for row in data.x_train[val_idx])


def test_training_with_learned_wiring_reports_the_gap_and_unused_gates(tmp_path):
    cfg = TrainConfig(
        dataset="digits",
        widths=(120, 60),
        connections="learned",
        candidates="all,8",
        pool="local",
        estimator="soft,ste",
        temperature=(1.0, 0.5),
        wiring_lr=0.05,
        steps=120,
        eval_every=60,
        out=str(tmp_path / "m.st"),
        progress=False,
    )
    result = train(cfg)
    records = [json.loads(line) for line in (tmp_path / "m.st.metrics.jsonl").read_text().splitlines()]
    assert [r["temperature"] for r in records[:-1]] == pytest.approx([cfg.temperature_at(60), 0.5])
    for record in records[:-1]:
        assert record["gap"] == pytest.approx(record["acc"] - record["acc_discrete"])
        assert 0 <= record["trivial_gates"] <= record["unused_gates"] + 1e-9 and record["unused_gates"] <= 1
    model, encoder, _ = load_checkpoint(cfg.out)
    assert model.layers[0].full_pool and model.layers[1].candidates == 8
    raw = load_dataset("digits").x_test
    graph = to_graph(model, encoder)
    assert verify_model(model, graph, encoding.encode(encoder, raw)).ok
    accuracy = np.mean(evaluate.predict(graph, encoding.encode(encoder, raw)) == load_dataset("digits").y_test)
    assert accuracy == pytest.approx(result.final["test_acc_discrete"])


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(connections="learned", candidates="8,x"), "candidates must be numbers or all"),
        (dict(connections="learned", widths=(10, 10), candidates="8,8,8"), "candidates gives 3 layers"),
        (dict(estimator="hard"), "estimator must be one of"),
        (dict(temperature=(1.0, 0.0)), "temperature must be one or two positive numbers"),
        (dict(widths=(10, 0)), "widths must be 1 to 64 integers between 1 and"),
        (dict(val_fraction=0.7), "val_fraction must be below 0.5"),
        (dict(wiring_lr=float("nan")), "wiring_lr must be a positive finite number"),
    ],
)
def test_bad_compact_settings_are_refused_before_any_work(changes, message):
    with pytest.raises(ParameterError, match=message):
        TrainConfig(**changes)


def test_default_estimator_is_soft_gates_and_hard_wiring_choices_for_images():
    """What every shipped model trains with, and the fast path of learned wiring (no candidate mixtures); one
    name still sets both."""
    default, _ = resolve(TrainConfig(connections="learned"), load_dataset("digits"))
    assert (default.gate_estimator, default.wiring_estimator) == ("soft", "ste")
    table, _ = resolve(TrainConfig(), load_dataset("iris"))  # tables train the discretized network itself
    assert (table.gate_estimator, table.wiring_estimator, table.connections) == ("ste", "ste", "learned")
    assert (TrainConfig(estimator="soft").gate_estimator, TrainConfig(estimator="soft").wiring_estimator) == (
        "soft",
        "soft",
    )


def test_temperature_anneals_geometrically():
    cfg = TrainConfig(steps=101, temperature=(1.0, 0.01))
    assert cfg.temperature_at(1) == pytest.approx(1.0)
    assert cfg.temperature_at(51) == pytest.approx(0.1)
    assert cfg.temperature_at(101) == pytest.approx(0.01)


def test_cosine_learning_rate_schedule():
    cfg = TrainConfig(steps=101, lr_schedule="cosine")
    assert cfg.lr_factor(1) == pytest.approx(1.0) and cfg.lr_factor(101) == pytest.approx(0.01)
    assert cfg.lr_factor(51) == pytest.approx(0.505)
    assert TrainConfig(steps=101, lr_schedule="constant").lr_factor(51) == 1.0
