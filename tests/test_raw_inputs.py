"""Real-valued raw features all the way down (issue 30, item 6): the C example program reads float rows (CSV text
and binary float32) and prints class names; the Verilog takes signed integer and fixed-point words of a declared
width (``--input int:W`` / ``fixed:W.F``) whose threshold bits equal the evaluator's on every value of the
format; and a value outside an interface's range is an error everywhere, never clipped: in the example program,
in the Python helpers that feed raw features to simulations and the C library, and ``--input u8`` (and the iCE40
streaming top) on a model whose thresholds are not bytes."""

import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.cli import main
from lgn.cli.compile import edge_values
from lgn.compiler import c_build, c_emit, evaluate, formats, hardware, hdl_sim, hdl_tools, raw_input, verilog_emit
from lgn.compiler.errors import InputError, LgnError, ParameterError
from lgn.compiler.ir import Encoder
from lgn.compiler.names import Names
from lgn.compiler.random_graph import random_layered
from lgn.compiler.raw_input import U8, RawFormat, parse_raw_format

from .strategies import tiny_graph

# A census-like table: a temperature (negative, fractional), a ratio (0.25) and a capital gain (178,425).
THRESHOLDS = np.array([-3.5, 0.25, 178425.0, 7.0, -200.75, 1000.5, 0.0, 12.0])
FEATURES = np.array([0, 1, 2, 0, 1, 2, 0, 1])
NAMES = Names(features=("temperature", "ratio", "capital-gain"), classes=("low", ">50K", "high"))


def table_graph(names: bool = True):
    """A small train-free classifier over three real-valued features."""
    graph = random_layered(8, 2, 18, classes=3, pass_through=0.3, seed=5)
    return graph.replace(encoder=Encoder(3, FEATURES, THRESHOLDS), names=NAMES if names else None)


def tiny_real_graph():
    """``tiny_graph`` over three real-valued features: the golden example of the new raw inputs."""
    return tiny_graph().replace(encoder=Encoder(3, np.array([0, 1, 2]), np.array([-3.5, 0.25, 178425.0])))


