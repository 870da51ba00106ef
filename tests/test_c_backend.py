"""The C backend against the reference evaluator: every ISA this machine runs, both code shapes."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.cli import main
from lgn.compiler import c_build, c_emit, evaluate, formats
from lgn.compiler.errors import InputError, LgnError
from lgn.compiler.ir import Encoder, GateGraph
from lgn.compiler.random_graph import random_layered
from lgn.compiler.verify import test_vectors as make_vectors
from lgn.compiler.verify import verify_c

from .strategies import gate_graphs, padding_probe_graph, tiny_graph

RUNNABLE = c_build.host_isas()
COMBOS = [(isa, shape) for isa in RUNNABLE for shape in ("straight", "table")]


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LGN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lgn-cache"))


@settings(max_examples=15)
@given(gate_graphs(max_inputs=10, max_gates=25))
def test_every_isa_and_shape_matches_the_evaluator(graph):
    bits, exhaustive = make_vectors(graph.n_inputs, 300)
    for isa, shape in COMBOS:
        net = c_build.compile_c(graph, isa=isa, shape=shape, threads=1)
        report = verify_c(graph, net, bits, exhaustive)
        assert report.ok, f"{isa}/{shape}: {report.summary()}"


@pytest.mark.slow
@settings(max_examples=60)
@given(gate_graphs(max_inputs=12, max_gates=60))
def test_every_isa_and_shape_matches_the_evaluator_more(graph):
    bits, exhaustive = make_vectors(graph.n_inputs, 500)
    for isa, shape in COMBOS:
        report = verify_c(graph, c_build.compile_c(graph, isa=isa, shape=shape), bits, exhaustive)
        assert report.ok, f"{isa}/{shape}: {report.summary()}"


@pytest.mark.parametrize("isa, shape", COMBOS)
def test_random_nets_every_arity(isa, shape):
    for arity in (2, 3, 4, 5, 6):
        graph = random_layered(70, 3, 40, arity=arity, classes=4, pass_through=0.3, seed=arity)
        graph = graph.replace(output_negated=np.arange(graph.n_outputs) % 3 == 0)
        bits, _ = make_vectors(graph.n_inputs, 700, seed=arity)
        report = verify_c(graph, c_build.compile_c(graph, isa=isa, shape=shape, threads=2), bits)
        assert report.ok, report.summary()


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("n_inputs", [1, 63, 64, 65, 128, 200])
def test_rows_of_input_bits_of_every_length(isa, n_inputs):
    """Rows of 0/1 bytes, packed 64 inputs at a time on AVX-512 (whole runs and a short last one), 600 samples
    (the last block part-filled), against the evaluator."""
    graph = random_layered(n_inputs, 2, 30, classes=3, seed=n_inputs)
    bits, _ = make_vectors(n_inputs, 600, seed=n_inputs)
    report = verify_c(graph, c_build.compile_c(graph, isa=isa, threads=1), bits)
    assert report.ok, report.summary()


@pytest.mark.parametrize("isa", RUNNABLE)
def test_a_model_without_inputs(isa):
    """No input bits at all (gates on the constants): nothing is read from the rows and nothing written past the
    workspace. The vector packing once read a whole vector of the empty rows and wrote one mask per sample past
    the workspace's end, which crashed the process later."""
    graph = GateGraph.build(n_inputs=0, fanins=[[1, 0], [1, 1], [2, 3]], tables=[0x6, 0x8, 0xE], outputs=[2, 3, 4, 0],
                            output_negated=[False, True, False, True], class_offsets=[0, 2, 4])  # fmt: skip
    net = c_build.compile_c(graph, isa=isa, threads=1)
    for n in (1, 64, 700):
        rows = np.zeros((n, 0), dtype=np.uint8)
        assert (net.scores(rows) == evaluate.scores(graph, rows)).all()
        assert (net.predict(rows) == evaluate.predict(graph, rows)).all()


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 255, 257, 1000])
def test_batch_sizes_and_padding(isa, n):
    net = c_build.compile_c(padding_probe_graph(), isa=isa, threads=2)
    ones = np.ones((n, 1), dtype=np.uint8)
    assert net.scores(ones).shape == (n, 2)
    assert (net.scores(ones) == [0, 1]).all()
    assert (net.predict(ones) == 1).all()
    assert net.outputs(ones).shape == (n, 4)


