"""``lgn train --resume OUT.resume``: a run interrupted (Ctrl-C, or killed outright) and resumed ends with the
same checkpoint, byte for byte, as the run never interrupted; damaged, foreign and contradicted resume
states are refused in one line."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

from lgn.cli import main  # noqa: E402
from lgn.compiler import formats  # noqa: E402
from lgn.training import resume  # noqa: E402
from lgn.training.checkpoint import load_checkpoint, safetensors_bytes  # noqa: E402
from lgn.training.export import to_graph  # noqa: E402

# Every piece of state a run carries: learned wiring (two parameter groups in Adam), the gumbel estimator (the
# process's torch generator), an annealed temperature, a cosine learning rate, shifted images (the sampler
# draws the shifts) and a validation split choosing the checkpoint (with tau 1, the best evaluation is at step
# 60 of 120 on this seed: the best network kept from before the interruption is the one written at the end).
ARGS = ["--dataset", "digits", "--layers", "2", "--width", "100", "--connections", "learned", "--candidates", "4",
        "--estimator", "gumbel", "--temperature", "1,0.3", "--lr-schedule", "cosine", "--lr", "0.05", "--tau", "1",
        "--shift", "1", "--steps", "120", "--eval-every", "20", "--batch-size", "32", "--seed", "3",
        "--no-progress"]  # fmt: skip
INTERRUPTED_AT = 90  # the step whose loss is never computed


def _records(path: Path) -> list[dict]:
    """The metrics records without what differs between runs (the run's name, the seconds)."""
    lines = path.read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("run", "seconds")} for line in lines]


