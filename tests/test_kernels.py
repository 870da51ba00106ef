"""The gate operators (``kernels``): the reference implementation and the operator plumbing on the CPU,
the CUDA kernels against that reference on a GPU (marker ``cuda``, skipped without one).

The oracle is ``training.functional`` differentiated by autograd; the operators' explicit backward
formulas and the kernels are both checked against it.
"""

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("torch")
import torch  # noqa: E402

from lgn import kernels  # noqa: E402
from lgn.kernels import build, cpu, ops, wiring_ops  # noqa: E402
from lgn.kernels import functional as F  # noqa: E402
from lgn.training.layers import LogicLayer, LogicNet  # noqa: E402

ARITIES = [1, 2, 3, 4, 5, 6]
LAYER_KINDS = [(n, "iwp") for n in ARITIES] + [(2, "op")]
ROOT = build.SOURCE_DIR.parents[1]


def layer_grads(layer: LogicLayer, x: torch.Tensor, implementation: str, seed: int = 0):
    """Output and gradients (input, weight) of ``layer`` run with ``implementation``: ``"torch"`` is
    ``training.functional`` differentiated by autograd (the oracle), ``"kernels"`` the operators."""
    saved, layer.implementation = layer.implementation, implementation
    try:
        x = x.detach().clone().requires_grad_(True)
        y = layer(x)
        upstream = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        upstream = upstream.to(device=y.device, dtype=y.dtype)
        grad_x, grad_w = torch.autograd.grad((y * upstream).sum(), [x, layer.weight])
        return y.detach(), grad_x, grad_w
    finally:
        layer.implementation = saved


def repeated_fanin_layer(arity: int, parametrization: str, in_features: int = 5, gates: int = 12):
    """A layer whose every gate reads feature 0 on fan-ins 0 and 1 (a == b), plus random others."""
    layer = LogicLayer(in_features, gates, arity, parametrization, init="gaussian", seed=7)
    with torch.no_grad():
        wiring = torch.randint(0, in_features, layer.wiring.shape, generator=torch.Generator().manual_seed(1))
        if arity >= 2:
            wiring[:, 0] = wiring[:, 1] = 0
        layer.wiring.copy_(wiring)
    return layer


# ---- the reference and the plumbing (CPU) --------------------------------------------------------