def encoder_graph() -> GateGraph:
    thresholds = np.array([127.5, 0.0, -3.0, 255.0, 254.99, 63.75, 100.0, 1e-9])
    enc = Encoder(3, np.array([0, 0, 1, 1, 2, 2, 0, 1]), thresholds)
    return GateGraph.build(
        n_inputs=8,
        fanins=[[2, 3], [4, 5], [6, 7], [8, 9]],
        tables=[0x6, 0x8, 0xE, 0x9],
        outputs=[10, 11, 12, 13, 2, 5, 8, 9],
        class_offsets=[0, 3, 6, 8],
        encoder=enc,
    )


@pytest.mark.parametrize("isa", RUNNABLE)
def test_raw_features_through_the_encoder(isa):
    graph = encoder_graph()
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(700, 3)).astype(np.uint8)
    raw[:6] = [[127, 128, 0], [128, 255, 254], [0, 0, 255], [100, 101, 64], [63, 64, 1], [255, 0, 0]]
    net = c_build.compile_c(graph, isa=isa)
    expected = evaluate.scores(graph, evaluate.encode(graph, raw))
    assert (net.scores_features(raw) == expected).all()
    assert (net.predict_features(raw) == evaluate.argmax_lowest(expected)).all()
    floats = raw.astype(np.float32) + rng.choice([0.0, 0.25, -0.5], size=raw.shape).astype(np.float32)
    floats[0, 0] = np.nan
    expected = evaluate.scores(graph, evaluate.encode(graph, floats))
    assert (net.scores_features(floats) == expected).all()


def test_bad_inputs_are_clear_errors():
    net = c_build.compile_c(random_layered(10, 2, 6, classes=3, seed=1), threads=1)
    with pytest.raises(InputError, match=r"shape \[samples, 10\]"):
        net.predict(np.zeros((4, 11), dtype=np.uint8))
    with pytest.raises(InputError, match="0 or 1"):
        net.predict(np.full((4, 10), 2, dtype=np.uint8))
    with pytest.raises(InputError, match="dtype float64"):
        net.predict(np.zeros((4, 10)))
    with pytest.raises(InputError, match="no encoder"):
        net.predict_features(np.zeros((4, 10), dtype=np.uint8))
    with pytest.raises(InputError, match=r"shape \[samples, 10\]"):
        net.scores(np.zeros(10, dtype=np.uint8))
    with pytest.raises(InputError, match="uint8 or float32"):
        c_build.compile_c(encoder_graph()).predict_features(np.zeros((2, 3), dtype=np.float64))


def test_non_contiguous_and_bool_inputs_are_converted():
    graph = random_layered(16, 2, 12, classes=3, seed=2)
    net = c_build.compile_c(graph)
    wide = np.random.default_rng(1).integers(0, 2, size=(300, 32)).astype(bool)
    strided = wide[:, ::2]
    fortran = np.asfortranarray(strided)
    expected = evaluate.predict(graph, strided)
    for x in (strided, fortran, strided.astype(np.int64)):
        assert (net.predict(x) == expected).all()


def test_threads_give_the_same_answer():
    graph = random_layered(40, 3, 60, classes=5, seed=3)
    bits = np.random.default_rng(2).integers(0, 2, size=(5000, 40), dtype=np.uint8)
    one = c_build.compile_c(graph, threads=1).scores(bits)
    assert (c_build.compile_c(graph, threads=2).scores(bits) == one).all()
    assert (c_build.compile_c(graph, threads=7).scores(bits) == one).all()