def float_rows(graph, n: int = 300, seed: int = 0) -> np.ndarray:
    """float32 rows: at random over a wide range, and at every threshold and the float32 values beside it."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, graph.encoder.n_features)) * rng.choice([1, 10, 1e3, 1e6], (n, 1))).astype(np.float32)
    edges: list[list[np.float32]] = [[] for _ in range(graph.encoder.n_features)]
    for f, t in zip(graph.encoder.feature.tolist(), graph.encoder.threshold.tolist()):
        t32 = np.float32(t)
        edges[f] += [t32, np.nextafter(t32, np.float32(np.inf)), np.nextafter(t32, np.float32(-np.inf))]
    for f, values in enumerate(edges):
        pick = rng.random(n) < 0.6
        x[pick, f] = rng.choice(np.asarray(values, dtype=np.float32), int(pick.sum()))
    x[0] = [-3.4028235e38, 0, 3.4028235e38]
    return x


def expected_classes(graph, x) -> list[str]:
    classes = evaluate.predict(graph, evaluate.encode(graph, np.asarray(x).astype(np.float64)))
    return [graph.names.classes[c] if graph.names else str(c) for c in classes.tolist()]


# ---- formats --------------------------------------------------------------------------------------------------


def test_format_syntax():
    assert parse_raw_format("u8") is U8
    assert parse_raw_format("int:16") == RawFormat(16, 0)
    assert parse_raw_format("fixed:24.8") == RawFormat(24, 8)
    assert [f.name for f in (U8, RawFormat(16), RawFormat(24, 8))] == ["u8", "int:16", "fixed:24.8"]
    for bad in ("int", "int:1", "int:33", "fixed:8.8", "fixed:8", "u16", "int:8 ", "float"):
        with pytest.raises(ParameterError, match="input"):
            parse_raw_format(bad)


def test_threshold_words_floor_and_scale():
    """``x > t`` is ``word > floor(t * 2^F)``: floor, not truncation, for negatives; beyond the range a constant."""
    t = np.array([-3.5, -3.0, 0.25, 2.9999, 178425.0, -1e9, 1e9])
    assert RawFormat(8).threshold_words(t).tolist() == [-4, -3, 0, 2, 127, -129, 127]
    assert RawFormat(24, 2).threshold_words(t).tolist() == [-14, -12, 1, 11, 713700, -(1 << 23) - 1, (1 << 23) - 1]
    assert U8.threshold_words(t).tolist() == [-1, -1, 0, 2, 255, -1, 255]


def test_words_refuse_what_a_format_does_not_hold():
    fmt = RawFormat(8, 2)
    assert fmt.words(np.array([[-32.0, 31.75, 0.25]])).tolist() == [[-128, 127, 1]]
    assert fmt.words(np.array([[-32, 31]])).tolist() == [[-128, 124]]
    cases = [
        (np.array([[0.0, 32.0]]), r"32 \(row 0, feature 1\) is out of range: input fixed:8\.2 holds signed fixed"),
        (np.array([[-32.25]]), "out of range"),
        (np.array([[0.1]]), r"0\.1 \(row 0, feature 0\) is not a multiple of 0\.25"),
        (np.array([[np.nan]]), "not a finite number"),
        (np.array([[np.inf]]), "not a finite number"),
        (np.array([[40]]), "out of range"),
        (np.array([["a"]]), "must be numbers"),
    ]
    for values, message in cases:
        with pytest.raises(InputError, match=message):
            fmt.words(values)
    with pytest.raises(InputError, match=r"300 .* input u8 holds unsigned 0\.\.255"):
        U8.words(np.array([[1, 300]]))
    with pytest.raises(InputError, match="out of range"):
        U8.words(np.array([[-1]]))
    with pytest.raises(InputError, match="not a multiple of 1"):
        U8.words(np.array([[1.5]]))


def test_the_narrowest_format_holds_every_threshold():
    def narrowest(thresholds):
        return raw_input.narrowest_format(Encoder(1, np.zeros(len(thresholds), int), np.asarray(thresholds, float)))

    assert narrowest([178425.0]) == (RawFormat(19), True)  # 178,426 must fit too: 2^18 - 1 >= 178,426 > 2^17 - 1
    assert narrowest([-3.5, 0.25, 178425.0]) == (RawFormat(21, 2), True)
    assert narrowest([126.0]) == (RawFormat(8), True)
    assert narrowest([127.0]) == (RawFormat(9), True)
    assert narrowest([-128.0]) == (RawFormat(8), True)
    assert narrowest([0.1, 5.0]) == (RawFormat(4), False)  # 0.1 is no multiple of any 2^-F: whole numbers


def test_input_resolution():
    table, image = table_graph(), table_graph(names=False)
    assert raw_input.resolve_input(table, "auto") is None  # a table model takes its encoded bits, as before
    assert raw_input.resolve_input(table, "bits") is None
    assert raw_input.resolve_input(table, "int:24") == RawFormat(24)
    assert raw_input.resolve_input(image, "auto") == RawFormat(21, 2)  # not bytes: the narrowest exact format
    pixels = image.replace(encoder=Encoder(3, FEATURES, np.linspace(0, 255, 8)))
    assert raw_input.resolve_input(pixels, "auto") is U8 and raw_input.resolve_input(pixels, "u8") is U8
    with pytest.raises(ParameterError) as refused:
        raw_input.resolve_input(table, "u8")
    message = str(refused.value)
    assert message == (
        "input u8: threshold 178425 of feature 2 (capital-gain) is outside 0..255, so the features are not bytes: "
        "use --input fixed:21.2 (the narrowest that holds every threshold exactly; widen it to hold your data's "
        "range)"
    )
    with pytest.raises(ParameterError, match="no encoder"):
        raw_input.resolve_input(tiny_graph(), "int:8")


# ---- the lowered netlist (LUT-native Verilog, iCE40 cores) -----------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    thresholds=st.lists(
        st.one_of(st.floats(-1e6, 1e6), st.integers(-300, 300).map(float), st.integers(-40, 40).map(lambda v: v / 4)),
        min_size=4,
        max_size=4,
    ),
    width=st.integers(2, 22),
    frac=st.integers(0, 6),
    k=st.sampled_from([4, 6]),
)
def test_the_lowered_encoder_equals_the_evaluator(thresholds, width, frac, k):
    """Every format, thresholds inside, at the edges of and far outside its range: the netlist's classes and
    scores on the words of the values equal the evaluator's on the values."""
    fmt = RawFormat(width, min(frac, width - 1))
    graph = random_layered(4, 2, 8, classes=2, seed=1).replace(encoder=Encoder(2, np.array([0, 1, 0, 1]), thresholds))
    design = hardware.lower(graph, k, raw_input=fmt)
    assert design.raw == fmt and design.netlist.n_inputs == 2 * width
    raw = edge_values(graph, fmt, 120, seed=width)
    scores, classes = design.decode(evaluate.output_bits(design.netlist, hardware.raw_bits(raw, fmt)))
    bits = evaluate.encode(graph, raw)
    assert classes.tolist() == evaluate.predict(graph, bits).tolist()
    assert scores.tolist() == evaluate.scores(graph, bits).tolist()


