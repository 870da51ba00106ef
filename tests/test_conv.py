"""The convolutional logic layers (``training.conv``) and their unrolling into the IR (``training.conv_unroll``).

The oracles are written here, independently of the layers: a naive tree convolution that loops over output
positions and evaluates every tree gate by gate with the relaxed gate formula, and a naive OR pool that loops
over windows. Autograd through them gives the gradient of a shared gate as the sum over positions, which the
layers (positions folded into the batch) must reproduce. The discrete layers are checked against the IR
evaluator on their unrolled graphs.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
import torch  # noqa: E402

from lgn.compiler import GateGraph  # noqa: E402
from lgn.compiler.evaluate import output_bits  # noqa: E402
from lgn.compiler.ir import FIRST_INPUT  # noqa: E402
from lgn.kernels import functional as F  # noqa: E402
from lgn.training.conv import LogicTreeConv, OrPool, draw_leaves  # noqa: E402
from lgn.training.conv_unroll import unroll  # noqa: E402
from lgn.training.layers import LogicLayer  # noqa: E402

INITS = ["residual", "gaussian", "and-or", "uniform"]


# ---- the naive references ------------------------------------------------------------------------------
def naive_gate(w: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A 2-input gate's expectation: corner m = a + 2b (fan-in 0 the low bit), ``w`` its 4 corner values."""
    return (1 - a) * (1 - b) * w[0] + a * (1 - b) * w[1] + (1 - a) * b * w[2] + a * b * w[3]


def level_corners(level: LogicLayer, estimator: str) -> torch.Tensor:
    if level.parametrization == "iwp":
        return F.iwp_corners(level.weight, level.rho, estimator)
    return F.op_corners_estimated(level.weight, estimator)