def test_avx512_code_compiles_even_where_it_cannot_run(tmp_path):
    graph = random_layered(20, 2, 30, arity=3, classes=3, seed=4)
    library = c_build.build_shared(c_emit.emit_c(graph, isa="avx512", shape="table").files, "avx512", tmp_path)
    assert library.exists()
    if "avx512" not in RUNNABLE:
        with pytest.raises(LgnError, match="cannot run avx512"):
            c_build.compile_c(graph, isa="avx512")


def test_standalone_library_builds_with_make_and_its_example_runs(tmp_path):
    graph = encoder_graph()
    files = c_emit.library_files(graph, isa="portable")
    for name, text in files.files.items():
        (tmp_path / name).write_text(text)
    build = subprocess.run(
        ["make", "-C", str(tmp_path), "CFLAGS=-O2 -Wall -Wextra -Werror -pedantic"],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    raw = np.random.default_rng(3).integers(0, 256, size=(130, 3)).astype(np.uint8)
    raw.tofile(tmp_path / "features.bin")
    bits = evaluate.encode(graph, raw).astype(np.uint8)
    bits.tofile(tmp_path / "bits.bin")
    expected = evaluate.predict(graph, bits).tolist()
    exe = str(tmp_path / "lgn_net_example")
    for args in ([str(tmp_path / "bits.bin")], [str(tmp_path / "features.bin"), "--features"]):
        run = subprocess.run([exe, *args], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert [int(v) for v in run.stdout.split()] == expected
    (tmp_path / "odd.bin").write_bytes(b"\x00" * 7)
    run = subprocess.run([exe, str(tmp_path / "odd.bin")], capture_output=True, text=True)
    assert run.returncode == 2 and "not a whole number" in run.stderr


BUILD_IN_SUBPROCESS = """
import sys
from lgn.compiler import c_build
from lgn.compiler.random_graph import random_layered
net = c_build.compile_c(random_layered(30, 3, 300, classes=3, seed=11), isa="portable", shape="straight")
print(net.path)
"""


def test_concurrent_builds_of_the_same_model(tmp_path):
    env = dict(os.environ, LGN_CACHE_DIR=str(tmp_path))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD_IN_SUBPROCESS],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1] for r in results]
    paths = {r[0].strip() for r in results}
    assert len(paths) == 1 and Path(paths.pop()).exists()
    assert not list(tmp_path.rglob(".lgn-tmp-*"))


def test_compiler_errors_name_the_command(monkeypatch, tmp_path):
    graph = random_layered(8, 1, 4, classes=2, seed=5)
    monkeypatch.setenv("CC", "gcc -DLGN_BROKEN=1 -include /nonexistent/header.h")
    with pytest.raises(c_build.BuildError, match=r"C compiler failed \(exit 1\): gcc .*nonexistent"):
        c_build.compile_c(graph, cache_dir=tmp_path)
    monkeypatch.setenv("CC", "no-such-compiler-lgn")
    with pytest.raises(c_build.BuildError, match="no C compiler found"):
        c_build.compile_c(graph, cache_dir=tmp_path)


