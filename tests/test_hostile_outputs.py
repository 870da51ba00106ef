"""Round 3 of hostile testing, outputs and locks (issue 35; docs/reliability.md, "Round 3: outputs, locks").

Every command that writes follows one rule (lgn.compiler.outputs): an output that is an input of the same
command (by path, symbolic link, hard link) is refused before any work; an existing file of another kind is
replaced only with ``--force``; a folder is written only when new, empty or lgn's, and no file of the user's
in it is replaced; every output is proved writable by creating a file there. One training writes a model at
a time (lgn.compiler.output_lock). Each case runs in a folder holding a table, its test rows, a model trained
on it, a graph and whatever the case adds; it must end with exit 2, one ``lgn: error:`` line that says why,
no traceback, and every file of the folder byte-identical (a snapshot of every file before and after).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lgn.cli import main
from lgn.compiler import outputs
from lgn.compiler.output_lock import OutputLock, _process_start

torch = pytest.importorskip("torch")

CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {}


def case(name: str, says: str):
    """Register a case: its builder makes the folder's extra files and returns the command line (run with the
    folder as the working directory); ``says`` is a fragment the error line must hold."""

    def register(build):
        CASES[name] = (build, says)
        return build

    return register


# ---- what every case starts from ---------------------------------------------------------------------------
def _table(rng: np.random.Generator, rows: int) -> str:
    x = rng.normal(size=(rows, 3)).round(3)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return "a,b,c,y\n" + "".join(f"{r[0]},{r[1]},{r[2]},{t}\n" for r, t in zip(x.tolist(), y.tolist()))


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of a table (d.csv), its test rows (t.csv), a model trained on them (m.st) and its graph
    (g.npz)."""
    from lgn.training.config import TrainConfig
    from lgn.training.trainer import train

    root = tmp_path_factory.mktemp("made")
    rng = np.random.default_rng(35)
    (root / "d.csv").write_text(_table(rng, 200))
    (root / "t.csv").write_text(_table(rng, 40))
    cfg = TrainConfig(
        data=str(root / "d.csv"), test=str(root / "t.csv"), label="y", layers=2, width=20, steps=10,
        eval_every=10, out=str(root / "m.st"), progress=False,
    )  # fmt: skip
    train(cfg)
    assert main(["export", str(root / "m.st"), "--out", str(root / "g.npz")]) == 0
    return {name: (root / name).read_bytes() for name in ("d.csv", "t.csv", "m.st", "g.npz")}


def populate(folder: Path, made: dict[str, bytes]) -> None:
    for name, data in made.items():
        (folder / name).write_bytes(data)


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: a file's bytes, a link's target, a folder's mark."""
    seen: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            seen[name] = ("link", os.readlink(path))
        elif path.is_dir():
            seen[name] = "folder"
        else:
            seen[name] = path.read_bytes()
    return seen


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(code: int, out: str, err: str, says: str = "") -> None:
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("lgn: error: "), err
    assert says in lines[0], (says, lines[0])
    assert "Traceback" not in out + err


# ---- 1: outputs that are inputs, or files of another kind -----------------------------------------------------
@case("predict --out the --data table", "--out and --data name the same file")
def _(tmp):
    return ["predict", "m.st", "--data", "d.csv", "--out", "d.csv"]


@case("predict --out the model", "--out and the model name the same file")
def _(tmp):
    return ["predict", "m.st", "--data", "d.csv", "--out", "m.st"]


@case("predict --out the table spelled another way", "--out and --data name the same file")
def _(tmp):
    (tmp / "sub").mkdir()
    return ["predict", "m.st", "--data", "d.csv", "--out", "./sub/..//d.csv"]


@case("predict --out a table of the user's", "is a file lgn did not write, not predictions: replacing it needs --force")
def _(tmp):
    shutil.copy(tmp / "d.csv", tmp / "mine.csv")
    return ["predict", "m.st", "--data", "d.csv", "--out", "mine.csv"]


@case("predict --out a device", "/dev/null is not a regular file")
def _(tmp):
    return ["predict", "m.st", "--data", "d.csv", "--out", "/dev/null"]