def test_the_encoder_is_a_part_of_its_own_in_every_format():
    graph = table_graph()
    sizes = {fmt.name: hardware.part_sizes(graph, 6, fmt) for fmt in (RawFormat(21, 2), RawFormat(32), U8)}
    assert all(s["encoder"] > 0 for s in sizes.values())
    assert sizes["int:32"]["encoder"] > sizes["u8"]["encoder"]  # wider words, more LUTs
    assert raw_input.encoder_format(graph) == RawFormat(21, 2)  # a table model: its own narrowest format


# ---- the gate-level Verilog ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pipeline, spec", [(None, "int:19"), (2, "fixed:21.2")])
def test_golden_verilog(golden, pipeline, spec):
    graph, fmt = tiny_real_graph(), parse_raw_format(spec)
    emitted = verilog_emit.package_files(graph, pipeline=pipeline, raw_input=fmt)
    tag = f"verilog_tiny_{pipeline or 'comb'}_{spec.replace(':', '').replace('.', '_')}"
    golden(f"{tag}.v", emitted["lgn_net.v"])
    golden(f"{tag}_README.md", emitted["README.md"])
    assert verilog_emit.package_files(graph, pipeline=pipeline, raw_input=fmt) == emitted


def test_constants_beyond_the_range_are_constant_bits():
    text = verilog_emit.emit_verilog(tiny_real_graph(), raw_input=RawFormat(8))["lgn_net.v"]
    assert "assign x[0] = $signed(features[0 +: 8]) > -8'sd4;  // feature 0 > -3.5" in text
    assert "assign x[1] = $signed(features[8 +: 8]) > 8'sd0;" in text
    assert "assign x[2] = 1'b0;  // feature 2 > 178425" in text  # no int:8 value exceeds it
    lowest = verilog_emit.emit_verilog(tiny_real_graph().replace(encoder=Encoder(3, np.arange(3), [-128.0, -129, 0])),
                                       raw_input=RawFormat(8))["lgn_net.v"]  # fmt: skip
    assert "> 8'sh80;" in lowest and "assign x[1] = 1'b1;" in lowest


def test_bytes_stay_as_they_were():
    """``u8`` (and the library's raw_input=True) keeps its text: thresholds outside 0..255 are constant bits."""
    graph = tiny_real_graph()
    assert verilog_emit.emit_verilog(graph, raw_input=True) == verilog_emit.emit_verilog(graph, raw_input=U8)
    assert "features[0 +: 8] > 8'd" not in verilog_emit.emit_verilog(graph, raw_input=U8)["lgn_net.v"]


def test_simulation_helpers_refuse_values_the_port_does_not_hold():
    graph = table_graph()
    bits = np.zeros((1, graph.n_inputs), dtype=bool)
    with pytest.raises(InputError, match="out of range: input int:8"):
        hdl_sim.input_rows(bits, np.array([[1.0, 2.0, 300.0]]), RawFormat(8))
    with pytest.raises(InputError, match="not a multiple of 0.5"):
        hdl_sim.input_rows(bits, np.array([[1.0, 2.25, 3.0]]), RawFormat(12, 1))
    with pytest.raises(InputError, match="input u8 holds unsigned"):
        hdl_sim.input_rows(bits, np.array([[1, 2, 256]]), None)  # bytes: 256 was wrapped to 0
    with pytest.raises(InputError, match="out of range"):
        hardware.raw_bits(np.array([[-1, 0, 0]]))
    rows = hdl_sim.input_rows(bits, np.array([[-1.0, 0.5, 2.0]]), RawFormat(4, 1))  # words -2, 1, 4: 12 bits
    assert rows.tolist() == [[0x1E, 0x04]]