@settings(max_examples=25, deadline=None)
@given(graph=gate_graphs(max_inputs=40, max_gates=60), n=st.integers(1, 700))
def test_packed_input_gives_the_same_answers(graph, n):
    """``predict_packed`` from bits in the block layout equals ``predict`` from bytes, on every ISA, for
    batch sizes that end inside a block and for several threads (the batch split into whole blocks)."""
    bits = np.random.default_rng(n).integers(0, 2, (n, graph.n_inputs)).astype(bool)
    for isa in RUNNABLE:
        net = c_build.compile_c(graph, isa=isa, threads=3)
        packed = c_build.pack_bits(bits, net.lanes)
        assert np.array_equal(net.predict_packed(packed, n), net.predict(bits))
        assert np.array_equal(net.scores_packed(packed, n), evaluate.scores(graph, bits))


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("shape", ["straight", "table"])
def test_packed_input_only_8_byte_aligned(isa, shape):
    """A packed buffer that is 8- but not 64-byte aligned (any numpy uint64 array may be) gives the same
    answers. (Reading such blocks in place, with unaligned vector loads, was tried: it ran slower than copying
    them, as the copy streams where the gates read at random.)"""
    graph = random_layered(40, 2, 30, classes=3, seed=4)
    bits = np.random.default_rng(4).integers(0, 2, (1000, graph.n_inputs)).astype(bool)
    net = c_build.compile_c(graph, isa=isa, shape=shape, threads=1)
    packed = c_build.pack_bits(bits, net.lanes)
    raw = np.zeros(packed.size + 16, dtype=np.uint64)
    offset = next(k for k in range(1, 9) if (raw.ctypes.data + 8 * k) % 64)  # 8 bytes past a 64-byte line
    shifted = raw[offset : offset + packed.size].reshape(packed.shape)
    shifted[...] = packed
    assert shifted.ctypes.data % 64 != 0
    assert np.array_equal(net.predict_packed(shifted, len(bits)), evaluate.predict(graph, bits))


def test_packed_input_of_the_wrong_shape_is_refused():
    net = c_build.compile_c(tiny_graph(), isa="portable")
    with pytest.raises(InputError, match="expected packed bits uint64"):
        net.predict_packed(np.zeros((3, 1), dtype=np.uint64), 500)


