"""The lgn command line: the documented flows, exit codes, and one clear line for bad input."""

import subprocess
import sys

import numpy as np
import pytest

from lgn.cli import main
from lgn.compiler import formats


def run(capsys, *argv):
    code = main(list(argv))
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
        (["random", "--arity", "7", "--out", "x.npz"], "--arity must be 1..6"),
        (["random", "--pass-through", "1.5", "--out", "x.npz"], "fraction in [0, 1]"),
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
    assert code == 2 and "--lut must be between 1 and 6" in err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simplify"])
    assert exc.value.code == 2


def test_console_entry_point_runs_as_module(net):
    proc = subprocess.run([sys.executable, "-m", "lgn", "info", str(net)], capture_output=True, text=True)
    assert proc.returncode == 0 and "gates       240" in proc.stdout