@case("train --out the --data table", "--out and --data name the same file")
def _(tmp):
    return ["train", "--data", "d.csv", "--label", "y", "--steps", "2", "--out", "d.csv"]


@case("train --out the --test table", "--out and --test name the same file")
def _(tmp):
    return ["train", "--data", "d.csv", "--test", "t.csv", "--label", "y", "--steps", "2", "--out", "t.csv"]


@case("train --metrics the --data table through a symlink", "--metrics and --data name the same file")
def _(tmp):
    (tmp / "metrics.jsonl").symlink_to("d.csv")
    return ["train", "--data", "d.csv", "--label", "y", "--steps", "2", "--out", "n.st", "--metrics", "metrics.jsonl"]


@case("train --metrics and --out one file", "--metrics and --out name the same file")
def _(tmp):
    return ["train", "--data", "d.csv", "--label", "y", "--steps", "2", "--out", "n.st", "--metrics", "n.st"]


@case("train --out over a graph", "is a gate graph, not a model checkpoint: replacing it needs --force")
def _(tmp):
    return ["train", "--data", "d.csv", "--label", "y", "--steps", "2", "--out", "g.npz"]


@case("train --out under /proc", "cannot write in /proc")
def _(tmp):
    return ["train", "--data", "d.csv", "--label", "y", "--steps", "2", "--out", "/proc/lgn-round3/m.st"]


@case("train --out a model another run is writing", "is being written by another run (process 1")
def _(tmp):
    # process 1 runs for as long as the machine does: a live writer that no test has to start or stop
    holder = {"pid": 1, "host": os.uname().nodename, "started": _process_start(1), "since": time.time()}
    (tmp / "m.st.lock").write_text(json.dumps({**holder, "token": "1-test"}))
    return ["train", "--data", "d.csv", "--label", "y", "--steps", "2", "--out", "m.st"]


@case("export onto its checkpoint", "--out and the model name the same file")
def _(tmp):
    return ["export", "m.st", "--out", "m.st"]


@case("export onto a symlink to its checkpoint", "--out and the model name the same file")
def _(tmp):
    (tmp / "link.st").symlink_to(tmp / "m.st")
    return ["export", "m.st", "--out", "link.st"]


@case("export onto a hard link to its checkpoint", "--out and the model name the same file")
def _(tmp):
    os.link(tmp / "m.st", tmp / "hard.st")
    return ["export", "m.st", "--out", "hard.st"]


@case("export over a table", "is a file lgn did not write, not a gate graph: replacing it needs --force")
def _(tmp):
    return ["export", "m.st", "--out", "d.csv"]


@case("random over a checkpoint", "is a model checkpoint, not a gate graph: replacing it needs --force")
def _(tmp):
    return ["random", "--inputs", "8", "--layers", "1", "--width", "4", "--classes", "2", "--out", "m.st"]


@case("simplify onto its graph through a linked folder", "--out and the graph name the same file")
def _(tmp):
    (tmp / "here").symlink_to(tmp)
    return ["simplify", "g.npz", "--out", "here/g.npz"]


# ---- 1: folders ---------------------------------------------------------------------------------------------
def _project(folder: Path, *names: str) -> None:
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_text(f"the user's {name}\n")


@case("compile --out a folder of the user's", "--out lib holds files lgn did not write (Makefile, README.md, main.c)")
def _(tmp):
    _project(tmp / "lib", "README.md", "Makefile", "main.c")
    return ["compile", "g.npz", "--target", "c", "--isa", "portable", "--out", "lib"]


@case("compile --out the project folder", "--out . holds files lgn did not write")
def _(tmp):
    _project(tmp, "README.md", "Makefile")
    return ["compile", "g.npz", "--target", "c", "--isa", "portable", "--out", "."]


@case("compile --prefix g --out . over the user's g.c", "--out . holds files lgn did not write")
def _(tmp):
    _project(tmp, "g.c")
    return ["compile", "g.npz", "--prefix", "g", "--isa", "portable", "--out", "."]


@case("compile into lgn's folder over a file edited since", "README.md was changed since lgn wrote it")
def _(tmp):
    assert main(["compile", "g.npz", "--isa", "portable", "--out", "lib"]) == 0
    with (tmp / "lib" / "README.md").open("a") as handle:
        handle.write("my notes\n")
    return ["compile", "g.npz", "--isa", "portable", "--out", "lib"]