def test_a_damaged_cached_library_is_built_again(tmp_path):
    """Built by another process, then truncated on disk (as a full disk or a bad copy leaves it): this process
    builds it again instead of loading it. (A library this process has mapped is never written in place.)"""
    env = dict(os.environ, LGN_CACHE_DIR=str(tmp_path))
    built = subprocess.run([sys.executable, "-c", BUILD_IN_SUBPROCESS], env=env, capture_output=True, text=True)
    library = Path(built.stdout.strip())
    good = library.read_bytes()
    library.write_bytes(good[: len(good) // 2])
    graph = random_layered(30, 3, 300, classes=3, seed=11)
    net = c_build.compile_c(graph, isa="portable", shape="straight", cache_dir=tmp_path)
    assert net.path == library and library.read_bytes() == good
    bits, exhaustive = make_vectors(graph.n_inputs, 100)
    assert verify_c(graph, net, bits, exhaustive).ok


def test_private_files_of_killed_processes_are_removed(tmp_path):
    graph = random_layered(8, 2, 10, classes=2, seed=9)
    folder = c_build.compile_c(graph, isa="portable", cache_dir=tmp_path).path.parent
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = folder / f".lgn-tmp-{dead.stdout.strip()}-abc.so"
    mine = folder / f".lgn-tmp-{os.getpid()}-abc.so"  # this process's own, in progress: kept
    stale.write_bytes(b"half a library")
    mine.write_bytes(b"in progress")
    c_build.compile_c(graph, isa="portable", cache_dir=tmp_path)
    assert not stale.exists() and mine.exists()


def test_compile_verify_checks_what_it_wrote(tmp_path, capsys):
    from lgn.cli import main
    from lgn.compiler import formats

    formats.save_npz(random_layered(10, 3, 30, classes=3, seed=6), tmp_path / "g.npz")
    assert main(["compile", str(tmp_path / "g.npz"), "--out", str(tmp_path / "lib"), "--verify"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("verify: C (") and last.endswith(f"{1 << 10} vectors, 0 mismatches")
    assert main(["verify", str(tmp_path / "g.npz"), "--backend", "c", "--isa", "portable"]) == 0
    assert "checking what lgn compile emits (the simplified graph" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["1abc", "has space", "semi;colon", "ünïcode", "main", "int", "__x", "_Bool"])
def test_bad_prefix_is_refused(bad):
    with pytest.raises(LgnError, match="C identifier"):
        c_emit.emit_c(tiny_graph(), prefix=bad)


@pytest.mark.parametrize("bad", ["_stdio", "_string", "_stdlib", "_stdint", "_stddef", "_features", "_x", "_"])
def test_prefix_with_a_leading_underscore_is_refused(bad):
    """C reserves every file-scope name that begins with an underscore; ``_stdio`` made glibc's ``_STDIO_H``."""
    with pytest.raises(LgnError, match="underscore"):
        c_emit.emit_c(tiny_graph(), prefix=bad)


# Prefixes named like system headers or standard names: the include guard is LGN_<PREFIX>_H_ and every other
# name is the prefix's own or lgn_/LGN_, so each library builds with make and its example runs.
SYSTEM_LOOKING = ["stdio", "string", "stdlib", "stdint", "stddef", "features", "errno", "math", "lgn", "LGN_NET", "E"]


@pytest.mark.parametrize("prefix", SYSTEM_LOOKING)
def test_system_looking_prefix_builds_with_make(tmp_path, prefix):
    graph = encoder_graph()
    for name, text in c_emit.library_files(graph, isa="portable", prefix=prefix).files.items():
        (tmp_path / name).write_text(text)
    build = subprocess.run(
        ["make", "-C", str(tmp_path), "CFLAGS=-O1 -Wall -Wextra -Werror -pedantic"], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    raw = np.random.default_rng(3).integers(0, 256, size=(40, 3)).astype(np.uint8)
    raw.tofile(tmp_path / "features.bin")
    run = subprocess.run([str(tmp_path / f"{prefix}_example"), str(tmp_path / "features.bin"), "--features"],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert [int(v) for v in run.stdout.split()] == evaluate.predict(graph, evaluate.encode(graph, raw)).tolist()


def test_cli_compile_and_verify(tmp_path, capsys):
    from lgn.cli import main
    from lgn.compiler import formats

    formats.save_npz(random_layered(12, 3, 30, classes=3, seed=6), tmp_path / "g.npz")
    assert (
        main(
            [
                "compile",
                str(tmp_path / "g.npz"),
                "--target",
                "c",
                "--out",
                str(tmp_path / "lib"),
                "--isa",
                "portable",
            ]
        )
        == 0
    )
    assert (tmp_path / "lib" / "Makefile").exists() and (tmp_path / "lib" / "main.c").exists()
    assert main(["verify", str(tmp_path / "g.npz"), "--backend", "c"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"{2 * len(RUNNABLE) * (1 << 12)} vectors, 0 mismatches"
    assert main(["compile", str(tmp_path / "g.npz"), "--out", str(tmp_path / "x"), "--isa", "sse9"]) == 2


@pytest.mark.parametrize("isa", RUNNABLE)
@pytest.mark.parametrize("n", [45, 64, 130])  # 32-byte chunks and a tail; 64-input runs, whole and cut short
def test_direct_uint8_encoder_matches_the_evaluator(isa, n):
    """Input bit i reads feature i (MNIST-style): the vectorised comparison paths, edge thresholds included, on
    600 samples (the last block part-filled)."""
    rng = np.random.default_rng(5)
    thresholds = rng.uniform(-2, 258, size=n)
    thresholds[:8] = [-3.0, -1.0, 0.0, 127.5, 254.0, 254.99, 255.0, 300.0]
    graph = random_layered(n, 2, 30, classes=3, seed=9).replace(encoder=Encoder(n, np.arange(n), thresholds))
    assert c_emit._direct_encoder(graph)
    raw = rng.integers(0, 256, size=(600, n)).astype(np.uint8)
    raw[:4] = [0, 255, 127, 128][0]
    raw[1], raw[2], raw[3] = 255, 128, 127
    net = c_build.compile_c(graph, isa=isa)
    expected = evaluate.scores(graph, evaluate.encode(graph, raw))
    assert (net.scores_features(raw) == expected).all()
    assert (net.predict_features(raw) == evaluate.argmax_lowest(expected)).all()


VECTOR_ISAS = [isa for isa in RUNNABLE if isa != "portable"]


@pytest.mark.skipif(len(VECTOR_ISAS) < 2, reason="needs two vector ISAs on this machine (AVX-512 and AVX2)")
def test_auto_isa_is_measured_once_then_read_back(tmp_path):
    graph = random_layered(30, 2, 42, classes=3, seed=5)
    isa, rates, cached = c_build.fastest_isa(graph, cache_dir=tmp_path)
    assert set(rates) == set(VECTOR_ISAS) and isa == max(rates, key=rates.get) and not cached
    assert c_build.fastest_isa(graph, cache_dir=tmp_path)[::2] == (isa, True)
    record = next((tmp_path / "isa").glob("*.json"))
    slower = min(rates, key=rates.get)
    # the cache is what decides, not a re-measurement
    record.write_text(f'{{"isa": "{slower}", "shape": "table", "rates": {{}}}}')
    net = c_build.compile_c(graph, cache_dir=tmp_path)
    assert (net.isa, net.shape) == (slower, "table")
    record.write_text("{damaged")
    assert c_build.fastest_isa(graph, cache_dir=tmp_path)[2] is False  # measured again


def test_auto_isa_with_one_candidate_measures_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(c_build, "host_isas", lambda: ["avx2", "portable"])
    assert c_build.fastest_isa(tiny_graph(), "table", cache_dir=tmp_path) == ("avx2", {}, False)
    monkeypatch.setattr(c_build, "host_isas", lambda: ["portable"])
    assert c_build.fastest_isa(tiny_graph(), "straight", cache_dir=tmp_path)[0] == "portable"
    assert not (tmp_path / "isa").exists()


def test_auto_isa_measures_isa_and_shape_together(monkeypatch, tmp_path):
    """Issue 35: the shape was a rule by gate count while the ISA was measured; a rule lost 2x to straight code
    on a 6 x 8,000 net. Every (ISA, shape) pair is a candidate in the same rounds; the fastest is shipped."""
    from lgn.compiler import c_tune

    graph = random_layered(30, 2, 42, classes=3, seed=5)
    monkeypatch.setattr(c_build, "host_isas", lambda: [*VECTOR_ISAS[:1], "portable"] if VECTOR_ISAS else ["portable"])
    isa = (VECTOR_ISAS or ["portable"])[0]
    choice = c_tune.fastest(graph, cache_dir=tmp_path)  # one ISA: the two shapes are still measured
    assert set(choice.rates) == {f"{isa} straight", f"{isa} table"} and not choice.cached
    assert f"{choice.isa} {choice.shape}" == max(choice.rates, key=choice.rates.get)
    net = c_build.compile_c(graph, cache_dir=tmp_path)
    assert (net.isa, net.shape) == (choice.isa, choice.shape)
    assert c_tune.fastest(graph, cache_dir=tmp_path).cached
    assert choice.said().startswith(f"{choice.isa} {choice.shape}, the fastest here (")
    monkeypatch.setattr(c_tune, "STRAIGHT_MEASURE_MAX_GATES", 10)  # too big to build both: the rule's shape alone
    assert c_tune.candidates(graph) == ([isa], [c_emit.choose_shape(graph, "auto")])
    assert c_tune.candidates(graph, "auto", "straight") == ([isa], ["straight"])


def test_compile_without_a_compiler_still_writes_the_library(monkeypatch, tmp_path, capsys):
    """--isa auto measures with gcc; emitting source does not need it, so without one lgn compile says so and
    writes the widest ISA's library."""
    path = tmp_path / "g.npz"
    formats.save_npz(tiny_graph(), path)
    monkeypatch.setenv("CC", "no-such-compiler-lgn")
    assert main(["compile", str(path), "--out", str(tmp_path / "lib")]) == 0
    out = capsys.readouterr().out
    assert "cannot measure here" in out and (tmp_path / "lib" / "lgn_net.c").exists()
    assert f"ISA {RUNNABLE[0]}" in (tmp_path / "lib" / "lgn_net.c").read_text()