def _outcome(folder: Path) -> dict:
    """What a finished run left in ``folder``: the checkpoint's bytes, its exported graph's bytes, metrics."""
    model, encoder, info = load_checkpoint(folder / "m.st")
    return {
        "checkpoint": (folder / "m.st").read_bytes(),
        "graph": formats.to_npz_bytes(to_graph(model, encoder, info["names"])),
        "parameters": model.state_dict(),
        "metrics": _records(folder / "m.st.metrics.jsonl"),
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The run never interrupted, in a folder of its own (``--out m.st`` there, as every run here: the
    checkpoint records its configuration, the path included)."""
    folder = tmp_path_factory.mktemp("whole")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert main(["train", *ARGS, "--out", "m.st"]) == 0
    finally:
        os.chdir(cwd)
    assert not (folder / "m.st.resume").exists()  # a run that ends normally leaves no state behind
    return _outcome(folder)


def _interrupt_at(monkeypatch, step: int) -> None:
    """Ctrl-C arriving while step ``step`` computes its loss (in this process)."""
    from lgn.training import trainer

    calls = {"n": 0}
    real = trainer.nnf.cross_entropy

    def interrupted(logits, labels):
        calls["n"] += 1
        if calls["n"] == step:
            raise KeyboardInterrupt
        return real(logits, labels)

    monkeypatch.setattr(trainer.nnf, "cross_entropy", interrupted)


def _same_run(folder: Path, whole: dict) -> None:
    got = _outcome(folder)
    assert got["checkpoint"] == whole["checkpoint"]
    assert got["graph"] == whole["graph"]
    assert all(torch.equal(got["parameters"][k], v) for k, v in whole["parameters"].items())
    assert got["metrics"] == whole["metrics"]
    assert not (folder / "m.st.resume").exists()


def test_interrupted_and_resumed_run_ends_as_the_uninterrupted_one(uninterrupted, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _interrupt_at(monkeypatch, INTERRUPTED_AT)
    assert main(["train", *ARGS, "--out", "m.st"]) == 130
    assert "lgn train --resume m.st.resume continues the run after step 80" in capsys.readouterr().out
    assert resume.read_state("m.st.resume").step == 80  # the last evaluation's state
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    # the data options again, and settings equal to the run's, are taken
    assert main(["train", "--resume", "m.st.resume", "--dataset", "digits", "--seed", "3", "--no-progress"]) == 0
    assert "resuming m.st.resume after step 80 of 120" in capsys.readouterr().err
    _same_run(tmp_path, uninterrupted)


def test_resumed_between_evaluations(uninterrupted, tmp_path, monkeypatch):
    """With a state written after every step (the time-based save, made immediate), a run stopped in the
    middle of an evaluation interval resumes from the step before it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(resume, "SAVE_SECONDS", 0.0)
    _interrupt_at(monkeypatch, 33)
    assert main(["train", *ARGS, "--out", "m.st"]) == 130
    assert resume.read_state("m.st.resume").step == 32
    assert main(["train", "--resume", "m.st.resume"]) == 0  # the same flag-free command, twice: no double steps
    _same_run(tmp_path, uninterrupted)


# A run that blocks at a step after writing a marker, so that the test kills it at a known point.
BLOCKING = """
import os, sys, time
from pathlib import Path
from lgn.training import trainer
real, calls = trainer.nnf.cross_entropy, [0]
def blocking(logits, labels):
    calls[0] += 1
    if calls[0] == int(os.environ["BLOCK_AT"]):
        Path("blocked").write_text("")
        time.sleep(600)
    return real(logits, labels)
trainer.nnf.cross_entropy = blocking
from lgn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_run_resumes_through_the_command_line(uninterrupted, tmp_path, monkeypatch, capsys):
    """SIGKILL: no handler runs, the lock is left behind; the resumed run takes it over and ends the same."""
    env = {**os.environ, "BLOCK_AT": str(INTERRUPTED_AT)}
    command = [sys.executable, "-c", BLOCKING, "train", *ARGS, "--out", "m.st"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (tmp_path / "blocked").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "blocked").exists(), proc.stderr.read() if proc.poll() is not None else "timed out"
    finally:
        proc.kill()
        proc.communicate()
    assert (tmp_path / "m.st.lock").exists() and (tmp_path / "m.st.resume").exists()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", "m.st.resume"]) == 0
    assert "which no longer runs: taken over" in capsys.readouterr().err
    _same_run(tmp_path, uninterrupted)


@pytest.fixture
def interrupted(tmp_path, monkeypatch, capsys) -> Path:
    """A folder holding an interrupted run's ``m.st`` and ``m.st.resume`` (after step 40); the current folder."""
    monkeypatch.chdir(tmp_path)
    _interrupt_at(monkeypatch, 45)
    assert main(["train", *ARGS, "--out", "m.st"]) == 130
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    return tmp_path


def _refused(capsys, argv: list[str], message: str) -> None:
    """The command exits 2 with one line naming ``message``, and no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lgn: error: ") and message in lines[0], err


def test_settings_that_contradict_the_resumed_run_are_refused(interrupted, capsys):
    before = {p.name: p.read_bytes() for p in interrupted.iterdir()}
    state = ["train", "--resume", "m.st.resume"]
    # 0.01 is --lr's default: refused all the same, since it was given and the run trains at 0.05
    _refused(capsys, [*state, "--lr", "0.01"], "--lr 0.01 contradicts the resumed run's 0.05")
    _refused(capsys, [*state, "--temperature", "1"], "--temperature 1.0 contradicts the resumed run's 1.0,0.3")
    _refused(capsys, [*state, "--dataset", "iris"], "--dataset iris contradicts the resumed run's digits")
    _refused(capsys, [*state, "--strict"], "--strict True contradicts")
    _refused(capsys, [*state, "--out", "other.st"], "--out other.st contradicts m.st.resume")
    _refused(capsys, [*state, "--metrics", "other.jsonl"], "--metrics other.jsonl contradicts m.st.resume")
    # a run still writing the model holds its lock: a resume is refused like any second writer
    lock = {"pid": os.getpid(), "host": socket.gethostname(), "started": None, "since": time.time()}
    (interrupted / "m.st.lock").write_text(json.dumps(lock))
    _refused(capsys, state, "is being written by another run")
    (interrupted / "m.st.lock").unlink()
    assert {p.name: p.read_bytes() for p in interrupted.iterdir()} == before


def _resigned(source: Path, target: Path, edit) -> Path:
    """``source`` with its tensors or state edited by ``edit(tensors, state)`` and its checksum recomputed, as
    someone who knows the format would: the checks after the checksum must hold on their own."""
    from safetensors import safe_open

    from lgn.training.checkpoint import _checksum

    with safe_open(str(source), framework="pt") as handle:
        meta = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    state = json.loads(meta["state"])
    edit(tensors, state)
    meta["state"] = json.dumps(state)
    meta["checksum"] = _checksum(tensors, meta["state"])
    target.write_bytes(safetensors_bytes(tensors, meta))
    return target


def test_damaged_foreign_and_missing_resume_files_are_refused(interrupted, capsys):
    good = (interrupted / "m.st.resume").read_bytes()
    files = {
        "flipped": (good[:-3] + bytes([good[-3] ^ 1]) + good[-2:], "checksum mismatch"),
        "truncated": (good[: len(good) // 2], "not an lgn resume state"),
        "table": (b"a,b,label\n1,2,0\n", "not an lgn resume state"),
        "checkpoint": ((interrupted / "m.st").read_bytes(), "a model checkpoint, not a resume state"),
        "pickle": (b"\x80\x04\x95" + b"\x00" * 40, "a Python pickle"),
    }
    for name, (payload, message) in files.items():
        (interrupted / f"{name}.resume").write_bytes(payload)
        _refused(capsys, ["train", "--resume", f"{name}.resume"], message)
        assert not (interrupted / name).exists()  # nothing was written for the run it names
    _refused(capsys, ["train", "--resume", "missing.resume"], "missing.resume: no such file")
    (interrupted / "state.bin").write_bytes(good)
    _refused(capsys, ["train", "--resume", "state.bin"], "a resume state is named OUT.resume")

    def narrower(tensors, state):  # a layer of the network other than the configuration's
        tensors["model.layers.0.weight"] = tensors["model.layers.0.weight"][:-1].clone()

    def other_step(tensors, state):
        state["step"] = 121

    def extra(tensors, state):
        tensors["rng.numpy"] = torch.zeros(4, dtype=torch.uint8)

    for edit, message in ((narrower, "tensor model.layers.0.weight is torch.float32 (99, "),
                          (other_step, "step 121 of a run of 120 steps"),
                          (extra, "unexpected generator state 'rng.numpy'")):  # fmt: skip
        _resigned(interrupted / "m.st.resume", interrupted / "edited.resume", edit)
        _refused(capsys, ["train", "--resume", "edited.resume"], message)


def test_resumed_with_other_data_is_refused(tmp_path, monkeypatch, capsys):
    """The data are checked by their contents: a copy elsewhere resumes the run, an edited table does not."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    rows = ["a,b,c,label"] + [f"{a:.4f},{b:.4f},{c:.4f},{int(a + b > 0)}" for a, b, c in x]
    Path("t.csv").write_text("\n".join(rows) + "\n")
    args = ["train", "--data", "t.csv", "--label", "label", "--tau", "3", "--steps", "40", "--eval-every", "10",
            "--no-progress", "--out", "m.st"]  # fmt: skip
    _interrupt_at(monkeypatch, 25)
    assert main(args) == 130
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    Path("t.csv").write_text("\n".join(rows[:50] + ["9,9,9,1"] + rows[51:]) + "\n")
    _refused(capsys, ["train", "--resume", "m.st.resume"], "the data differ from the data its run trained on")
    Path("moved").mkdir()
    Path("moved/t.csv").write_text("\n".join(rows) + "\n")
    assert main(["train", "--resume", "m.st.resume", "--data", "moved/t.csv"]) == 0
    assert load_checkpoint("m.st")[2]["step"] in (10, 20, 30, 40)


def test_a_new_run_checks_the_resume_state_it_will_write(tmp_path, capsys):
    """OUT.resume is an output of every run: a file of the user's there is replaced only with --force, and
    --metrics may not name it."""
    (tmp_path / "m.st.resume").write_text("my notes\n")
    base = ["train", "--dataset", "digits", "--steps", "5", "--no-progress", "--out", str(tmp_path / "m.st")]
    _refused(capsys, base, "m.st.resume exists and is a file lgn did not write")
    assert (tmp_path / "m.st.resume").read_text() == "my notes\n"
    metrics = str(tmp_path / "m.st.resume")
    _refused(capsys, [*base, "--metrics", metrics], "--metrics and --out name out's resume state")


def test_a_resume_state_is_not_a_model_and_a_new_run_says_it_replaces_one(interrupted, capsys):
    _refused(capsys, ["export", "m.st.resume", "--out", "g.npz"], "a training run's resume state")
    shutil.copy("m.st.resume", "copy.resume")
    assert resume.read_state("copy.resume").out == "copy"
    assert main(["train", *ARGS, "--out", "m.st", "--steps", "2"]) == 0  # a new run, not the interrupted one
    assert "m.st.resume is an interrupted run's state, which this new run replaces" in capsys.readouterr().err
    assert not Path("m.st.resume").exists()