@case("compile into lgn's folder over a file of the user's", "b.c is not listed in .lgn-manifest.json")
def _(tmp):
    assert main(["compile", "g.npz", "--isa", "portable", "--prefix", "a", "--out", "lib"]) == 0
    _project(tmp / "lib", "b.c")
    return ["compile", "g.npz", "--isa", "portable", "--prefix", "b", "--out", "lib"]


@case("compile --target verilog into a folder of the user's", "--out hdl holds files lgn did not write (README.md)")
def _(tmp):
    _project(tmp / "hdl", "README.md")
    return ["compile", "g.npz", "--target", "verilog", "--out", "hdl"]


@case("compile --out a file", "--out d.csv is a file, not a folder")
def _(tmp):
    return ["compile", "g.npz", "--out", "d.csv"]


@case("synth --pnr --out a regular file", "--out afile is a file, not a folder")
def _(tmp):
    (tmp / "afile").write_text("mine\n")
    return ["synth", "g.npz", "--target", "ice40", "--pnr", "--out", "afile"]


@case("synth --pnr --out under /proc", "cannot write in /proc")
def _(tmp):
    return ["synth", "g.npz", "--target", "ice40", "--pnr", "--out", "/proc/lgn-round3"]


@case("synth --pnr --out a folder of the user's", "--out board holds files lgn did not write (top.pcf)")
def _(tmp):
    _project(tmp / "board", "top.pcf")
    return ["synth", "g.npz", "--target", "ice40", "--pnr", "--out", "board"]


@case("demo --out a folder of the user's", "--out proj holds files lgn did not write (README.md)")
def _(tmp):
    _project(tmp / "proj", "README.md")
    return ["demo", "--data", "d.csv", "--label", "y", "--no-synth", "--quiet", "--out", "proj"]


