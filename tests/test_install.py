"""A non-editable install from a clean copy of the repository works from any folder: the package carries its
templates, kernel sources and testbench, and only the ``lgn`` namespace is installed."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.hdl,
    pytest.mark.skipif(
        shutil.which("iverilog") is None or shutil.which("yosys") is None or shutil.which("git") is None,
        reason="git, iverilog and yosys are needed (bash .ci/bootstrap installs them)",
    ),
]


def _clean_copy(target: Path) -> None:
    """What a clone of this working tree holds: tracked files and untracked ones git does not ignore (no venv,
    no build products, no caches)."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, names):
        source = ROOT / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name.decode())


def _run(command: list[str], cwd: Path, timeout: float = 900) -> str:
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{command} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_a_non_editable_install_works_from_another_folder(tmp_path):
    source, elsewhere = tmp_path / "clone", tmp_path / "elsewhere"
    source.mkdir()
    elsewhere.mkdir()
    _clean_copy(source)
    venv = tmp_path / "v"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python, lgn = venv / "bin" / "python", venv / "bin" / "lgn"
    _run([str(python), "-m", "pip", "install", "-q", ".[train,hdl]"], source, timeout=1800)
    shutil.rmtree(source)  # nothing may still point into the source folder

    assert subprocess.run([str(python), "-c", "import compiler"], cwd=elsewhere).returncode != 0
    _run([str(python), "-c", "import lgn.compiler, lgn.training, lgn.kernels"], elsewhere)
    _run([str(lgn), "random", "--inputs", "12", "--layers", "2", "--width", "20", "--classes", "2", "--out", "g.npz"],
         elsewhere)  # fmt: skip
    out = _run([str(lgn), "verify", "g.npz", "--backend", "verilog", "--sim", "icarus"], elsewhere)
    assert out.strip().endswith("4096 vectors, 0 mismatches")
    out = _run([str(lgn), "bench", "g.npz", "--no-baseline", "--samples", "3000"], elsewhere)
    assert "lgn C" in out
    out = _run([str(lgn), "demo", "--dataset", "digits", "--steps", "300", "--quiet", "--out", "demo"], elsewhere)
    assert "every pair of implementations agrees" in out
    assert (elsewhere / "demo" / "report.md").exists()


def test_the_compiler_installs_alone_and_commands_name_their_extra(tmp_path):
    """``pip install .`` is the compiler (numpy, jinja2, cffi): graphs compile to C; training and simulation
    exit 2 naming the extra they need."""
    source, elsewhere = tmp_path / "clone", tmp_path / "elsewhere"
    source.mkdir()
    elsewhere.mkdir()
    _clean_copy(source)
    venv = tmp_path / "v"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python, lgn = venv / "bin" / "python", venv / "bin" / "lgn"
    _run([str(python), "-m", "pip", "install", "-q", "."], source, timeout=900)
    assert subprocess.run([str(python), "-c", "import torch"], cwd=elsewhere).returncode != 0
    _run([str(lgn), "random", "--inputs", "12", "--layers", "2", "--width", "20", "--classes", "2", "--out", "g.npz"],
         elsewhere)  # fmt: skip
    _run([str(lgn), "compile", "g.npz", "--out", "c"], elsewhere)
    out = _run([str(lgn), "verify", "g.npz", "--backend", "c", "--isa", "portable"], elsewhere)
    assert out.strip().endswith("0 mismatches")
    for argv, extra in ((["train", "--steps", "1"], "train"), (["verify", "g.npz", "--backend", "verilog"], "hdl")):
        proc = subprocess.run([str(lgn), *argv], cwd=elsewhere, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and f"[{extra}]" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