def naive_conv(conv: LogicTreeConv, x: torch.Tensor, estimator: str = "soft") -> torch.Tensor:
    """One output position and one tree at a time: the tree's leaves read from the zero-padded window, then
    level after level, gate i of a level mixing values 2i and 2i + 1 of the level below."""
    k, s, p = conv.kernel_size, conv.stride, conv.padding
    batch, _, height, width = x.shape
    padded = torch.zeros(batch, x.shape[1], height + 2 * p, width + 2 * p, dtype=x.dtype)
    padded[:, :, p : p + height, p : p + width] = x
    out_h, out_w = (height + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1
    corners = [level_corners(level, estimator) for level in conv.levels]
    leaves = conv.leaves().tolist()
    rows = []
    for oy in range(out_h):
        for ox in range(out_w):
            window = padded[:, :, oy * s : oy * s + k, ox * s : ox * s + k]
            trees = []
            for tree, entries in enumerate(leaves):
                values = [window[:, e // (k * k), e % (k * k) // k, e % k] for e in entries]
                for w in corners:
                    half = len(values) // 2
                    first = tree * half  # this tree's gates in the level
                    values = [naive_gate(w[first + i], values[2 * i], values[2 * i + 1]) for i in range(half)]
                trees.append(values[0])
            rows.append(torch.stack(trees, 1))
    return torch.stack(rows, -1).reshape(batch, conv.out_channels, out_h, out_w)


def naive_pool(x: torch.Tensor, k: int, relaxation: str) -> torch.Tensor:
    batch, channels, height, width = x.shape
    out = []
    for oy in range(height // k):
        for ox in range(width // k):
            window = [x[:, :, oy * k + i, ox * k + j] for i in range(k) for j in range(k)]
            if relaxation == "max":
                out.append(torch.stack(window, -1).max(-1).values)
            else:
                miss = torch.ones_like(window[0])
                for value in window:
                    miss = miss * (1 - value)
                out.append(1 - miss)
    return torch.stack(out, -1).reshape(batch, channels, height // k, width // k)


def grads(module: torch.nn.Module, fn, x: torch.Tensor, seed: int):
    """Output and gradients (input, then every parameter) of ``fn(x)`` against a fixed random upstream."""
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    upstream = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    params = [p for p in module.parameters()]
    return y.detach(), torch.autograd.grad((y * upstream).sum(), [x, *params], allow_unused=False)


# ---- strategies ---------------------------------------------------------------------------------------
@st.composite
def conv_settings(draw, max_side: int = 4):
    groups = draw(st.integers(1, 2))
    k = draw(st.integers(1, 3))
    padding = draw(st.integers(0, k - 1))
    height = draw(st.integers(max(1, k - 2 * padding), max_side))
    width = draw(st.integers(max(1, k - 2 * padding), max_side))
    per_group = draw(st.integers(1, 2))
    return dict(
        in_channels=groups * per_group,
        out_channels=groups * draw(st.integers(1, 2)),
        kernel_size=k,
        depth=draw(st.integers(1, 3)),
        stride=draw(st.integers(1, 2)),
        padding=padding,
        groups=groups,
        parametrization=draw(st.sampled_from(["iwp", "op"])),
        rho=draw(st.sampled_from(["sin01", "sigmoid"])),
        init=draw(st.sampled_from(INITS)),
        seed=draw(st.integers(0, 2**31)),
        tree_channels=draw(st.integers(0, per_group)),
    ), (height, width)


# ---- LogicTreeConv against the naive reference --------------------------------------------------------
@settings(max_examples=25)
@given(conv_settings(), st.integers(1, 3), st.sampled_from(["auto", "torch"]), st.sampled_from(["soft", "ste"]))
def test_tree_conv_forward_and_backward_match_the_naive_reference(setting, batch, implementation, estimator):
    kwargs, (height, width) = setting
    conv = LogicTreeConv(**kwargs, implementation=implementation).double()
    conv.set_estimator(estimator, "soft", 1.0)
    for level in conv.levels:  # away from the init, so every gate's corners matter
        level.weight.data += 0.5 * torch.randn(level.weight.shape, dtype=torch.float64)
    x = torch.rand(batch, kwargs["in_channels"], height, width, dtype=torch.float64)
    y, got = grads(conv, conv, x, kwargs["seed"])
    y_ref, want = grads(conv, lambda v: naive_conv(conv, v, estimator), x, kwargs["seed"])
    torch.testing.assert_close(y, y_ref)
    assert y.shape == (batch, kwargs["out_channels"], *conv.output_size(height, width))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_a_shared_gate_gets_the_sum_of_its_per_position_gradients():
    """One tree of depth 1 (one gate, AND-like corners) over a 1x2 window of a 1x3 image: two positions, each
    reading (x0, x1) and (x1, x2); the gate's gradient is the sum of the two corner products."""
    conv = LogicTreeConv(1, 1, kernel_size=2, depth=1, padding=0, implementation="torch").double()
    conv.levels[0].wiring.copy_(torch.tensor([[0, 1]]))
    conv.field.copy_(torch.tensor([2, 3]))  # entries (dy, dx) = (1, 0) and (1, 1): row 1 of a 2x2 window
    x = torch.tensor([[[[0.0, 0.0, 0.0], [0.2, 0.5, 0.9]]]], dtype=torch.float64)
    conv(x).sum().backward()
    a, b = torch.tensor([0.2, 0.5]), torch.tensor([0.5, 0.9])
    products = torch.stack([(1 - a) * (1 - b), a * (1 - b), (1 - a) * b, a * b]).sum(1)
    rho_grad = 0.5 * torch.cos(conv.levels[0].weight.detach()[0])  # sin01
    torch.testing.assert_close(conv.levels[0].weight.grad[0], (products * rho_grad).to(torch.float64))


def test_learned_leaves_mix_candidates_and_train_their_logits():
    conv = LogicTreeConv(2, 3, kernel_size=3, depth=2, padding=1, candidates=4, seed=3).double()
    first = conv.levels[0]
    assert first.learned and first.candidates == 4 and first.pool.shape == (3 * 4, 4)
    field = conv.field[first.pool]  # the pools' field entries: candidate 0 the drawn leaf, all distinct
    assert torch.equal(field[:, 0], conv.leaves().reshape(-1))
    assert all(len(set(row)) == 4 for row in field.tolist())
    x = torch.rand(2, 2, 5, 5, dtype=torch.float64)
    conv(x).sum().backward()
    assert first.wiring_logits is not None and first.wiring_logits.grad is not None
    assert first.wiring_logits.grad.abs().sum() > 0


def test_candidates_as_many_as_the_field_mix_the_whole_field_from_the_drawn_leaves():
    conv = LogicTreeConv(1, 2, kernel_size=2, depth=2, candidates=9, seed=2)  # capped at the field's 4 entries
    drawn = draw_leaves(np.random.default_rng(2), 1, 2, 2, 2)
    assert conv.levels[0].full_pool and conv.field.tolist() == [0, 1, 2, 3]
    assert conv.leaves().tolist() == drawn.tolist()  # the starting choice is the drawn leaf


def test_the_parameter_count_does_not_depend_on_the_image_size():
    for parametrization, per_gate in (("iwp", 4), ("op", 16)):
        conv = LogicTreeConv(3, 8, kernel_size=3, depth=3, padding=1, parametrization=parametrization)
        count = sum(p.numel() for p in conv.parameters())
        assert count == 8 * 7 * per_gate  # 8 trees of 7 gates, whatever the image
        for side in (5, 17):
            conv.zero_grad()
            conv(torch.rand(2, 3, side, side)).sum().backward()
            assert sum(p.grad.numel() for p in conv.parameters() if p.grad is not None) == count


# ---- leaves -------------------------------------------------------------------------------------------
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2**31))
def test_leaves_stay_in_their_group_are_distinct_and_spread_over_the_window(groups, per_group, k, depth, seed):
    rng = np.random.default_rng(seed)
    out_channels, window = 2 * groups, k * k
    leaves = draw_leaves(rng, groups * per_group, out_channels, k, depth, groups)
    assert leaves.shape == (out_channels, 1 << depth)
    for tree, row in enumerate(leaves.tolist()):
        group = tree // 2
        channels = {e // window for e in row}
        assert channels <= set(range(group * per_group, (group + 1) * per_group))
        if len(row) <= per_group * window:
            assert len(set(row)) == len(row)
        visits = np.bincount([e % window for e in row], minlength=window)
        assert visits.max() - visits.min() <= 1


def test_tree_channels_narrow_each_tree_to_that_many_channels():
    leaves = draw_leaves(np.random.default_rng(0), 8, 16, 3, 3, tree_channels=2)
    assert all(len({e // 9 for e in row}) <= 2 for row in leaves.tolist())
    assert len({e // 9 for e in leaves.reshape(-1).tolist()}) > 2  # different trees, different channels


# ---- OrPool -------------------------------------------------------------------------------------------
@given(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.sampled_from(["or", "max"]), st.integers(0, 2**31))
def test_or_pool_matches_the_naive_loop(k, height, width, relaxation, seed):
    if height < k or width < k:
        with pytest.raises(ValueError, match="does not fit"):
            OrPool(k, relaxation)(torch.rand(1, 1, height, width))
        return
    pool = OrPool(k, relaxation)
    x = torch.rand(2, 3, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    y, got = grads(pool, pool, x, seed)
    y_ref, want = grads(pool, lambda v: naive_pool(v, k, relaxation), x, seed)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(got[0], want[0])
    bits = (x > 0.5).to(torch.float64)
    torch.testing.assert_close(pool(bits), torch.nn.functional.max_pool2d(bits, k))
    assert torch.equal(pool.discrete(bits.long()), torch.nn.functional.max_pool2d(bits, k).long())


def test_or_pool_channel_major_equals_batch_major():
    pool = OrPool(2)
    x = torch.rand(3, 2, 5, 6)
    torch.testing.assert_close(pool.forward_features(x.permute(1, 2, 3, 0)).permute(3, 0, 1, 2), pool(x))


# ---- the discrete layers and the IR -------------------------------------------------------------------
@st.composite
def stacks(draw):
    """A conv, pool, conv, pool stack with random padding and strides that fits its input."""
    in_channels = draw(st.integers(1, 2))
    height, width = draw(st.integers(6, 11)), draw(st.integers(6, 11))
    first = LogicTreeConv(
        in_channels,
        2 * draw(st.integers(1, 2)),
        kernel_size=draw(st.integers(2, 3)),
        depth=draw(st.integers(1, 3)),
        stride=draw(st.integers(1, 2)),
        padding=draw(st.integers(0, 1)),
        init=draw(st.sampled_from(INITS)),
        parametrization=draw(st.sampled_from(["iwp", "op"])),
        candidates=draw(st.sampled_from([0, 3])),
        seed=draw(st.integers(0, 2**31)),
    )
    h, w = first.output_size(height, width)
    second = LogicTreeConv(
        first.out_channels,
        2,
        kernel_size=2,
        depth=draw(st.integers(1, 2)),
        padding=1,
        groups=draw(st.sampled_from([1, 2])),
    )
    pool_k = draw(st.integers(1, 2))
    return [first, OrPool(pool_k), second, OrPool(draw(st.integers(1, 2)))], (in_channels, height, width)


@settings(max_examples=30)
@given(stacks(), st.integers(0, 2**31))
def test_the_unrolled_stack_computes_the_discrete_forward(stack, seed):
    layers, (channels, height, width) = stack
    generator = torch.Generator().manual_seed(seed)
    for layer in layers:
        for parameter in layer.parameters():  # random gates and leaf choices, not the init's
            parameter.data = torch.randn(parameter.shape, generator=generator)
    bits = torch.randint(0, 2, (70, channels, height, width), generator=generator)
    expected = bits
    for layer in layers:
        expected = layer.discrete(expected)
    n_inputs = channels * height * width
    nodes = FIRST_INPUT + np.arange(n_inputs).reshape(channels, height, width)
    unrolled = unroll(layers, nodes, FIRST_INPUT + n_inputs)
    assert unrolled.shape == tuple(expected.shape[1:])
    graph = GateGraph.build(n_inputs, unrolled.fanins, unrolled.tables, unrolled.outputs)
    got = output_bits(graph, bits.reshape(len(bits), -1).numpy())
    assert np.array_equal(got, expected.flatten(1).numpy().astype(bool))


def test_unrolled_gate_counts_and_padding_reads_constant_zero():
    conv = LogicTreeConv(1, 2, kernel_size=3, depth=3, padding=1)
    unrolled = unroll([conv, OrPool(2)], FIRST_INPUT + np.arange(16).reshape(1, 4, 4), FIRST_INPUT + 16)
    trees, ors = 2 * 7 * 16, 2 * 2 * 2 * 3  # 7 gates per tree at 16 positions; 3 ORs per 2x2 window
    assert len(unrolled.tables) == trees + ors and unrolled.next_node == FIRST_INPUT + 16 + trees + ors
    assert (unrolled.tables[trees:] == 0b1110).all()
    level0 = unrolled.fanins[: 2 * 4 * 16]
    assert (level0 == 0).any() and ((level0 == 0) | (level0 >= FIRST_INPUT)).all()  # node 0: padding
    assert (unrolled.fanins[:, None] != 1).all()  # constant 1 is never read


def test_the_eval_mode_forward_on_bits_is_the_discrete_forward():
    conv = LogicTreeConv(2, 4, kernel_size=3, depth=3, stride=2, padding=1, init="gaussian", candidates=3)
    conv.set_estimator("ste", "ste", 1.0)
    pool = OrPool(2)
    bits = torch.randint(0, 2, (5, 2, 9, 9), generator=torch.Generator().manual_seed(1))
    conv.eval()
    assert torch.equal(pool(conv(bits.float())).long(), pool.discrete(conv.discrete(bits)))


def test_unroll_refuses_what_it_cannot_unroll():
    with pytest.raises(TypeError, match="cannot unroll"):
        unroll([torch.nn.ReLU()], np.zeros((1, 2, 2), dtype=np.int64), 2)
    with pytest.raises(ValueError, match="expects 3 channels"):
        unroll([LogicTreeConv(3, 3)], np.zeros((1, 4, 4), dtype=np.int64), 2)


# ---- construction -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(in_channels=3, out_channels=4, groups=2), "groups"),
        (dict(in_channels=2, out_channels=2, depth=0), "depth"),
        (dict(in_channels=2, out_channels=2, padding=-1), "padding"),
        (dict(in_channels=2, out_channels=2, tree_channels=3), "tree_channels"),
    ],
)
def test_bad_conv_settings_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LogicTreeConv(**kwargs)


def test_a_window_larger_than_the_padded_input_is_a_value_error():
    with pytest.raises(ValueError, match="does not fit"):
        LogicTreeConv(1, 1, kernel_size=5, padding=1)(torch.rand(1, 1, 2, 2))


def test_a_given_wiring_must_fit_the_layer():
    with pytest.raises(ValueError, match="wiring must have shape"):
        LogicLayer(4, 2, wiring=np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="read inputs"):
        LogicLayer(4, 2, wiring=np.full((2, 2), 4))
    layer = LogicLayer(4, 2, wiring=np.array([[3, 2], [1, 0]]))
    assert layer.wiring.tolist() == [[3, 2], [1, 0]]