@case("demo --data the test.csv of its own folder", "--out and --data name the same file")
def _(tmp):
    (tmp / "demo").mkdir()
    shutil.copy(tmp / "d.csv", tmp / "demo" / "test.csv")
    manifest = {"written_by": "lgn", "version": 1, "files": {"test.csv": outputs._digest(tmp / "demo" / "test.csv")}}
    (tmp / "demo" / outputs.MANIFEST).write_text(json.dumps(manifest))
    return ["demo", "--data", "demo/test.csv", "--label", "y", "--no-synth", "--quiet", "--out", "demo"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_3_output_case_is_one_line_exit_2_and_changes_nothing(name, made, tmp_path, capsys, monkeypatch):
    build, says = CASES[name]
    populate(tmp_path, made)
    monkeypatch.chdir(tmp_path)
    argv = build(tmp_path)
    capsys.readouterr()
    before = snapshot(tmp_path)
    start = time.perf_counter()
    code, out, err = run(argv, capsys)
    assert_refused(code, out, err, says)
    assert snapshot(tmp_path) == before, f"{name}: the folder changed"
    assert time.perf_counter() - start < 30, f"{name}: refused only after the work"


def test_every_command_that_writes_has_a_case():
    commands = {name.split()[0] for name in CASES}
    assert {"train", "predict", "export", "random", "simplify", "compile", "synth", "demo"} <= commands


# ---- 1: a property over argument pairs ---------------------------------------------------------------------
# Each command with the inputs it reads; the output argument replaced by one of them, reached some way.
TRAIN = ["train", "--data", "d.csv", "--test", "t.csv", "--label", "y", "--steps", "1"]
COMMANDS: dict[str, tuple[Callable[[str], list[str]], tuple[str, ...]]] = {
    "predict": (lambda out: ["predict", "m.st", "--data", "d.csv", "--out", out], ("m.st", "d.csv")),
    "export": (lambda out: ["export", "m.st", "--out", out], ("m.st",)),
    "simplify": (lambda out: ["simplify", "g.npz", "--out", out], ("g.npz",)),
    "train": (lambda out: [*TRAIN, "--out", out], ("d.csv", "t.csv")),
    "train --metrics": (lambda out: [*TRAIN, "--out", "n.st", "--metrics", out], ("d.csv", "t.csv")),
    "compile": (lambda out: ["compile", "g.npz", "--isa", "portable", "--out", out], ("g.npz",)),
    "synth --pnr": (lambda out: ["synth", "g.npz", "--target", "ice40", "--pnr", "--out", out], ("g.npz",)),
}
ALIASES = ("as given", "./", "sub/../", "absolute", "symlink", "symlink to a symlink", "hard link", "linked folder",
           "double slash")  # fmt: skip


def alias(folder: Path, name: str, how: str) -> str:
    """A path to ``folder/name`` spelled or linked per ``how`` (made in ``folder``, before the snapshot)."""
    if how == "as given":
        return name
    if how in ("./", "sub/../"):
        (folder / "sub").mkdir(exist_ok=True)
        return how + name
    if how == "absolute":
        return str(folder / name)
    if how == "double slash":
        return f".//{name}"
    if how == "linked folder":
        (folder / "here").symlink_to(".")
        return f"here/{name}"
    target = folder / f"alias-{name}"
    if how == "hard link":
        os.link(folder / name, target)
    else:
        (folder / f"link-{name}").symlink_to(name)
        target.symlink_to(f"link-{name}" if how == "symlink to a symlink" else name)
    return target.name


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # capsys is read before every example
@given(command=st.sampled_from(sorted(COMMANDS)), pick=st.integers(0, 1), how=st.sampled_from(ALIASES))
def test_an_output_that_is_an_input_however_reached_is_refused(made, capsys, command, pick, how):
    build, inputs = COMMANDS[command]
    with tempfile.TemporaryDirectory() as place:
        folder = Path(place)
        populate(folder, made)
        out = alias(folder, inputs[pick % len(inputs)], how)
        with contextlib.chdir(folder):
            before = snapshot(folder)
            capsys.readouterr()
            code, printed, err = run(build(out), capsys)
            assert_refused(code, printed, err)
            assert snapshot(folder) == before


# ---- 1: what the rule lets through -------------------------------------------------------------------------
def test_an_output_of_its_own_kind_is_replaced_and_force_replaces_another(made, tmp_path, capsys, monkeypatch):
    populate(tmp_path, made)
    monkeypatch.chdir(tmp_path)
    net = ["--inputs", "8", "--layers", "1", "--width", "4", "--classes", "2"]
    for _ in range(2):  # the second run replaces the first's file: the kind lgn writes there
        assert main(["export", "m.st", "--out", "e.npz"]) == 0
        assert main(["predict", "m.st", "--data", "d.csv", "--out", "p.csv", "--quiet"]) == 0
        assert main(["random", *net, "--out", "r.txt"]) == 0
    (tmp_path / "empty.npz").write_bytes(b"")  # an empty file holds nothing to lose
    assert main(["export", "m.st", "--out", "empty.npz"]) == 0
    assert main(["random", *net, "--out", "d.csv", "--force"]) == 0
    assert outputs.file_kind(tmp_path / "d.csv") == outputs.GRAPH
    assert main(["predict", "m.st", "--data", "t.csv", "--out", "m.st", "--force"]) == 2  # an input, even so
    assert "name the same file" in capsys.readouterr().err


def test_lgn_folders_are_written_again_and_the_users_files_in_them_kept(made, tmp_path, capsys, monkeypatch):
    populate(tmp_path, made)
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "g.npz", "--isa", "portable", "--out", "lib"]) == 0
    (tmp_path / "lib" / "notes.txt").write_text("mine\n")
    assert main(["compile", "g.npz", "--isa", "portable", "--out", "lib"]) == 0
    assert main(["compile", "g.npz", "--isa", "portable", "--prefix", "other", "--out", "lib"]) == 0
    assert (tmp_path / "lib" / "notes.txt").read_text() == "mine\n"
    listed = json.loads((tmp_path / "lib" / outputs.MANIFEST).read_text())["files"]
    assert "notes.txt" not in listed and {"lgn_net.c", "other.c", "Makefile", "README.md", "main.c"} <= set(listed)
    assert listed["other.c"] == outputs._digest(tmp_path / "lib" / "other.c")
    (tmp_path / "empty").mkdir()
    assert main(["compile", "g.npz", "--isa", "portable", "--out", "empty"]) == 0