# ---- the command line ----------------------------------------------------------------------------------------


def _lgn(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_compile_refuses_bytes_for_a_model_whose_thresholds_are_not(tmp_path, capsys):
    path = tmp_path / "table.npz"
    formats.save_npz(table_graph(), path)
    base = ["compile", str(path), "--target", "verilog", "--out", str(tmp_path / "v"), "--no-simplify"]
    code, _, err = _lgn([*base, "--input", "u8"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("lgn: error: --input u8: threshold 178425 of feature 2 (capital-gain) is outside 0..255")
    assert "use --input fixed:21.2" in err
    code, _, err = _lgn([*base, "--style", "luts", "--input", "u8"], capsys)
    assert code == 2 and "--input fixed:21.2" in err
    code, _, err = _lgn([*base, "--style", "luts", "--cells", "ice40", "--stream"], capsys)
    assert code == 2 and err.count("\n") == 1 and "one byte per clock and cannot represent this model" in err
    code, _, err = _lgn([*base, "--style", "luts", "--cells", "ice40", "--stream", "--input", "int:24"], capsys)
    assert code == 2 and "one byte per clock" in err
    for bad in ("int:99", "float", "fixed:8.9"):
        code, _, err = _lgn([*base, "--input", bad], capsys)
        assert code == 2 and err.count("\n") == 1 and "--input" in err
    code, out, _ = _lgn([*base, "--input", "int:24"], capsys)
    assert code == 0 and "raw features as int:24" in out
    text = (tmp_path / "v" / "lgn_net.v").read_text()
    assert "input  wire [71:0] features," in text and "> 24'sd178425;" in text
    assert "signed two's complement -8388608..8388607" in (tmp_path / "v" / "README.md").read_text()


def test_pnr_refuses_a_model_whose_features_are_not_bytes(tmp_path, capsys):
    path = tmp_path / "table.npz"
    formats.save_npz(table_graph(), path)
    code, _, err = _lgn(["synth", str(path), "--target", "ice40", "--pnr", "--out", str(tmp_path / "p")], capsys)
    assert code == 2 and err.count("\n") == 1 and "cannot represent this model" in err
    assert "--input fixed:21.2" in err


# ---- the C library and its example program --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LGN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lgn-cache"))


def test_the_c_library_takes_whole_numbers_only_when_they_are_bytes():
    graph = table_graph().replace(encoder=Encoder(3, FEATURES, np.linspace(0, 255, 8)))
    net = c_build.compile_c(graph, isa="portable", threads=1)
    raw = np.random.default_rng(1).integers(0, 256, (70, 3))
    assert net.predict_features(raw).tolist() == net.predict_features(raw.astype(np.uint8)).tolist()
    raw[5, 2] = 300
    with pytest.raises(InputError, match=r"300 \(row 5, feature 2\) is out of range: input u8"):
        net.predict_features(raw)
    with pytest.raises(InputError, match="float32"):
        net.predict_features(raw.astype(np.float64))


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The exported library of ``table_graph`` built with make (strict warnings): its example program."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    folder = tmp_path_factory.mktemp("example")
    for name, text in c_emit.library_files(table_graph(), isa="portable").files.items():
        (folder / name).write_text(text)
    build = subprocess.run(["make", "-C", str(folder), "CFLAGS=-O2 -std=c99 -Wall -Wextra -Werror -pedantic"],
                           capture_output=True, text=True)  # fmt: skip
    assert build.returncode == 0, build.stderr
    return folder / "lgn_net_example"


def _run(exe, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, input=stdin)


def test_golden_example_program(golden):
    golden("c_example_main.c", c_emit.library_files(table_graph(), isa="portable").files["main.c"])


def test_float_rows_in_csv_and_binary(example, tmp_path):
    graph = table_graph()
    x = float_rows(graph)
    expected = expected_classes(graph, x)
    lines = [",".join(repr(float(v)) for v in row) for row in x]
    csv = tmp_path / "rows.csv"
    header = 'temperature, ratio ,"capital-gain"\r\n'  # blanks and quotes around names are fine
    csv.write_text(header + "\r\n".join(lines[:10]) + "\n\n" + "\n".join(lines[10:]))  # CRLF, a blank line
    run = _run(example, csv, "--csv")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == expected
    no_header = _run(example, "-", "--csv", stdin="\n".join(lines) + "\n")
    assert no_header.returncode == 0 and no_header.stdout.splitlines() == expected
    x.astype("=f4").tofile(tmp_path / "rows.f32")
    run = _run(example, tmp_path / "rows.f32", "--f32")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == expected
    bits = evaluate.encode(graph, x.astype(np.float64)).astype(np.uint8)
    bits.tofile(tmp_path / "bits.bin")
    assert _run(example, tmp_path / "bits.bin").stdout.splitlines() == expected
    big = np.tile(x, (30, 1))  # several batches of 4,096 rows
    big.astype("=f4").tofile(tmp_path / "big.f32")
    assert _run(example, tmp_path / "big.f32", "--f32").stdout.splitlines() == expected * 30


def test_byte_rows_in_csv_and_binary(example, tmp_path):
    graph = table_graph()
    raw = np.random.default_rng(4).integers(0, 256, (200, 3)).astype(np.uint8)
    expected = expected_classes(graph, raw)
    (tmp_path / "rows.csv").write_text("\n".join(",".join(map(str, row)) for row in raw.tolist()))
    assert _run(example, tmp_path / "rows.csv", "--csv-u8").stdout.splitlines() == expected
    raw.tofile(tmp_path / "rows.bin")
    assert _run(example, tmp_path / "rows.bin", "--features").stdout.splitlines() == expected


@pytest.mark.parametrize(
    "mode, text, message",
    [
        ("--csv", "1,2\n", "rows.csv:1: 2 fields, the model takes 3 features"),
        ("--csv", "1,2,3\n4,5,6,7\n", "rows.csv:2: 4 fields, the model takes 3 features"),
        ("--csv", "1,2,3\n1,abc,3\n", "rows.csv:2: field 2: 'abc' is not a number"),
        ("--csv", "1,2,3\n1,,3\n", "rows.csv:2: field 2: '' is not a number"),
        ("--csv", "1,2,3\n1,nan,3\n", "rows.csv:2: field 2: 'nan' is not a finite number"),
        ("--csv", "1,2,-inf\n", "rows.csv:1: field 3: '-inf' is not a finite number"),
        ("--csv", "1,2,1e39\n", "rows.csv:1: field 3: '1e39' is out of the float32 range"),
        ("--csv", "1,-1e400,3\n", "rows.csv:1: field 2: '-1e400' is out of the float32 range"),
        ("--csv-u8", "1,1e400,3\n", "field 2: '1e400' is not a whole number 0..255"),
        ("--csv", "3.4028235e38,-3.4028235e38,1e-50\n", None),
        ("--csv", "a,b\n", "rows.csv:1: the header has 2 fields, the model takes 3 features"),
        ("--csv", "temperature,capital-gain,ratio\n", "field 2: 'capital-gain' is not the model's feature 2, 'ratio'"),
        ("--csv-u8", "1,2,300\n", "rows.csv:1: field 3: '300' is not a whole number 0..255 (a byte)"),
        ("--csv-u8", "1,2.5,3\n", "field 2: '2.5' is not a whole number 0..255"),
        ("--csv-u8", "-1,2,3\n", "field 1: '-1' is not a whole number 0..255"),
        ("--csv", "1,2,3\n", None),
    ],
)
def test_rows_the_format_does_not_hold_are_errors(example, tmp_path, mode, text, message):
    (tmp_path / "rows.csv").write_text(text)
    run = _run(example, tmp_path / "rows.csv", mode)
    if message is None:
        rows = np.array([[float(v) for v in line.split(",")] for line in text.split()], dtype=np.float32)
        assert run.returncode == 0 and run.stdout.splitlines() == expected_classes(table_graph(), rows)
        return
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    assert message in run.stderr


def test_binary_rows_the_format_does_not_hold_are_errors(example, tmp_path):
    x = np.ones((5, 3), dtype=np.float32)
    x[3, 1] = np.nan
    x.tofile(tmp_path / "rows.f32")
    run = _run(example, tmp_path / "rows.f32", "--f32")
    assert run.returncode == 2 and "row 4, feature 1: nan is not a finite number" in run.stderr
    (tmp_path / "bits.bin").write_bytes(bytes([0, 1] * 4 + [2] * 8))
    run = _run(example, tmp_path / "bits.bin")
    assert run.returncode == 2 and "row 2, input 0: byte 2 is not 0 or 1" in run.stderr
    (tmp_path / "odd.f32").write_bytes(b"\0" * 13)
    run = _run(example, tmp_path / "odd.f32", "--f32")
    assert run.returncode == 2 and "13 bytes is not a whole number of 12-byte rows" in run.stderr
    run = _run(example, tmp_path / "odd.f32", "--float")
    assert run.returncode == 2 and "unknown option --float" in run.stderr


# ---- simulation (Icarus) and synthesis (yosys) ------------------------------------------------------------------

HAVE_ICARUS = shutil.which("iverilog") is not None
icarus = pytest.mark.skipif(not HAVE_ICARUS, reason="iverilog not installed (bash .ci/bootstrap installs it)")


@pytest.mark.hdl
@icarus
@pytest.mark.parametrize("spec, pipeline", [("int:24", None), ("fixed:21.2", 2), ("int:8", None), ("fixed:6.3", 1)])
def test_verilog_on_icarus_equals_the_evaluator(spec, pipeline, tmp_path):
    """Random words and every threshold's edges (its word and the one above), the format's ends included; int:8
    and fixed:6.3 cut thresholds off at both ends (constant bits)."""
    graph, fmt = table_graph(), parse_raw_format(spec)
    raw = edge_values(graph, fmt, 300, seed=1)
    raw[:2] = [[fmt.lo / (1 << fmt.frac)] * 3, [fmt.hi / (1 << fmt.frac)] * 3]
    bits = evaluate.encode(graph, raw)
    result = hdl_sim.simulate(graph, bits, pipeline=pipeline, raw=raw, raw_format=fmt, build_root=tmp_path)
    assert result.ok, result.summary()
    design = hardware.lower(graph, 6, raw_input=fmt)
    result = hdl_sim.simulate_design(graph, design, bits, raw, pipeline=pipeline, build_root=tmp_path)
    assert result.ok, result.summary()


@pytest.mark.hdl
@icarus
def test_compile_verify_with_a_fixed_point_input(tmp_path, capsys):
    path = tmp_path / "table.npz"
    formats.save_npz(table_graph(), path)
    for style in ("gates", "luts"):
        code, out, err = _lgn(["compile", str(path), "--target", "verilog", "--style", style, "--input",
                               "fixed:21.2", "--out", str(tmp_path / style), "--verify"], capsys)  # fmt: skip
        assert code == 0, out + err
        assert out.strip().endswith("2000 vectors, 0 mismatches")


@pytest.mark.hdl
def test_the_ports_parse_as_documented():
    graph, fmt = table_graph(), RawFormat(21, 2)
    text = verilog_emit.emit_verilog(graph, raw_input=fmt)["lgn_net.v"]
    hdl_tools.parse_check(text, "lgn_net", {"features": 63, "scores": 3 * 3, "class_out": 2})


@pytest.mark.hdl
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_synth_reports_the_encoder_of_a_wide_format(tmp_path, capsys):
    path = tmp_path / "table.npz"
    formats.save_npz(table_graph(), path)
    code, out, err = _lgn(["synth", str(path), "--input", "int:24", "--no-simplify", "--timeout", "300"], capsys)
    assert code == 0, err
    assert "raw features: int:24 (signed two's complement -8388608..8388607) into the encoder" in out
    encoder = next(line for line in out.splitlines() if line.strip().startswith("encoder "))
    assert int(encoder.split()[1]) > 0
    with pytest.raises(LgnError, match="no encoder"):
        raw_input.resolve_input(tiny_graph(), "int:8")