@pytest.mark.parametrize("arity,parametrization", LAYER_KINDS)
def test_operator_equals_autograd_oracle(arity, parametrization):
    layer = LogicLayer(17, 11, arity, parametrization, init="gaussian", seed=arity).double()
    x = torch.rand(9, 17, dtype=torch.float64, generator=torch.Generator().manual_seed(arity))
    want = layer_grads(layer, x, "torch")
    got = layer_grads(layer, x, "kernels")
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("arity", ARITIES)
def test_repeated_fanin_adds_both_derivatives(arity):
    layer = repeated_fanin_layer(arity, "iwp").double()
    x = torch.rand(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    want = layer_grads(layer, x, "torch")
    got = layer_grads(layer, x, "kernels")
    torch.testing.assert_close(got[1], want[1], rtol=1e-12, atol=1e-12)
    # Feature 0 feeds two fan-ins of every gate: its gradient is the sum of both partial derivatives.
    assert want[1][:, 0].abs().sum() > 0


@pytest.mark.parametrize("arity", ARITIES)
def test_gradcheck_gate_operator(arity):
    gen = torch.Generator().manual_seed(arity)
    wiring = torch.randint(0, 4, (3, arity), generator=gen).to(torch.int32)
    prepared = kernels.prepare_wiring(wiring, 4, torch.device("cpu"))
    x = torch.rand(4, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    corners = torch.rand(3, 1 << arity, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, c: kernels.relaxed_gates(a, prepared, c), (x, corners))


def test_gradcheck_op_corners():
    logits = torch.randn(5, 16, dtype=torch.float64, requires_grad=True)
    tables = torch.tensor([int(t) for t in F.DIFFLOGIC_TABLES], dtype=torch.int32)
    assert torch.autograd.gradcheck(lambda t: ops.op_corners(t, tables), (logits,))
    torch.testing.assert_close(ops.op_corners(logits, tables), F.op_corners(logits))


def _op_samples(device, dtype=torch.float32):
    gen = torch.Generator().manual_seed(5)
    samples = []
    for arity in (1, 2, 3, 6):
        wiring = torch.randint(0, 6, (4, arity), generator=gen).to(torch.int32)
        offsets, entries = kernels.consumer_lists(wiring, 6)
        x = torch.rand(6, 7, generator=gen, dtype=dtype)
        accumulator = torch.float64 if dtype == torch.float64 else torch.float32
        corners = torch.rand(4, 1 << arity, generator=gen, dtype=accumulator)
        args = [t.to(device) for t in (x, wiring, corners, offsets, entries)]
        args[0].requires_grad_(True)
        args[2].requires_grad_(True)
        samples.append(args)
    return samples


def test_opcheck_cpu():
    for args in _op_samples("cpu"):
        torch.library.opcheck(ops.gate_forward, args)
    tables = torch.tensor([int(t) for t in F.DIFFLOGIC_TABLES], dtype=torch.int32)
    torch.library.opcheck(ops.op_corners, (torch.randn(3, 16, requires_grad=True), tables))
    wiring = torch.randint(0, 5, (4, 3)).to(torch.int32)
    bits = torch.randint(-(2**62), 2**62, (5, 2))
    torch.library.opcheck(ops.packed_layer, (bits, wiring, torch.randint(0, 256, (4,))))


def test_opcheck_learned_wiring_operators_cpu():
    gen = torch.Generator().manual_seed(5)
    pool, logits, wiring, x, corners, _ = _choice_case(2, 9, 4, 3, 6, torch.float64, 5)
    prepared = kernels.prepare_pool(pool, 9, torch.device("cpu"))
    offsets, entries = kernels.consumer_lists(wiring, 9)
    leaves = [t.clone().requires_grad_(True) for t in (x, corners, logits)]
    chosen = (leaves[0], wiring.to(torch.int32), leaves[1], offsets, entries, prepared.pool, leaves[2], 0.7)
    torch.library.opcheck(wiring_ops.chosen_gates, chosen)
    weights = torch.softmax(torch.randn(8, 3, generator=gen, dtype=torch.float64), -1).requires_grad_(True)
    mixture = (
        x.clone().requires_grad_(True),
        prepared.pool,
        weights,
        prepared.consumer_offsets,
        prepared.consumer_entries,
    )
    torch.library.opcheck(wiring_ops.mix_forward, mixture)
    torch.library.opcheck(wiring_ops.wiring_softmax, (logits.clone().requires_grad_(True), 0.7))


def test_operators_trace_under_torch_compile():
    """fullgraph: the operators trace as single nodes through their fake implementations."""
    layer = LogicLayer(20, 10, 2, "iwp", seed=1)
    prepared = layer.kernel_wiring(torch.device("cpu"))

    def step(x, omega):
        return kernels.relaxed_gates(x, prepared, F.rho(omega, "sin01")).sum()

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    x = torch.rand(20, 8)
    omega = layer.weight.detach().clone().requires_grad_(True)
    value = compiled(x, omega)
    value.backward()
    reference = omega.detach().clone().requires_grad_(True)
    step(x, reference).backward()
    torch.testing.assert_close(value, step(x, omega.detach()))
    torch.testing.assert_close(omega.grad, reference.grad)


@pytest.mark.parametrize(
    "parametrization, wiring", [("iwp", "fixed"), ("op", "fixed"), ("iwp", "soft"), ("iwp", "ste")]
)
def test_network_under_torch_compile(parametrization, wiring):
    """Fixed wiring, candidate mixtures (soft) and the hard choice (ste, whose wiring follows the logits every
    step) compile to the eager values and gradients."""
    learned = dict(widths=[20, 20], candidates=[6, 6]) if wiring != "fixed" else dict(layers=3, width=20)
    net = LogicNet(30, 5, parametrization=parametrization, seed=2, implementation="kernels", **learned)
    net.set_estimator("soft", "soft" if wiring == "fixed" else wiring, 1.0)
    x = torch.rand(8, 30, generator=torch.Generator().manual_seed(0))
    value = torch.compile(net, backend="aot_eager")(x).logsumexp(-1).sum()
    value.backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    eager = net(x).logsumexp(-1).sum()
    eager.backward()
    torch.testing.assert_close(value, eager)
    for parameter, grad in zip(net.parameters(), grads):
        torch.testing.assert_close(grad, parameter.grad)


@given(st.integers(1, 40), st.integers(1, 30), st.integers(1, 6), st.integers(0, 2**31))
def test_consumer_lists_cover_every_fanin_once(in_features, gates, arity, seed):
    wiring = torch.randint(0, in_features, (gates, arity), generator=torch.Generator().manual_seed(seed))
    offsets, entries = kernels.consumer_lists(wiring, in_features)
    assert offsets[0] == 0 and offsets[-1] == gates * arity
    assert sorted(entries.tolist()) == list(range(gates * arity))
    for feature in range(in_features):
        chunk = entries[offsets[feature] : offsets[feature + 1]].to(torch.int64)
        assert torch.all(chunk[1:] > chunk[:-1])  # ascending: a fixed summation order
        assert torch.all(wiring.reshape(-1)[chunk] == feature)


@given(st.integers(1, 200), st.integers(1, 9), st.integers(0, 2**31))
def test_pack_unpack_round_trip(batch, features, seed):
    bits = torch.randint(0, 2, (batch, features), generator=torch.Generator().manual_seed(seed))
    words = kernels.pack_bits(bits)
    assert words.shape == (features, -(-batch // 64))
    assert torch.equal(kernels.unpack_bits(words, batch), bits)


@pytest.mark.parametrize("arity", ARITIES)
def test_packed_layer_equals_hard_layer(arity):
    gen = torch.Generator().manual_seed(arity)
    bits = torch.randint(0, 2, (130, 9), generator=gen)
    wiring = torch.randint(0, 9, (15, arity), generator=gen)
    tables = torch.randint(0, 2**62, (15,), generator=gen) & ((1 << (1 << arity)) - 1 if arity < 6 else -1)
    want = F.hard_layer(bits, wiring, tables)
    prepared = kernels.prepare_wiring(wiring, 9, torch.device("cpu"))
    got = kernels.unpack_bits(kernels.packed_layer(kernels.pack_bits(bits), prepared, tables), 130)
    assert torch.equal(got, want)


def test_network_kernels_path_equals_torch_path():
    net = LogicNet(30, 5, layers=3, width=20, arity=3, seed=2).double()
    bits = torch.randint(0, 2, (33, 30), generator=torch.Generator().manual_seed(0))
    logits = net.set_implementation("kernels")(bits.double())
    scores = net.discrete_scores(bits)
    net.set_implementation("torch")
    torch.testing.assert_close(logits, net(bits.double()))
    assert torch.equal(scores, net.discrete_scores(bits))


def test_bad_wiring_and_implementation_are_refused():
    with pytest.raises(ValueError, match="outside its 4 inputs"):
        kernels.prepare_wiring(torch.tensor([[0, 4]]), 4, torch.device("cpu"))
    with pytest.raises(ValueError, match="implementation must be one of"):
        LogicLayer(4, 2, implementation="fast")


def test_check_without_nvcc_fails_clearly(monkeypatch, capsys):
    monkeypatch.setattr(build, "find_nvcc", lambda: None)
    assert build.main_check() == 1
    assert "nvcc not found" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(build.find_nvcc() is None, reason="nvcc is not installed here")
def test_check_compiles_every_source_for_one_arch():
    """The full ``--check`` (sm_80 and sm_90) runs in CI's bootstrap; here one architecture."""
    done = subprocess.run(
        [sys.executable, "-m", "lgn.kernels", "--check", "--arch", "90"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 failed" in done.stdout


# ---- the CUDA kernels (GPU) ----------------------------------------------------------------------

# Relative to each tensor's largest magnitude: bfloat16 keeps 8 significant bits.
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 3e-2}


@pytest.mark.cuda
@pytest.mark.parametrize("arity,parametrization", LAYER_KINDS)
@pytest.mark.parametrize("batch", [1, 7, 1000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_kernels_equal_reference(arity, parametrization, batch, dtype):
    layer = LogicLayer(300, 257, arity, parametrization, init="gaussian", seed=arity).cuda()
    x = torch.rand(batch, 300, generator=torch.Generator().manual_seed(batch)).cuda()
    want = layer_grads(layer, x.to(dtype).float(), "torch")  # the same rounded inputs
    got = layer_grads(layer, x.to(dtype), "kernels")
    for w, g, name in zip(want, got, ("output", "input gradient", "weight gradient")):
        scale = max(1.0, float(w.abs().max()))
        tolerance = TOLERANCE[dtype] * scale
        torch.testing.assert_close(g.float(), w.float(), rtol=TOLERANCE[dtype], atol=tolerance, msg=name)


@pytest.mark.cuda
@pytest.mark.parametrize("arity", ARITIES)
def test_cuda_repeated_fanin(arity):
    layer = repeated_fanin_layer(arity, "iwp").cuda()
    x = torch.rand(33, 5, generator=torch.Generator().manual_seed(3)).cuda()
    want = layer_grads(layer, x, "torch")
    got = layer_grads(layer, x, "kernels")
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("arity", ARITIES)
def test_cuda_gradcheck(arity):
    gen = torch.Generator().manual_seed(arity)
    wiring = torch.randint(0, 4, (3, arity), generator=gen).to(torch.int32)
    prepared = kernels.prepare_wiring(wiring, 4, torch.device("cuda"))
    x = torch.rand(4, 5, dtype=torch.float64, generator=gen).cuda().requires_grad_(True)
    corners = torch.rand(3, 1 << arity, dtype=torch.float64, generator=gen).cuda().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, c: kernels.relaxed_gates(a, prepared, c), (x, corners))
    logits = torch.randn(5, 16, dtype=torch.float64, device="cuda", requires_grad=True)
    tables = torch.tensor([int(t) for t in F.DIFFLOGIC_TABLES], dtype=torch.int32, device="cuda")
    assert torch.autograd.gradcheck(lambda t: ops.op_corners(t, tables), (logits,))


@pytest.mark.cuda
def test_cuda_opcheck():
    for args in _op_samples("cuda"):
        torch.library.opcheck(ops.gate_forward, args)
    tables = torch.tensor([int(t) for t in F.DIFFLOGIC_TABLES], dtype=torch.int32, device="cuda")
    torch.library.opcheck(ops.op_corners, (torch.randn(3, 16, device="cuda", requires_grad=True), tables))
    wiring = torch.randint(0, 5, (4, 3), device="cuda").to(torch.int32)
    bits = torch.randint(-(2**62), 2**62, (5, 2), device="cuda")
    torch.library.opcheck(ops.packed_layer, (bits, wiring, torch.randint(0, 256, (4,), device="cuda")))


@pytest.mark.cuda
@pytest.mark.parametrize("arity,parametrization", LAYER_KINDS)
def test_cuda_deterministic(arity, parametrization):
    layer = LogicLayer(500, 400, arity, parametrization, init="gaussian", seed=1).cuda()
    x = torch.rand(100, 500, generator=torch.Generator().manual_seed(0)).cuda()
    first = layer_grads(layer, x, "kernels")
    second = layer_grads(layer, x, "kernels")
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.cuda
@pytest.mark.parametrize("arity", ARITIES)
def test_cuda_network_auto_uses_kernels_and_agrees(arity):
    net = LogicNet(64, 4, layers=3, width=40, arity=arity, seed=1).cuda()
    bits = torch.randint(0, 2, (130, 64), generator=torch.Generator().manual_seed(1)).cuda()
    assert kernels.use_kernels(net.implementation, bits, arity)
    logits = net(bits.float())
    scores = net.discrete_scores(bits)
    net.set_implementation("torch")
    torch.testing.assert_close(logits, net(bits.float()), rtol=1e-5, atol=1e-5)
    assert torch.equal(scores, net.discrete_scores(bits))


# ---- the trainer through the operators -----------------------------------------------------------


@pytest.mark.parametrize("parametrization", ["iwp", "op"])
def test_training_through_operators_matches_reference(tmp_path, parametrization):
    """The trainer on the operator path (here their CPU reference) follows the functional path."""
    from lgn.training.trainer import TrainConfig, train

    states = {}
    for implementation in ("torch", "kernels"):
        cfg = TrainConfig(
            dataset="iris",
            layers=2,
            width=30,
            steps=30,
            eval_every=30,
            batch_size=20,
            seed=5,
            parametrization=parametrization,
            implementation=implementation,
            device="cpu",
            out=str(tmp_path / f"{implementation}.st"),
            progress=False,
        )
        states[implementation] = train(cfg).model.state_dict()
    for name, value in states["torch"].items():
        torch.testing.assert_close(states["kernels"][name], value, rtol=1e-4, atol=1e-4)


def test_bfloat16_activations_through_operators():
    net = LogicNet(30, 5, layers=3, width=20, seed=4, implementation="kernels")
    x = torch.rand(16, 30, generator=torch.Generator().manual_seed(0))
    low = net(x.bfloat16())
    assert low.dtype == torch.float32  # GroupSum sums in float32 whatever the activations
    torch.testing.assert_close(low, net(x), rtol=0.03, atol=0.03)
    low.sum().backward()
    assert all(layer.weight.grad.dtype == torch.float32 for layer in net.layers)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_train_on_missing_gpu_is_a_clear_error(capsys):
    from lgn.cli import main

    assert main(["train", "--dataset", "iris", "--device", "cuda", "--steps", "1", "--no-progress"]) != 0
    assert "sees no CUDA GPU" in capsys.readouterr().err


@pytest.mark.slow
def test_kernel_benchmark_smoke_run_on_cpu(tmp_path):
    """The benchmark script itself works (tiny sizes on the CPU; the GPU figures need a GPU)."""
    out = tmp_path / "kernels.json"
    done = subprocess.run(
        [sys.executable, "bench/kernels.py", "--quick", "--device", "cpu", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "bwd OP/IWP" in done.stdout and "packed kernel" in done.stdout and "general path" in done.stdout
    rows = json.loads(out.read_text())["rows"]
    assert all(isinstance(r["iwp_kernels_bwd_ms"], float) for r in rows)


# ---- the CUDA kernels' own code, run on the host (kernels/emulation.py) --------------------------


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    from lgn.kernels.emulation import Emulator, build_library

    try:
        return Emulator(build_library(tmp_path_factory.mktemp("emulation")))
    except FileNotFoundError as exc:
        pytest.skip(f"cannot build the kernel emulation: {exc}")


def _random_case(arity, in_features, gates, batch, dtype, seed, repeated=False):
    gen = torch.Generator().manual_seed(seed)
    wiring = torch.randint(0, in_features, (gates, arity), generator=gen)
    if repeated and arity >= 2:
        wiring[::2, 1] = wiring[::2, 0]  # every other gate reads one feature on fan-ins 0 and 1
    x = torch.rand(in_features, batch, generator=gen, dtype=dtype)
    accumulator = torch.float64 if dtype == torch.float64 else torch.float32
    corners = torch.rand(gates, 1 << arity, generator=gen, dtype=accumulator)
    grad_y = torch.randn(gates, batch, generator=gen, dtype=dtype)
    return wiring, x, corners, grad_y


@pytest.mark.parametrize("arity", ARITIES)
@pytest.mark.parametrize("batch", [1, 7, 100])
@pytest.mark.parametrize("repeated", [False, True])
def test_kernel_code_equals_reference(emulator, arity, batch, repeated):
    wiring, x, corners, grad_y = _random_case(arity, 23, 37, batch, torch.float64, arity * 100 + batch, repeated)
    offsets, entries = kernels.consumer_lists(wiring, 23)
    torch.testing.assert_close(emulator.forward(x, wiring, corners), ops.reference_forward(x, wiring, corners))
    grad_x, grad_corners = emulator.backward(grad_y, x, wiring, corners, offsets, entries)
    want_x, want_corners = ops.reference_backward(grad_y, x, wiring, corners, True)
    torch.testing.assert_close(grad_x, want_x)
    torch.testing.assert_close(grad_corners, want_corners)


@given(st.integers(1, 6), st.integers(1, 12), st.integers(1, 20), st.integers(1, 70), st.integers(0, 2**31))
def test_kernel_code_equals_reference_float32(emulator, arity, in_features, gates, batch, seed):
    wiring, x, corners, grad_y = _random_case(arity, in_features, gates, batch, torch.float32, seed, repeated=True)
    offsets, entries = kernels.consumer_lists(wiring, in_features)
    tolerance = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(emulator.forward(x, wiring, corners), ops.reference_forward(x, wiring, corners))
    grad_x, grad_corners = emulator.backward(grad_y, x, wiring, corners, offsets, entries)
    want_x, want_corners = ops.reference_backward(grad_y, x, wiring, corners, True)
    torch.testing.assert_close(grad_x, want_x, **tolerance)
    torch.testing.assert_close(grad_corners, want_corners, rtol=1e-5, atol=1e-5 * max(1, batch / 32))


def test_kernel_code_op_corners(emulator):
    logits = torch.randn(40, 16, dtype=torch.float64) * 3
    tables = torch.tensor([int(t) for t in F.DIFFLOGIC_TABLES], dtype=torch.int32)
    torch.testing.assert_close(emulator.op_corners(logits, tables), ops.op_corners(logits, tables))
    grad = torch.randn(40, 4, dtype=torch.float64)
    torch.testing.assert_close(
        emulator.op_corners_backward(grad, logits, tables), ops.op_corners_backward(grad, logits, tables)
    )


@pytest.mark.parametrize("arity", ARITIES)
def test_kernel_code_packed_layer(emulator, arity):
    gen = torch.Generator().manual_seed(arity)
    bits = torch.randint(0, 2, (200, 11), generator=gen)
    wiring = torch.randint(0, 11, (17, arity), generator=gen)
    tables = torch.randint(-(2**63), 2**63 - 1, (17,), generator=gen)
    if arity < 6:
        tables &= (1 << (1 << arity)) - 1
    got = kernels.unpack_bits(emulator.packed_layer(kernels.pack_bits(bits), wiring, tables), 200)
    assert torch.equal(got, F.hard_layer(bits, wiring, tables))


# ---- the fast CPU operators (every arity, candidate mixtures; csrc/lgn_cpu.cpp) ------------------------


@pytest.fixture(scope="module")
def cpu_library():
    from lgn.kernels import host

    library = host.cpu_library()
    if library is None:
        pytest.skip("no C++ compiler here: the CPU operators fall back to the torch reference")
    return library


def _tolerance(double: bool, batch: int, arity: int = 2) -> dict:
    if double:
        return dict(rtol=1e-11, atol=1e-11)
    return dict(rtol=5e-5, atol=5e-5 * max(1, batch / 16) * (1 << max(0, arity - 2)))


@given(
    st.integers(1, 6), st.integers(1, 30), st.integers(1, 40), st.integers(1, 150), st.booleans(), st.integers(0, 2**31)
)  # fmt: skip
def test_fast_cpu_operators_equal_reference(cpu_library, arity, in_features, gates, batch, double, seed):
    dtype = torch.float64 if double else torch.float32
    wiring, x, corners, grad_y = _random_case(arity, in_features, gates, batch, dtype, seed, repeated=True)
    offsets, entries = kernels.consumer_lists(wiring, in_features)
    tolerance = _tolerance(double, batch, arity)
    torch.testing.assert_close(
        cpu.cpu_forward(cpu_library, x, wiring, corners), ops.reference_forward(x, wiring, corners), **tolerance
    )
    got = cpu.cpu_backward(cpu_library, grad_y, x, wiring, corners, offsets, entries, True)
    want = ops.reference_backward(grad_y, x, wiring, corners, True)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, **tolerance)
    _, corners_only = cpu.cpu_backward(cpu_library, grad_y, x, wiring, corners, offsets, entries, False)
    assert torch.equal(corners_only, got[1])


@given(st.integers(1, 40), st.integers(1, 150), st.booleans(), st.integers(0, 2**31))
def test_two_input_gates_over_their_own_inputs_take_the_fused_backward_bit_exactly(
    cpu_library, gates, batch, double, seed
):
    """Learned wiring's gates read slots 2g, 2g + 1 and nothing else: one fused pass (lgn_cpu.cpp's
    grads2<true>) gives the reference's gradients, and exactly what the general path gives for the same
    wiring over one more, unread, feature."""
    dtype = torch.float64 if double else torch.float32
    gen = torch.Generator().manual_seed(seed)
    wiring = torch.arange(2 * gates).view(gates, 2)
    x = torch.rand(2 * gates, batch, generator=gen, dtype=dtype)
    corners = torch.rand(gates, 4, generator=gen, dtype=dtype)
    grad_y = torch.randn(gates, batch, generator=gen, dtype=dtype)
    got = cpu.cpu_backward(cpu_library, grad_y, x, wiring, corners, *kernels.consumer_lists(wiring, 2 * gates), True)
    for g, w in zip(got, ops.reference_backward(grad_y, x, wiring, corners, True)):
        torch.testing.assert_close(g, w, **_tolerance(double, batch))
    wider = torch.cat([x, torch.rand(1, batch, generator=gen, dtype=dtype)])
    general = cpu.cpu_backward(
        cpu_library, grad_y, wider, wiring, corners, *kernels.consumer_lists(wiring, 2 * gates + 1), True
    )
    assert torch.equal(got[0], general[0][:-1]) and torch.equal(got[1], general[1])


def _random_pools(in_features, slots, candidates, batch, dtype, seed, hard):
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randint(0, in_features, (slots, candidates), generator=gen)
    pool[::3, -1] = pool[::3, 0]  # a candidate repeated within its slot counts twice
    x = torch.rand(in_features, batch, generator=gen, dtype=dtype)
    weight = torch.softmax(torch.randn(slots, candidates, generator=gen, dtype=dtype), -1)
    if hard:
        weight = torch.zeros_like(weight).scatter_(1, weight.argmax(1, keepdim=True), 1.0)
    grad = torch.randn(slots, batch, generator=gen, dtype=dtype)
    return pool, x, weight, grad


@given(
    st.integers(1, 30), st.integers(1, 40), st.integers(1, 12), st.integers(1, 150), st.booleans(), st.booleans(),
    st.integers(0, 2**31),
)  # fmt: skip
def test_fast_cpu_mixtures_equal_reference(cpu_library, in_features, slots, candidates, batch, double, hard, seed):
    dtype = torch.float64 if double else torch.float32
    pool, x, weight, grad = _random_pools(in_features, slots, candidates, batch, dtype, seed, hard)
    offsets, entries = kernels.consumer_lists(pool, in_features)
    tolerance = _tolerance(double, batch * candidates)
    want_slots = wiring_ops.reference_mix_forward(x, pool, weight)
    torch.testing.assert_close(cpu.cpu_mix_forward(cpu_library, x, pool, weight), want_slots, **tolerance)
    got = cpu.cpu_mix_backward(cpu_library, grad, x, pool, weight, offsets, entries, True)
    want = wiring_ops.reference_mix_backward(grad, x, pool, weight, True)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, **tolerance)


def test_mixture_operator_equals_autograd_of_the_reference():
    pool, x, weight, _ = _random_pools(13, 9, 5, 7, torch.float64, 3, hard=False)
    prepared = kernels.prepare_pool(pool, 13, torch.device("cpu"))
    x1, w1 = x.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    x2, w2 = x.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    upstream = torch.randn(9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    (kernels.mix_candidates(x1, prepared, w1) * upstream).sum().backward()
    (wiring_ops.reference_mix_forward(x2, pool, w2) * upstream).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(w1.grad, w2.grad)
    assert torch.autograd.gradcheck(
        lambda a, b: kernels.mix_candidates(a, prepared, b),
        (x.clone().requires_grad_(True), w1.detach().clone().requires_grad_(True)),
    )


def _choice_case(arity, in_features, gates, candidates, batch, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randint(0, in_features, (gates * arity, candidates), generator=gen)
    pool[::3, -1] = pool[::3, 0]  # a candidate repeated within its slot
    logits = torch.randn(gates * arity, candidates, generator=gen, dtype=dtype) * 3
    wiring = pool.gather(1, logits.argmax(1, keepdim=True)).view(gates, arity)
    x = torch.rand(in_features, batch, generator=gen, dtype=dtype)
    corners = torch.rand(gates, 1 << arity, generator=gen, dtype=dtype)
    grad_y = torch.randn(gates, batch, generator=gen, dtype=dtype)
    return pool, logits, wiring, x, corners, grad_y


@given(
    st.integers(1, 6), st.integers(1, 30), st.integers(1, 12), st.integers(1, 20), st.integers(1, 150),
    st.booleans(), st.sampled_from([0.3, 1.0, 9.0]), st.integers(0, 2**31),
)  # fmt: skip
def test_fast_cpu_choice_grads_equal_reference(
    cpu_library, arity, in_features, gates, candidates, batch, double, temperature, seed
):
    """The wiring logits' gradient of a hard choice (chunks of 8 candidates' dot products side by side, the
    softmax by lgn_cpu.cpp's own exponential) against the reference formula."""
    dtype = torch.float64 if double else torch.float32
    pool, logits, wiring, x, corners, grad_y = _choice_case(arity, in_features, gates, candidates, batch, dtype, seed)
    got, got_corners = cpu.cpu_choice_grads(
        cpu_library, grad_y, x, wiring, corners, pool, logits, temperature, with_corners=True
    )
    want = wiring_ops.reference_choice_backward(grad_y, x, wiring, corners, pool, logits, temperature)
    tolerance = _tolerance(double, batch * candidates, arity)
    torch.testing.assert_close(got, want, rtol=tolerance["rtol"], atol=tolerance["atol"] / temperature)
    want_corners = ops.reference_backward(grad_y, x, wiring, corners, False)[1]
    torch.testing.assert_close(got_corners, want_corners, **_tolerance(double, batch, arity))
    alone, no_corners = cpu.cpu_choice_grads(cpu_library, grad_y, x, wiring, corners, pool, logits, temperature)
    assert torch.equal(alone, got) and no_corners is None


@pytest.mark.parametrize("arity, parametrization", LAYER_KINDS)
@pytest.mark.parametrize("estimator", ["ste", "gumbel"])
def test_hard_wiring_operator_equals_autograd_of_the_torch_layer(arity, parametrization, estimator):
    """A learned-wiring layer under a hard wiring estimator: the operators (``chosen_gates``, no mixtures)
    give the torch layer's output and gradients of the input, the gates and the wiring logits."""
    layer = LogicLayer(23, 17, arity, parametrization, init="gaussian", seed=5, candidates=6).double()
    with torch.no_grad():
        layer.wiring_logits.normal_(0, 2, generator=torch.Generator().manual_seed(6))
    layer.gate_estimator, layer.wiring_estimator, layer.temperature = "soft", estimator, 0.7
    x = torch.rand(9, 23, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    results = {}
    for implementation in ("torch", "kernels"):
        layer.implementation = implementation
        inputs = x.clone().requires_grad_(True)
        torch.manual_seed(8)  # the same Gumbel noise for both
        y = layer(inputs)
        upstream = torch.randn(y.shape, generator=torch.Generator().manual_seed(9), dtype=y.dtype)
        wrt = [inputs, layer.weight, layer.wiring_logits]
        results[implementation] = (y, *torch.autograd.grad((y * upstream).sum(), wrt))
    for want, got in zip(results["torch"], results["kernels"]):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    assert results["kernels"][3].abs().sum() > 0  # the logits do learn


@given(
    st.integers(1, 40), st.integers(1, 130), st.booleans(), st.sampled_from([0.3, 1.0, 9.0]), st.integers(0, 2**31)
)  # fmt: skip
def test_wiring_softmax_equals_torch_softmax(cpu_library, rows, cols, double, temperature, seed):
    """The learned-wiring softmax (lgn_cpu.cpp's own vectorised exponential) and its gradient."""
    dtype = torch.float64 if double else torch.float32
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, cols, generator=gen, dtype=dtype) * 20
    upstream = torch.randn(rows, cols, generator=gen, dtype=dtype)
    results = []
    for softmax in (lambda t: kernels.wiring_softmax(t, temperature), lambda t: torch.softmax(t / temperature, -1)):
        leaf = logits.clone().requires_grad_(True)
        weights = softmax(leaf)
        results.append((weights, *torch.autograd.grad((weights * upstream).sum(), [leaf])))
    # either side rounds the exponent's argument (up to spread = range / temperature) to a relative eps: the
    # weights then differ by about spread * eps, relative (float32: 1e-5 at a spread of 200)
    spread = max(1.0, float(logits.max() - logits.min()) / temperature)
    eps = torch.finfo(dtype).eps
    tolerance = dict(rtol=4 * spread * eps, atol=4 * spread * eps)
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, **tolerance)


@given(st.integers(1, 6), st.integers(1, 40), st.integers(0, 60), st.integers(0, 2**31))
def test_consumer_lists_by_counting_sort_equal_a_stable_sort(cpu_library, arity, in_features, gates, seed):
    wiring = torch.randint(0, in_features, (gates, arity), generator=torch.Generator().manual_seed(seed))
    offsets, entries = kernels.consumer_lists(wiring, in_features)
    flat = wiring.reshape(-1)
    assert torch.equal(entries, torch.argsort(flat, stable=True).to(torch.int32))
    assert torch.equal(offsets[1:], torch.cumsum(torch.bincount(flat, minlength=in_features), 0).to(torch.int32))
    with pytest.raises(ValueError, match=f"outside its {in_features} inputs"):
        kernels.consumer_lists(torch.full((1, arity), in_features), in_features)


def test_auto_uses_the_fast_cpu_path_for_every_arity(cpu_library):
    x = torch.rand(4, 10)
    assert kernels.use_kernels("auto", x) and kernels.use_kernels("auto", x.double())
    assert not kernels.use_kernels("auto", x.bfloat16())  # bfloat16 on the CPU: the reference
    assert not kernels.use_kernels("torch", x) and kernels.use_kernels("kernels", x.bfloat16())


def test_without_a_compiler_everything_falls_back_to_the_reference(monkeypatch):
    from lgn.kernels import host

    monkeypatch.setattr(host, "cpu_library", lambda: None)
    x = torch.rand(9, 17, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert not kernels.use_kernels("auto", x)
    layer = LogicLayer(17, 11, 3, "iwp", init="gaussian", seed=2).double()
    for want, got in zip(layer_grads(layer, x, "torch"), layer_grads(layer, x, "kernels")):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_fast_cpu_operators_refuse_bad_indices(cpu_library):
    x, corners = torch.rand(4, 3), torch.rand(2, 4)
    good = torch.tensor([[0, 1], [2, 3]], dtype=torch.int32)
    offsets, entries = kernels.consumer_lists(good, 4)
    with pytest.raises(ValueError, match="outside the 4 input features"):
        ops.gate_forward(x, torch.tensor([[0, 1], [2, 9]], dtype=torch.int32), corners, offsets, entries)
    with pytest.raises(ValueError, match="consumer"):
        ops.gate_backward(torch.rand(2, 3), x, good, corners, offsets, entries + 100, True)
    with pytest.raises(ValueError, match=r"corners \[2, 4\]"):
        ops.gate_forward(x, good, torch.rand(2, 3), offsets, entries)
    pool = torch.tensor([[0, 5]], dtype=torch.int32)
    with pytest.raises(ValueError, match="candidate pools read outside"):
        wiring_ops.mix_forward(x, pool, torch.rand(1, 2), offsets, entries)
    lists = (offsets, entries)
    with pytest.raises(ValueError, match="candidate pools read outside"):
        wiring_ops.chosen_backward(
            torch.rand(2, 3), x, good, corners, *lists, pool.expand(4, 2), torch.rand(4, 2), 1.0, True
        )
    with pytest.raises(ValueError, match="one row per gate input"):
        wiring_ops.chosen_backward(
            torch.rand(2, 3), x, good, corners, *lists, pool[:, :1] * 0, torch.rand(1, 1), 1.0, True
        )
    with pytest.raises(ValueError, match="temperature must be positive"):
        wiring_ops.chosen_backward(
            torch.rand(2, 3), x, good, corners, *lists, good.view(4, 1), torch.rand(4, 1), 0.0, True
        )


@pytest.mark.parametrize("arity", [2, 5])
def test_fast_cpu_operators_do_not_depend_on_the_thread_count(cpu_library, arity):
    wiring, x, corners, grad_y = _random_case(arity, 3000, 4000 >> (arity - 2), 100, torch.float32, 11, repeated=True)
    offsets, entries = kernels.consumer_lists(wiring, 3000)
    pool, _, weight, grad_slots = _random_pools(3000, 3000, 8, 100, torch.float32, 12, hard=False)
    pool_offsets, pool_entries = kernels.consumer_lists(pool, 3000)
    own = torch.arange(3000).view(1500, 2)  # two-input gates over their own inputs: the fused backward
    own_corners = torch.rand(1500, 4, generator=torch.Generator().manual_seed(13))
    own_offsets, own_entries = kernels.consumer_lists(own, 3000)
    choice_pool = torch.randint(0, 3000, (wiring.numel(), 11), generator=torch.Generator().manual_seed(14))
    logits = torch.randn(choice_pool.shape, generator=torch.Generator().manual_seed(15))
    saved = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 4):  # 4 ranges of gates even on a 2-core machine
            torch.set_num_threads(threads)
            y = cpu.cpu_forward(cpu_library, x, wiring, corners)
            grads = cpu.cpu_backward(cpu_library, grad_y, x, wiring, corners, offsets, entries, True)
            mixed = cpu.cpu_mix_forward(cpu_library, x, pool, weight)
            mix_grads = cpu.cpu_mix_backward(cpu_library, grad_slots, x, pool, weight, pool_offsets, pool_entries, True)
            own_grads = cpu.cpu_backward(cpu_library, grad_slots[:1500], x, own, own_corners,
                                         own_offsets, own_entries, True)  # fmt: skip
            choice, _ = cpu.cpu_choice_grads(cpu_library, grad_y, x, wiring, corners, choice_pool, logits, 0.5)
            results.append((y, *grads, mixed, *mix_grads, *own_grads, choice))
    finally:
        torch.set_num_threads(saved)
    for one, many in zip(*results):
        assert torch.equal(one, many)


FAULTS_PROBE = """
import resource, sys, torch
from lgn.kernels.cpu import reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "1" else False
def cycle():  # three 8 MB tensors written and freed together, as a training step's activations are
    held = [torch.empty(2 << 20).fill_(1.0) for _ in range(3)]
    del held
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    cycle()
print(int(applied), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_memory_is_reused_without_page_faults():
    """20 cycles of three 8 MB tensors: with reuse_freed_memory (what the trainer calls) their pages fault about
    once. The control run without it pins glibc's mmap threshold at its 128 KB default (glibc otherwise moves
    it with the process's history, so the number of faults varies) and faults on every cycle: the check can
    fail."""
    runs = {}
    for mode in ("0", "1"):
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072") if mode == "0" else None
        done = subprocess.run(
            [sys.executable, "-c", FAULTS_PROBE, mode], capture_output=True, text=True, check=True, env=env
        )
        applied, faults = map(int, done.stdout.split())
        runs[mode] = (applied, faults)
    pages = 3 * (8 << 20) // 4096
    assert runs["1"][0] == 1
    assert runs["1"][1] <= 2 * pages, runs  # at most a first touch or two, not one per cycle
    assert runs["0"][1] > 10 * pages, runs
