"""``lgn verify MODEL --data FILE``: the rows of the user's own table through the evaluator, the C library and the
Verilog, every score against the evaluator on the graph as given (and, for a checkpoint, the discretized torch
model against its IR); a deliberately wrong graph is caught; bad input is one line and exit 2."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from lgn.cli import main
from lgn.compiler import formats, pipeline

pytest.importorskip("torch")

ROWS = 240
SMALL = ["--layers", "2", "--width", "30", "--steps", "50", "--eval-every", "50", "--init", "gaussian", "--seed", "1",
         "--no-progress"]  # fmt: skip


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def table_columns(seed: int = 7):
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(size=ROWS), 3)
    b = np.round(rng.uniform(0, 10, ROWS), 2)
    color = rng.choice(np.array(["blue", "green", "red"]), ROWS)
    label = np.where((a > 0) ^ (color == "red"), "yes", np.where(b > 5, "maybe", "no"))
    return a, b, color, label


def write_csv(path: Path, header, rows) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(a model trained in a second or two on a small CSV, that CSV)."""
    root = tmp_path_factory.mktemp("verify-data")
    data = write_csv(root / "t.csv", ["a", "b", "color", "answer"], zip(*table_columns()))
    model = root / "m.safetensors"
    assert main(["train", "--data", str(data), "--label", "answer", "--out", str(model), *SMALL]) == 0
    return model, data


def one_output_flipped(graph):
    """The graph with its first output negated: that output's bit, so its class's score, changes by exactly
    one on every vector."""
    negated = graph.output_negated.copy()
    negated[0] = not negated[0]
    return graph.replace(output_negated=negated)


