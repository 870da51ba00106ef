"""The lgn command line: the documented flows, exit codes, and one clear line for bad input."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lgn.cli import main
from lgn.compiler import formats
from lgn.compiler.ir import Encoder
from lgn.compiler.random_graph import random_layered


def run(capsys, *argv):
    """(exit code, stdout, stderr) of ``lgn ARGV``; argparse's own errors included."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def net(tmp_path, capsys):
    path = tmp_path / "g.npz"
    code, out, _ = run(
        capsys,
        "random",
        "--inputs",
        "20",
        "--layers",
        "4",
        "--width",
        "60",
        "--classes",
        "3",
        "--pass-through",
        "0.5",
        "--seed",
        "1",
        "--out",
        str(path),
    )
    assert code == 0 and "240 gates" in out
    return path


def test_random_info_simplify_verify(net, tmp_path, capsys):
    code, out, _ = run(capsys, "info", str(net))
    assert code == 0
    for word in ("inputs      20", "gates       240", "depth       4", "classes     3", "pass-throughs"):
        assert word in out
    simple = tmp_path / "s.npz"
    code, out, _ = run(capsys, "simplify", str(net), "--out", str(simple), "--check", "-v")
    assert code == 0 and "gates: 240 -> " in out and "hash_structure" in out
    lut = tmp_path / "l.txt"
    code, out, _ = run(capsys, "simplify", str(net), "--out", str(lut), "--lut", "6")
    assert code == 0 and "6-input LUTs" in out
    assert lut.read_text().startswith("lgn-gategraph v1")
    for other in (simple, lut):
        code, out, _ = run(capsys, "verify", str(net), "--against", str(other), "--vectors", "500")
        assert code == 0
        assert out.strip().splitlines()[-1] == f"{2 + 2 * 20 + 500} vectors, 0 mismatches"


def test_verify_reports_mismatches_with_exit_1(net, tmp_path, capsys):
    g = formats.load_npz(net)
    tables = g.tables.copy()
    tables[-1] ^= np.uint64(0xF)  # flip one output gate
    bad = tmp_path / "bad.npz"
    formats.save_npz(g.replace(tables=tables), bad)
    code, out, _ = run(capsys, "verify", str(net), "--against", str(bad), "--vectors", "200")
    assert code == 1
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"{2 + 40 + 200} vectors, ") and not last.endswith(" 0 mismatches")


def test_verify_small_nets_exhaustively(tmp_path, capsys):
    path = tmp_path / "g.npz"
    run(
        capsys,
        "random",
        "--inputs",
        "10",
        "--layers",
        "2",
        "--width",
        "8",
        "--classes",
        "2",
        "--out",
        str(path),
    )
    code, out, _ = run(capsys, "verify", str(path), "--against", str(path))
    assert code == 0 and "exhaustive" in out and out.strip().endswith("1024 vectors, 0 mismatches")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "/nonexistent/g.npz"], "cannot read"),
        (["random", "--width", "7", "--classes", "2", "--out", "x.npz"], "multiple of --classes"),
        (["random", "--arity", "7", "--out", "x.npz"], "argument --arity: must be between 1 and 6, got 7"),
        (
            ["random", "--pass-through", "1.5", "--out", "x.npz"],
            "--pass-through: must be a finite number at least 0 and at most 1",
        ),
        (
            ["random", "--inputs", "8", "--width", "4", "--classes", "2", "--out", "/nonexistent/dir/x.npz"],
            "cannot write",
        ),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(argv, message, capsys):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_files_are_one_line_and_exit_2(tmp_path, capsys, net):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00" * 100)
    truncated = tmp_path / "trunc.npz"
    truncated.write_bytes(net.read_bytes()[:300])
    for path in (junk, truncated):
        for argv in (
            ["info", str(path)],
            ["simplify", str(path), "--out", str(tmp_path / "o.npz")],
            ["verify", str(net), "--against", str(path)],
        ):
            code, _, err = run(capsys, *argv)
            assert code == 2 and err.startswith("lgn: error: ") and err.count("\n") == 1


def test_verify_refuses_incomparable_graphs(tmp_path, capsys, net):
    other = tmp_path / "o.npz"
    run(
        capsys,
        "random",
        "--inputs",
        "21",
        "--layers",
        "1",
        "--width",
        "6",
        "--classes",
        "3",
        "--out",
        str(other),
    )
    code, _, err = run(capsys, "verify", str(net), "--against", str(other))
    assert code == 2 and "not comparable" in err


def test_lut_size_out_of_range(capsys, net, tmp_path):
    code, _, err = run(capsys, "simplify", str(net), "--out", str(tmp_path / "o.npz"), "--lut", "9")
    assert code == 2 and "argument --lut: must be between 1 and 6, got 9" in err


def test_every_command_has_help(capsys):
    """``--help`` of every command prints and exits 0 (a stray % in a help text once broke lgn train's)."""
    from lgn.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    for command in ["", *commands]:
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"] if command else ["--help"])
        assert exc.value.code == 0, command
        assert "usage: lgn" in capsys.readouterr().out


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simplify"])
    assert exc.value.code == 2