# ---- 2: one writer per model ---------------------------------------------------------------------------------
def _train_argv(out: str = "m.st", steps: int = 10) -> list[str]:
    # --tau given: no tau search (nine trial runs) before the run these tests race and interrupt
    return ["train", "--data", "d.csv", "--test", "t.csv", "--label", "y", "--layers", "2", "--width", "20",
            "--steps", str(steps), "--eval-every", "5", "--tau", "10", "--no-progress", "--out", out]  # fmt: skip


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_second_training_to_a_locked_model_is_refused_naming_the_first(made, tmp_path, capsys, monkeypatch):
    populate(tmp_path, made)
    monkeypatch.chdir(tmp_path)
    assert main(_train_argv()) == 0
    capsys.readouterr()
    before = snapshot(tmp_path)
    with OutputLock(tmp_path / "m.st"):  # as another run would hold it (this process: alive)
        code, out, err = run(_train_argv(), capsys)
        assert_refused(code, out, err, f"is being written by another run (process {os.getpid()}")
        assert snapshot(tmp_path) == {**before, "m.st.lock": (tmp_path / "m.st.lock").read_bytes()}
    assert snapshot(tmp_path) == before  # the holder's lock goes with it; its model and metrics whole
    records = _records(tmp_path / "m.st.metrics.jsonl")
    assert len({r["run"] for r in records}) == 1 and records[-1]["final"]
    assert records[0]["run"].startswith(f"{os.getpid()}-")


def test_a_stale_lock_is_taken_over_with_a_line(made, tmp_path, capsys, monkeypatch):
    populate(tmp_path, made)
    monkeypatch.chdir(tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)  # a process that has ended
    (tmp_path / "m.st.lock").write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "since": 0}))
    code, _, err = run(_train_argv(), capsys)
    assert code == 0 and f"m.st.lock was left by process {pid}, which no longer runs: taken over" in err
    assert not (tmp_path / "m.st.lock").exists()


def test_a_failed_training_leaves_no_lock_and_no_folder(made, tmp_path, capsys, monkeypatch):
    populate(tmp_path, made)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("a,b,y\n1,x,0\n")
    before = snapshot(tmp_path)
    argv = ["train", "--data", "bad.csv", "--label", "y", "--steps", "2", "--out", "new/deeper/m.st"]
    code, out, err = run(argv, capsys)
    assert_refused(code, out, err)
    assert snapshot(tmp_path) == before


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)


@pytest.mark.slow
def test_two_trainings_to_one_model_at_once(made, tmp_path, capsys, monkeypatch):
    """One training in a subprocess, a second to the same model here while the first runs: the second is refused
    with one line naming the first, whose model and metrics are whole."""
    populate(tmp_path, made)
    monkeypatch.chdir(tmp_path)
    argv = [*_train_argv(steps=3000), "--eval-every", "500"]
    first = subprocess.Popen([sys.executable, "-m", "lgn", *argv], env={**os.environ, "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(tmp_path / "m.st.lock", first)
    code, out, err = run(_train_argv(steps=5), capsys)
    still_running = first.poll() is None
    assert_refused(code, out, err, f"another run (process {first.pid}")
    _, first_err = first.communicate(timeout=600)
    assert first.returncode == 0 and still_running, first_err
    from lgn.training.checkpoint import load_checkpoint

    load_checkpoint(tmp_path / "m.st")
    records = _records(tmp_path / "m.st.metrics.jsonl")
    assert {r["run"] for r in records} == {records[0]["run"]} and records[0]["run"].startswith(f"{first.pid}-")
    assert [r["step"] for r in records] == [500, 1000, 1500, 2000, 2500, 3000, 3000] and records[-1]["final"]
    assert not (tmp_path / "m.st.lock").exists()


@pytest.mark.slow
def test_sigterm_during_training_removes_the_lock(made, tmp_path):
    populate(tmp_path, made)
    proc = subprocess.Popen([sys.executable, "-m", "lgn", *_train_argv(steps=100_000)], cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(tmp_path / "m.st.lock", proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err
    assert not (tmp_path / "m.st.lock").exists()