def last_line(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_the_c_library_on_every_row_of_the_table(trained, capsys):
    model, data = trained
    code, out, _ = run(capsys, "verify", model, "--data", data, "--backend", "c", "--isa", "portable")
    assert code == 0, out
    assert "IR evaluator accuracy" in out and f"on the {ROWS} labelled rows" in out
    assert f"discretized torch vs IR evaluator ({ROWS} rows of {data}): {ROWS} vectors, 0 mismatches" in out
    for shape in ("table", "straight"):
        assert f"C portable/{shape} vs evaluator ({ROWS} rows of {data}): {ROWS} vectors, 0 mismatches" in out
        assert f"C portable/{shape} from raw float32: {ROWS} vectors, 0 mismatches" in out
    assert last_line(out) == f"{5 * ROWS} vectors, 0 mismatches"  # torch, then 2 shapes x (bits, features)


def test_the_evaluator_backend_and_a_graph_file(trained, tmp_path, capsys):
    model, data = trained
    code, out, _ = run(capsys, "verify", model, "--data", data)  # --backend evaluator is the default
    assert code == 0 and "evaluator on the graph lgn compile emits vs the graph as given" in out
    assert last_line(out) == f"{2 * ROWS} vectors, 0 mismatches"
    assert main(["export", str(model), "--out", str(tmp_path / "g.npz")]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "verify", tmp_path / "g.npz", "--data", data, "--backend", "c", "--isa", "portable")
    assert code == 0 and "discretized torch" not in out  # a graph file has no torch model
    assert last_line(out) == f"{4 * ROWS} vectors, 0 mismatches"
    code, out, _ = run(capsys, "verify", model, "--data", data, "--limit", "10")
    assert code == 0 and last_line(out) == "20 vectors, 0 mismatches"


def test_an_npy_table_with_its_labels_file(tmp_path, capsys):
    a, b, color, label = table_columns(8)
    np.save(tmp_path / "x.npy", np.stack([a, b], axis=1))
    np.save(tmp_path / "y.npy", label)
    model = tmp_path / "m.st"
    data = ["--data", tmp_path / "x.npy", "--labels", tmp_path / "y.npy"]
    assert run(capsys, "train", *data, "--out", model, *SMALL)[0] == 0
    code, out, _ = run(capsys, "verify", model, *data, "--backend", "c", "--isa", "portable")
    assert code == 0 and f"on the {ROWS} labelled rows" in out and last_line(out) == f"{5 * ROWS} vectors, 0 mismatches"
    code, out, _ = run(capsys, "verify", model, "--data", tmp_path / "x.npy", "--backend", "c", "--isa", "portable")
    assert code == 0 and "accuracy" not in out.replace("its accuracy", "")  # no labels: no accuracy


def test_a_wrong_build_is_reported_as_mismatches(trained, monkeypatch, capsys):
    """What the backend builds (the simplified graph) made wrong on purpose: every row of every build
    mismatches, the torch model against the graph as given still agrees, and verify exits 1."""
    model, data = trained
    simplify = pipeline.simplify
    monkeypatch.setattr(pipeline, "simplify", lambda graph, *a, **k: one_output_flipped(simplify(graph, *a, **k)))
    code, out, _ = run(capsys, "verify", model, "--data", data, "--backend", "c", "--isa", "portable")
    assert code == 1 and f"{ROWS} vectors, 0 mismatches" in out  # torch vs IR
    assert out.count(f"{ROWS} vectors, {ROWS} mismatches") == 4 and "first mismatch at vector" in out
    assert last_line(out) == f"{5 * ROWS} vectors, {4 * ROWS} mismatches"
    code, out, _ = run(capsys, "verify", model, "--data", data)
    assert code == 1 and last_line(out) == f"{2 * ROWS} vectors, {ROWS} mismatches"


def test_a_graph_unlike_the_torch_model_is_reported_as_mismatches(trained, monkeypatch, capsys):
    from lgn.training import export

    model, data = trained
    to_graph = export.to_graph
    monkeypatch.setattr(export, "to_graph", lambda *a, **k: one_output_flipped(to_graph(*a, **k)))
    code, out, _ = run(capsys, "verify", model, "--data", data, "--no-simplify")
    assert code == 1 and f"discretized torch vs IR evaluator ({ROWS} rows of {data}): {ROWS} vectors, {ROWS} mis" in out
    assert last_line(out) == f"{2 * ROWS} vectors, {ROWS} mismatches"


@pytest.mark.parametrize(
    "case, message",
    [
        ("no such file", "nope.csv: no such file"),
        ("unseen category", "column 'color', line 5: category 'purple' was not seen in training"),
        ("unknown column", "has a column the model does not know: 'extra'"),
        ("unseen label", "column 'answer', line 3: label 'perhaps' was not seen in training"),
        ("with --dataset", "--data goes with --backend evaluator, c or verilog, and without --dataset"),
        ("netlist", "--data goes with --backend evaluator, c or verilog"),
        ("evaluator without data", "--backend evaluator checks the rows of a table: give --data FILE"),
        ("labels without data", "--labels goes with --data"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(case, message, trained, tmp_path, capsys):
    model, data = trained
    rows = list(csv.reader(data.open()))
    argv = ["verify", model, "--data", tmp_path / "bad.csv"]
    if case == "no such file":
        argv[-1] = tmp_path / "nope.csv"
    elif case == "unseen category":
        rows[4][2] = "purple"
    elif case == "unknown column":
        rows = [[*r, "extra" if i == 0 else "1"] for i, r in enumerate(rows)]
    elif case == "unseen label":
        rows[2][3] = "perhaps"
    elif case == "with --dataset":
        argv += ["--dataset", "digits"]
    elif case == "netlist":
        argv += ["--backend", "netlist"]
    elif case == "evaluator without data":
        argv = ["verify", model, "--backend", "evaluator"]
    elif case == "labels without data":
        argv = ["verify", model, "--backend", "c", "--labels", tmp_path / "y.npy"]
    write_csv(tmp_path / "bad.csv", rows[0], rows[1:])
    code, out, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and err.startswith("lgn: error: ") and message in err, err
    assert out == ""


@pytest.mark.hdl
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed (bash .ci/bootstrap installs it)")
def test_the_verilog_on_icarus_on_every_row_and_a_wrong_one_caught(trained, monkeypatch, capsys):
    model, data = trained
    code, out, _ = run(capsys, "verify", model, "--data", data, "--backend", "verilog", "--sim", "icarus")
    assert code == 0 and f"Verilog on icarus vs evaluator ({ROWS} rows of {data})" in out
    assert last_line(out) == f"{2 * ROWS} vectors, 0 mismatches"  # torch vs IR, then the Verilog
    simplify = pipeline.simplify
    monkeypatch.setattr(pipeline, "simplify", lambda graph, *a, **k: one_output_flipped(simplify(graph, *a, **k)))
    code, out, _ = run(capsys, "verify", model, "--data", data, "--backend", "verilog", "--limit", "40")
    assert code == 1 and last_line(out) == "80 vectors, 40 mismatches"


def test_a_graph_file_reads_back_what_the_checkpoint_gives(trained, tmp_path):
    """The graph verify --data builds from a checkpoint is the one lgn export writes (tau included)."""
    model, _ = trained
    assert main(["export", str(model), "--out", str(tmp_path / "g.npz")]) == 0
    from lgn.cli.common import load_any

    assert formats.load_graph(tmp_path / "g.npz").same_as(load_any(str(model)))