def test_console_entry_point_runs_as_module(net):
    proc = subprocess.run([sys.executable, "-m", "lgn", "info", str(net)], capture_output=True, text=True)
    assert proc.returncode == 0 and "gates       240" in proc.stdout


def test_compile_to_verilog_writes_the_module_and_its_readme(net, tmp_path, capsys):
    folder = tmp_path / "v"  # a new folder: lgn writes only into a new, empty or lgn-written one
    code, out, _ = run(capsys, "compile", str(net), "--target", "verilog", "--pipeline", "2", "--out", str(folder))
    assert code == 0 and "pipelined, latency" in out
    text = (folder / "lgn_net.v").read_text()
    assert text.startswith("// lgn_net.v") and "module lgn_net (" in text and "always @(posedge clk)" in text
    assert "`out_valid`" in (folder / "README.md").read_text()


@pytest.mark.hdl
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed (bash .ci/bootstrap installs it)")
def test_verify_the_verilog_on_icarus(net, capsys):
    code, out, _ = run(capsys, "verify", str(net), "--backend", "verilog", "--sim", "icarus", "--vectors", "60")
    assert code == 0 and "Verilog on icarus vs evaluator" in out
    assert out.strip().splitlines()[-1] == f"{2 + 2 * 20 + 60} vectors, 0 mismatches"


@pytest.mark.hdl
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed (bash .ci/bootstrap installs it)")
def test_synth_reports_every_part_as_it_finishes(net, capsys):
    code, out, _ = run(capsys, "synth", str(net), "--timeout", "600")
    assert code == 0
    for part in ("gate network", "GroupSum", "argmax", "whole design (flat)"):
        assert any(line.strip().startswith(part) for line in out.splitlines()), part
    assert 'abc -lut 6 -script "+strash;dc2;dretime;if"' in out  # the whole design's script is named beside its count
    assert "&fraig" not in out and out.startswith("tools: yosys ")
    assert "GroupSum, LUT-native" in out and "whole design, LUT-native" in out and "smaller: " in out


def test_synth_time_limit_is_one_clear_line(net, capsys):
    code, _, err = run(capsys, "synth", str(net), "--timeout", "0")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("lgn: error: argument --timeout: must be a finite number above 0")


def test_bench_prints_the_table(net, capsys):
    code, out, _ = run(capsys, "bench", str(net), "--no-baseline", "--samples", "3000")
    assert code == 0
    assert "lgn C" in out and "numpy reference evaluator" in out and "samples/s" in out
    assert "from uint8 pixels" not in out  # no encoder: no raw-feature path


def test_bench_of_a_model_with_an_encoder_measures_pixels_and_the_streaming_floor(tmp_path, capsys):
    from lgn.compiler import formats

    from .strategies import tiny_encoder_graph

    formats.save_npz(tiny_encoder_graph(), tmp_path / "e.npz")
    code, out, _ = run(capsys, "bench", str(tmp_path / "e.npz"), "--no-baseline", "--samples", "3000")
    assert code == 0
    assert "1 thread, from uint8 pixels" in out and "pixel-streaming floor" in out and "from packed bits" in out
    assert re.search(r"against the floor, one thread, 7 alternating rounds: [0-9.]+ M against [0-9.]+ M", out)
    assert re.search(r"samples/s, \d+% of the floor", out)


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from lgn.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv", [["train", "--steps", "1"], ["demo", "--steps", "1"]])
def test_a_command_whose_extra_is_missing_names_the_extra(argv, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"lgn: error: lgn {argv[0]} needs the [train] extra") and "pip install" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_the_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    """README's "From Python" block, run as written on a graph file with an encoder."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("From Python:\n\n```python\n", 1)[1].split("```", 1)[0]
    graph = random_layered(64, 3, 40, classes=4, pass_through=0.3, seed=2)
    thresholds = np.random.default_rng(1).uniform(0, 255, 64)
    formats.save_npz(graph.replace(encoder=Encoder(64, np.arange(64), thresholds)), tmp_path / "graph.npz")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LGN_CACHE_DIR", str(tmp_path / "cache"))
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip().endswith("1000 vectors, 0 mismatches")


@pytest.mark.parametrize(
    "options, shift",
    [([], 1), (["--dataset", "fashion-mnist"], 1), (["--dataset", "digits"], 0), (["--dataset", "iris"], 0),
     (["--dataset", "digits", "--shift", "2"], 2), (["--shift", "0"], 0)],
)  # fmt: skip
def test_the_demo_shifts_28_by_28_images_unless_told(options, shift):
    """DEMO's one-pixel shift helps MNIST (97.0% against 96.5% in the same steps), costs 8 x 8 digits 3 points
    and cannot apply to tables (not square images): the default depends on the dataset."""
    from lgn.cli import build_parser
    from lgn.cli.demo import resolve_defaults
    from lgn.training.config import DEMO

    args = build_parser().parse_args(["demo", *options])
    resolve_defaults(args)
    assert args.shift == shift and DEMO.shift == 1
