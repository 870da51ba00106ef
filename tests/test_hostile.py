"""Hostile input, as a user who means harm (or types fast) gives it: every case must end with exit 2, one
``lgn: error:`` line naming the field, file or value, no traceback, and nothing written.

Each case builds its bad input under a temporary folder and returns the command line; the ``out/`` folder
next to it must not exist afterwards. The cases run in-process (fast); those that declare huge sizes run in a
subprocess under a 4 GiB address-space limit, which proves the refusal comes before the allocation.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lgn.cli import main
from lgn.compiler import formats
from lgn.compiler.random_graph import random_layered

torch = pytest.importorskip("torch")

CASES: dict[str, Callable[[Path, dict], list[str]]] = {}
BOUNDED: set[str] = set()  # cases that run in a subprocess under a memory limit
MEMORY_LIMIT = 4 << 30


def case(name: str, bounded: bool = False):
    def register(build):
        CASES[name] = build
        if bounded:
            BOUNDED.add(name)
        return build

    return register


# ---- what the cases start from ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict:
    """A small trained checkpoint, a graph (npz and text) and an IDX folder, all valid."""
    from lgn.training.config import TrainConfig
    from lgn.training.trainer import train

    root = tmp_path_factory.mktemp("valid")
    checkpoint = root / "iris.st"
    cfg = TrainConfig(dataset="iris", layers=2, width=30, steps=10, eval_every=10, out=str(checkpoint))
    train(cfg.replace(progress=False))
    graph = random_layered(n_inputs=8, layers=2, width=12, arity=2, classes=2, seed=0)
    formats.save_npz(graph, root / "g.npz")
    (root / "g.txt").write_text(formats.to_text(graph))
    return {"checkpoint": checkpoint, "npz": root / "g.npz", "text": root / "g.txt"}


def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def join_safetensors(header: dict, body: bytes) -> bytes:
    text = json.dumps(header)
    text += " " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text.encode() + body


def edited_checkpoint(
    tmp: Path, valid: dict, edit: Callable[[dict], None], extra: bytes = b"", resign: bool = False
) -> str:
    """The valid checkpoint with its header edited (and ``extra`` bytes appended to the data); ``resign``
    recomputes the checksum as a forger who knows the format would, so the checks behind it are reached."""
    header, body = split_safetensors(valid["checkpoint"].read_bytes())
    edit(header)
    target = tmp / "edited.st"
    target.write_bytes(join_safetensors(header, body + extra))
    if resign:
        from safetensors import safe_open

        from lgn.training.checkpoint import _checksum, _meaning

        with safe_open(str(target), framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        meta = header["__metadata__"]
        meta["checksum"] = _checksum(tensors, _meaning(meta["config"], meta["encoder_n_features"], meta.get("names")))
        target.write_bytes(join_safetensors(header, body + extra))
    return str(target)


def idx_bytes(array: np.ndarray, shape: tuple[int, ...] | None = None) -> bytes:
    shape = array.shape if shape is None else shape
    return bytes([0, 0, 8, len(shape)]) + b"".join(int(d).to_bytes(4, "big") for d in shape) + array.tobytes()


def idx_folder(tmp: Path, **replace: bytes) -> str:
    """A valid four-file IDX folder, with the files named in ``replace`` (by key) swapped for bad bytes."""
    rng = np.random.default_rng(0)
    files = {
        "train_images": idx_bytes(rng.integers(0, 256, (20, 4, 4)).astype(np.uint8)),
        "train_labels": idx_bytes(rng.integers(0, 3, 20).astype(np.uint8)),
        "test_images": idx_bytes(rng.integers(0, 256, (6, 4, 4)).astype(np.uint8)),
        "test_labels": idx_bytes(rng.integers(0, 3, 6).astype(np.uint8)),
    }
    files.update(replace)
    from lgn.training.data import IDX_FILES

    folder = tmp / "idx"
    folder.mkdir()
    for key, data in files.items():
        (folder / IDX_FILES[key]).write_bytes(data)
    return str(folder)


def train_idx(folder: str, tmp: Path) -> list[str]:
    return ["train", "--dataset", "idx", "--data-dir", folder, "--steps", "1", "--out", str(tmp / "out" / "m.st")]


def npz_with(tmp: Path, valid: dict, **fields) -> str:
    with np.load(valid["npz"]) as data:
        arrays = {key: data[key] for key in data.files}
    arrays.update({key: np.asarray(value) for key, value in fields.items()})
    target = tmp / "bad.npz"
    np.savez(target, **arrays)
    return str(target)


def text_with(tmp: Path, valid: dict, old: str, new: str) -> str:
    text = valid["text"].read_text()
    assert old in text, old
    target = tmp / "bad.txt"
    target.write_text(text.replace(old, new, 1))
    return str(target)


def compile_to(tmp: Path, graph: str, *extra: str) -> list[str]:
    return ["compile", graph, "--out", str(tmp / "out"), *extra]


# ---- 1, 4, 6, 7: checkpoints --------------------------------------------------------------------------------
@case("checkpoint: config edited (classes), checksum kept")
def _(tmp, valid):
    def edit(header):
        header["__metadata__"]["config"] = header["__metadata__"]["config"].replace('"classes": 3', '"classes": 6')

    return compile_to(tmp, edited_checkpoint(tmp, valid, edit))


@case("checkpoint: deeply nested config, re-signed")
def _(tmp, valid):
    def edit(header):
        header["__metadata__"]["config"] = "[" * 100_000 + "]" * 100_000

    return compile_to(tmp, edited_checkpoint(tmp, valid, edit, resign=True))


@case("checkpoint: config classes 0, re-signed")
def _(tmp, valid):
    def edit(header):
        header["__metadata__"]["config"] = header["__metadata__"]["config"].replace('"classes": 3', '"classes": 0')

    return compile_to(tmp, edited_checkpoint(tmp, valid, edit, resign=True))


@case("checkpoint: NaN weights, re-signed")
def _(tmp, valid):
    header, body = split_safetensors(valid["checkpoint"].read_bytes())
    name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
    start = header[name]["data_offsets"][0]
    poisoned = bytearray(body)
    poisoned[start : start + 4] = np.array([np.nan], dtype=np.float32).tobytes()
    (tmp / "poisoned.st").write_bytes(join_safetensors(header, bytes(poisoned)))
    return compile_to(tmp, edited_checkpoint(tmp, {"checkpoint": tmp / "poisoned.st"}, lambda h: None, resign=True))


@case("checkpoint: a tensor declared 2**40 elements in a small file", bounded=True)
def _(tmp, valid):
    def edit(header):
        name = next(k for k in header if k.endswith(".weights") or k.endswith(".logits") or k.endswith("wiring"))
        header[name]["shape"] = [2**20, 2**20]

    return compile_to(tmp, edited_checkpoint(tmp, valid, edit))


@case("checkpoint: config declares a million gates per layer, re-signed", bounded=True)
def _(tmp, valid):
    def edit(header):
        config = json.loads(header["__metadata__"]["config"])
        config["widths"] = [1_000_000, 999_999]
        header["__metadata__"]["config"] = json.dumps(config, sort_keys=True)

    return compile_to(tmp, edited_checkpoint(tmp, valid, edit, resign=True))


@case("checkpoint: a bf16 tensor, re-signed")
def _(tmp, valid):
    def edit(header):
        name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
        header[name]["dtype"] = "BF16"
        header[name]["shape"] = [header[name]["shape"][0] * 2] + header[name]["shape"][1:]

    return compile_to(tmp, edited_checkpoint(tmp, valid, edit, resign=True))


@case("checkpoint: an extra encoder tensor, re-signed")
def _(tmp, valid):
    body_length = len(split_safetensors(valid["checkpoint"].read_bytes())[1])

    def edit(header):
        header["encoder.extra"] = {"dtype": "I64", "shape": [2], "data_offsets": [body_length, body_length + 16]}

    return compile_to(tmp, edited_checkpoint(tmp, valid, edit, extra=bytes(16), resign=True))


@case("checkpoint: truncated")
def _(tmp, valid):
    data = valid["checkpoint"].read_bytes()
    (tmp / "cut.st").write_bytes(data[: len(data) // 3])
    return compile_to(tmp, str(tmp / "cut.st"))


@case("checkpoint: a pickle")
def _(tmp, valid):
    import pickle

    (tmp / "model.pt").write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    return compile_to(tmp, str(tmp / "model.pt"))


# ---- 4, 5, 6: graph files -----------------------------------------------------------------------------------
@case("npz: n_inputs 2**63 - 1")
def _(tmp, valid):
    return compile_to(tmp, npz_with(tmp, valid, n_inputs=np.int64(2**63 - 1)))


@case("npz: n_inputs 10**10 in a small file", bounded=True)
def _(tmp, valid):
    return compile_to(tmp, npz_with(tmp, valid, n_inputs=np.int64(10**10)))


@case("text: a number of 2**64")
def _(tmp, valid):
    return ["info", text_with(tmp, valid, "inputs 8", f"inputs {2**64}")]


@case("text: inputs 10**20")
def _(tmp, valid):
    return ["info", text_with(tmp, valid, "inputs 8", "inputs 100000000000000000000")]


@case("text: classes 10**9", bounded=True)
def _(tmp, valid):
    return ["info", text_with(tmp, valid, "classes 2", "classes 1000000000")]


@case("graph: not a graph at all")
def _(tmp, valid):
    (tmp / "junk.npz").write_bytes(os.urandom(300))
    return ["info", str(tmp / "junk.npz")]


# ---- 4: IDX folders -----------------------------------------------------------------------------------------
@case("idx: an empty test split")
def _(tmp, valid):
    empty = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (0, 4, 4))
    return train_idx(idx_folder(tmp, test_images=empty, test_labels=bytes([0, 0, 8, 1, 0, 0, 0, 0])), tmp)


@case("idx: a 0-dimensional file")
def _(tmp, valid):
    return train_idx(idx_folder(tmp, train_labels=bytes([0, 0, 8, 0, 7])), tmp)


@case("idx: a dimension product that overflows 64 bits")
def _(tmp, valid):
    huge = bytes([0, 0, 8, 3]) + b"\xff\xff\xff\xff" * 3 + b"\x00" * 64
    return train_idx(idx_folder(tmp, train_images=huge), tmp)


@case("idx: more than 64 dimensions")
def _(tmp, valid):
    return train_idx(idx_folder(tmp, train_images=bytes([0, 0, 8, 70]) + b"\x00\x00\x00\x01" * 70 + b"\x05"), tmp)


@case("idx: a corrupt deflate stream")
def _(tmp, valid):
    folder = Path(idx_folder(tmp))
    source = folder / "train-images-idx3-ubyte"
    packed = bytearray(gzip.compress(source.read_bytes()))
    packed[20:40] = b"\xff" * 20
    (folder / "train-images-idx3-ubyte.gz").write_bytes(bytes(packed))
    source.unlink()
    return train_idx(str(folder), tmp)


@case("idx: test images of another shape")
def _(tmp, valid):
    other = np.zeros((6, 5, 5), dtype=np.uint8)
    return train_idx(idx_folder(tmp, test_images=idx_bytes(other)), tmp)


@case("idx: fewer labels than images")
def _(tmp, valid):
    return train_idx(idx_folder(tmp, train_labels=idx_bytes(np.zeros(19, dtype=np.uint8))), tmp)


# ---- 2, 3: training settings and outputs --------------------------------------------------------------------
def train_iris(tmp: Path, *extra: str, out: str | None = None) -> list[str]:
    return ["train", "--dataset", "iris", "--steps", "2", "--out", out or str(tmp / "out" / "m.st"), *extra]


for flag, value in [("--lr", "inf"), ("--lr", "nan"), ("--lr", "1e300"), ("--tau", "0"), ("--tau", "-5"),
                    ("--tau", "inf"), ("--seed", str(2**70)), ("--batch-size", "1000000000"),
                    ("--eval-samples", "0"), ("--eval-samples", "-1"), ("--width", "0"), ("--widths", "3,x"),
                    ("--arity", "7"), ("--steps", "ten")]:  # fmt: skip
    case(f"train: {flag} {value}")(lambda tmp, valid, flag=flag, value=value: train_iris(tmp, flag, value))


@case("train: --out names a folder")
def _(tmp, valid):
    (tmp / "folder").mkdir()
    return train_iris(tmp, "--metrics", str(tmp / "out" / "m.jsonl"), out=str(tmp / "folder"))


@case("train: --metrics names a folder")
def _(tmp, valid):
    (tmp / "folder").mkdir()
    return train_iris(tmp, "--metrics", str(tmp / "folder"))


@case("train: --out in a read-only folder")
def _(tmp, valid):
    if os.geteuid() == 0:
        # root writes anywhere; a path under a regular file fails for everyone
        (tmp / "file").write_text("")
        return train_iris(tmp, out=str(tmp / "file" / "m.st"))
    locked = tmp / "locked"
    locked.mkdir(mode=0o500)
    return train_iris(tmp, out=str(locked / "m.st"))


# ---- 8, 11: names, numbers and the environment --------------------------------------------------------------
@case("compile: --prefix main")
def _(tmp, valid):
    return compile_to(tmp, str(valid["npz"]), "--prefix", "main")


@case("compile: --module class")
def _(tmp, valid):
    return compile_to(tmp, str(valid["npz"]), "--target", "verilog", "--module", "class")


@case("compile: --module interface")
def _(tmp, valid):
    return compile_to(tmp, str(valid["npz"]), "--target", "verilog", "--module", "interface")


@case("random: --seed -1")
def _(tmp, valid):
    return ["random", "--seed", "-1", "--out", str(tmp / "out" / "g.npz")]


@case("bench: --samples -5")
def _(tmp, valid):
    return ["bench", str(valid["npz"]), "--samples", "-5"]


@case("verify: --limit -5")
def _(tmp, valid):
    return ["verify", str(valid["npz"]), "--backend", "c", "--limit", "-5"]


@case("an unknown option")
def _(tmp, valid):
    return ["compile", str(valid["npz"]), "--out", str(tmp / "out"), "--frobnicate"]


@case("CC with an unbalanced quote")
def _(tmp, valid):
    os.environ["CC"] = 'gcc "-O2'
    return ["verify", str(valid["npz"]), "--backend", "c", "--isa", "portable", "--vectors", "10"]


# ---- the checks ---------------------------------------------------------------------------------------------
def _run_in_process(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's errors
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _run_bounded(argv: list[str]) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "lgn", *argv], capture_output=True, text=True, preexec_fn=_limit_memory, timeout=300
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_gets_one_line_and_exit_2(name, valid, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CC", os.environ.get("CC", "gcc"))  # restored after the CC case
    argv = CASES[name](tmp_path, valid)
    code, out, err = _run_bounded(argv) if name in BOUNDED else _run_in_process(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, f"{name}: exit {code}\n{err[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("lgn: error: "), f"{name}: {err[-2000:]}"
    assert "Traceback" not in err + out
    assert not (tmp_path / "out").exists(), f"{name}: something was written"


def test_the_cases_cover_every_class_of_the_report():
    """At least one case per class of bad input (checkpoints, graphs, IDX, training, names, numbers)."""
    prefixes = {name.split(":")[0] for name in CASES}
    assert {"checkpoint", "npz", "text", "idx", "train", "compile", "random", "bench", "verify"} <= prefixes
