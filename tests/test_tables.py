"""Your own data: tables in (CSV, TSV, .npz, .npy, Parquet), names that travel with the model, predictions out,
and bad data refused with one line and no file left behind."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from lgn.cli import main
from lgn.compiler import c_emit, evaluate, formats, verilog_emit
from lgn.compiler.errors import GraphError
from lgn.compiler.names import Names, c_string
from lgn.compiler.random_graph import random_layered

torch = pytest.importorskip("torch")

from lgn.training.checkpoint import load_checkpoint  # noqa: E402
from lgn.training.export import to_graph  # noqa: E402

ROWS = 1200
TRAIN = ["--layers", "2", "--width", "150", "--steps", "300", "--eval-every", "100", "--seed", "3", "--no-progress"]


def synthetic(seed: int = 0):
    """Two numeric columns, a categorical one and string labels that follow a known rule."""
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(size=ROWS), 3)
    b = np.round(rng.uniform(0, 10, ROWS), 2)
    color = rng.choice(np.array(["blue", "green", "red"]), ROWS)
    label = np.where((a > 0) ^ (color == "red"), "yes", np.where(b > 5, "maybe", "no"))
    return a, b, color, label


def write_csv(path: Path, header: list[str], rows, delimiter: str = ",") -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    a, b, color, label = synthetic()
    root = tmp_path_factory.mktemp("tables")
    return write_csv(root / "data.csv", ["id", "a", "b", "color", "answer"], zip(range(ROWS), a, b, color, label))


@pytest.fixture(scope="module")
def model(table) -> Path:
    out = table.parent / "model.st"
    argv = ["train", "--data", str(table), "--label", "answer", "--drop", "id", "--out", str(out), *TRAIN]
    assert main(argv) == 0
    return out


def test_a_csv_with_a_known_rule_trains_and_its_names_travel(model):
    trained, encoder, info = load_checkpoint(model)
    names = info["names"]
    assert names.classes == ("maybe", "no", "yes") and names.label == "answer" and names.ignored == ("id",)
    assert names.features == ("a", "b", "color=blue", "color=green", "color=red")
    assert names.categorical == (("color", ("blue", "green", "red")),)
    assert info["test_acc_discrete"] >= 0.95
    graph = to_graph(trained, encoder, names)
    for path in (model.parent / "g.npz", model.parent / "g.txt"):
        (formats.save_npz if path.suffix == ".npz" else lambda g, p: p.write_text(formats.to_text(g)))(graph, path)
        again = formats.load_graph(path)
        assert again.names == names and again.same_as(graph)
    header = c_emit.emit_c(graph).files["lgn_net.h"]
    assert "lgn_net_class_names[LGN_NET_N_CLASSES]" in header and "lgn_net_feature_names" in header
    assert '"color=green",' in c_emit.emit_c(graph).files["lgn_net.c"]
    readme = verilog_emit.package_files(graph).files["README.md"]
    assert "0: `maybe`, 1: `no`, 2: `yes`" in readme


def test_the_same_data_in_every_format_gives_the_same_network(table, tmp_path):
    """CSV, TSV, Parquet (the same columns), .npz and .npy (numbers: the category as a code, labels as
    codes): one seed, one network."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    a, b, color, label = synthetic()
    code = np.searchsorted(["blue", "green", "red"], color)
    label_code = np.searchsorted(["maybe", "no", "yes"], label)
    write_csv(tmp_path / "data.tsv", ["a", "b", "color", "answer"], zip(a, b, color, label), delimiter="\t")
    pq.write_table(pa.table({"a": a, "b": b, "color": color, "answer": label}), tmp_path / "data.parquet")
    x = np.stack([a, b, code], axis=1)
    np.savez(tmp_path / "data.npz", X=x, y=label_code, columns=np.array(["a", "b", "color"]))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", label_code)
    runs = {
        "csv": ["--data", str(table), "--label", "answer", "--drop", "id"],
        "tsv": ["--data", str(tmp_path / "data.tsv"), "--label", "answer"],
        "parquet": ["--data", str(tmp_path / "data.parquet"), "--label", "answer"],
        "npz": ["--data", str(tmp_path / "data.npz"), "--categorical", "color"],
        "npy": ["--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--categorical", "x2"],
    }
    graphs = {}
    for name, argv in runs.items():
        out = tmp_path / f"{name}.st"
        assert main(["train", *argv, "--out", str(out), *TRAIN]) == 0, name
        trained, encoder, info = load_checkpoint(out)
        graphs[name] = to_graph(trained, encoder)  # without names: those differ by format (codes vs words)
    for name, graph in graphs.items():
        assert graph.same_as(graphs["csv"]), name


def test_predict_through_the_evaluator_and_the_c_library_agree(model, table, tmp_path, capsys):
    outs = {}
    for backend in ("evaluator", "c"):
        out = tmp_path / f"{backend}.csv"
        assert main(["predict", str(model), "--data", str(table), "--backend", backend, "--out", str(out)]) == 0
        assert "accuracy" in capsys.readouterr().out
        outs[backend] = out.read_text()
    assert outs["evaluator"] == outs["c"]
    predictions = outs["c"].splitlines()
    assert predictions[0] == "prediction" and len(predictions) == ROWS + 1
    assert set(predictions[1:]) <= {"maybe", "no", "yes"}
    # Without the label column (and the ignored id), predictions still come; in small chunks, the same ones.
    rows = list(csv.reader(table.open()))
    bare = write_csv(tmp_path / "bare.csv", ["a", "b", "color"], [r[1:4] for r in rows[1:]])
    assert main(["predict", str(model), "--data", str(bare), "--out", str(tmp_path / "bare.out"), "--chunk", "7"]) == 0
    assert (tmp_path / "bare.out").read_text() == outs["c"]
    capsys.readouterr()
    # From the graph file too, with scores.
    trained, encoder, info = load_checkpoint(model)
    graph = to_graph(trained, encoder, info["names"])
    formats.save_npz(graph, tmp_path / "g.npz")
    assert main(["predict", str(tmp_path / "g.npz"), "--data", str(bare), "--scores", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "prediction,score_maybe,score_no,score_yes" and lines[1].split(",")[0] == predictions[1]


def test_missing_values_are_filled_only_when_asked(tmp_path, capsys):
    a, b, color, label = synthetic(1)
    rows = [[x if i % 50 else "", y, c, lab] for i, (x, y, c, lab) in enumerate(zip(a, b, color, label))]
    data = write_csv(tmp_path / "holes.csv", ["a", "b", "color", "answer"], rows)
    out = tmp_path / "m.st"
    assert main(["train", "--data", str(data), "--label", "answer", "--out", str(out), *TRAIN]) == 2
    assert "column 'a', line 2: missing or NaN value" in capsys.readouterr().err and not out.exists()
    assert (
        main(["train", "--data", str(data), "--label", "answer", "--fill-na", "mean", "--out", str(out), *TRAIN]) == 0
    )
    names = load_checkpoint(out)[2]["names"]
    assert len(names.fill) == 2 and names.fill[0] == pytest.approx(np.mean(a[np.arange(ROWS) % 50 != 0]), abs=1e-3)
    assert main(["predict", str(out), "--data", str(data), "--out", str(tmp_path / "p.csv")]) == 0


def _bad(tmp_path: Path, name: str):
    """The files of one bad case and the command line it runs."""
    a, b, color, label = synthetic(2)
    header, rows = ["a", "b", "color", "answer"], [list(r) for r in zip(a[:200], b[:200], color[:200], label[:200])]
    data = tmp_path / "data.csv"
    train = ["train", "--data", str(data), "--label", "answer", "--out", str(tmp_path / "out" / "m.st"), *TRAIN]
    if name == "no label column":
        write_csv(data, header, rows)
        return train[:3] + ["--label", "target"] + train[5:]
    if name == "NaN in a numeric column":
        rows[7][1] = "nan"
    elif name == "infinite value":
        rows[9][0] = "inf"
    elif name == "text in a numeric column":
        rows[5][1] = "seven"
    elif name == "one class":
        rows = [r[:3] + ["yes"] for r in rows]
    elif name == "ragged row":
        rows[3] = rows[3][:3]
    elif name == "empty file":
        data.write_text("")
        return train
    elif name == "header only":
        rows = []
    elif name == "unknown extension":
        write_csv(data, header, rows)
        os.rename(data, tmp_path / "data.xlsx")
        return train[:2] + [str(tmp_path / "data.xlsx")] + train[3:]
    elif name == "a categorical column of identifiers":
        rows = [[a_, b_, f"id{i}", lab] for i, (a_, b_, _, lab) in enumerate(rows)] * 6
        rows = [[r[0], r[1], f"{r[2]}-{i}", r[3]] for i, r in enumerate(rows)]
    write_csv(data, header, rows)
    return train


BAD_TRAINING = {
    "no label column": "no column 'target' (--label)",
    "NaN in a numeric column": "column 'b', line 9: missing or NaN value",
    "infinite value": "column 'a', line 11: inf is infinite or too large for float32",
    "text in a numeric column": "column 'b', line 7: 'seven' is not a number",
    "one class": "holds one class ('yes')",
    "ragged row": "line 5 has 3 fields, the header 4",
    "empty file": "empty file",
    "header only": "no data rows",
    "unknown extension": "unknown extension '.xlsx'",
    "a categorical column of identifiers": "column 'color' has 1200 categories",
}


@pytest.mark.parametrize("case", sorted(BAD_TRAINING))
def test_bad_training_data_is_one_line_exit_2_and_no_file(case, tmp_path, capsys):
    argv = _bad(tmp_path, case)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lgn: error: ") and BAD_TRAINING[case] in err, err
    assert not (tmp_path / "out").exists()


BAD_PREDICTION = {
    "a column missing": ("drop b", "lacks the column 'b'"),
    "an extra column": ("add c", "has a column the model does not know: 'extra'"),
    "an unseen category": ("color purple", "column 'color', line 4: category 'purple' was not seen in training"),
    "an unseen label": ("label perhaps", "column 'answer', line 6: label 'perhaps' was not seen in training"),
    "an unknown extension": ("xlsx", "unknown extension"),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICTION))
def test_bad_prediction_data_is_one_line_exit_2_and_no_file(case, model, tmp_path, capsys):
    change, message = BAD_PREDICTION[case]
    a, b, color, label = synthetic(3)
    header, rows = ["a", "b", "color", "answer"], [list(r) for r in zip(a[:50], b[:50], color[:50], label[:50])]
    if change == "drop b":
        header, rows = ["a", "color", "answer"], [[r[0], r[2], r[3]] for r in rows]
    elif change == "add c":
        header, rows = [*header, "extra"], [[*r, 1] for r in rows]
    elif change == "color purple":
        rows[2][2] = "purple"
    elif change == "label perhaps":
        rows[4][3] = "perhaps"
    data = write_csv(tmp_path / ("data.xlsx" if change == "xlsx" else "data.csv"), header, rows)
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(model), "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists() and not list(tmp_path.glob(".lgn-tmp-*"))


def test_wine_is_built_in_with_its_names():
    from lgn.training.data import load_dataset

    wine = load_dataset("wine")
    assert wine.classes == 3 and wine.x_train.shape[1] == 13 and wine.names.features[0] == "alcohol"


def test_names_are_checked_and_version_1_graphs_still_read(tmp_path):
    graph = random_layered(8, 2, 12, classes=2, seed=1)
    assert formats.from_npz_bytes(formats.to_npz_bytes(graph)).names is None
    with np.load(__import__("io").BytesIO(formats.to_npz_bytes(graph))) as archive:
        assert int(archive["version"]) == 1  # graphs without names are written as before
    named = graph.replace(names=Names(classes=("cat", "dog")))
    with np.load(__import__("io").BytesIO(formats.to_npz_bytes(named))) as archive:
        assert int(archive["version"]) == 2
    assert formats.from_npz_bytes(formats.to_npz_bytes(named)).names == named.names
    for bad in (Names(classes=("a", "b", "c")), Names(classes=("a", "a")), Names(classes=("a\nb", "c"))):
        with pytest.raises(GraphError):
            graph.replace(names=bad)
    with pytest.raises(GraphError, match="need an encoder"):
        graph.replace(names=Names(features=("x",)))
    assert c_string('a"b\\c?é') == '"a\\042b\\134c\\077\\303\\251"'


def test_version_2_checkpoints_still_load(model, tmp_path):
    """A version-2 file (no names; the checksum without them) as the previous release wrote it."""
    import json

    from lgn.training.checkpoint import _checksum, _meaning, _read, safetensors_bytes

    metadata, tensors = _read(model)
    metadata = {k: v for k, v in metadata.items() if k != "names"}
    metadata["version"] = "2"
    metadata["checksum"] = _checksum(tensors, _meaning(metadata["config"], metadata["encoder_n_features"]))
    old = tmp_path / "v2.st"
    old.write_bytes(safetensors_bytes(tensors, metadata))
    trained, encoder, info = load_checkpoint(old)
    assert info["names"] is None and json.loads(metadata["info"])["step"] == info["step"]
    x = np.random.default_rng(0).random((20, encoder.n_features)).astype(np.float32)
    graph = to_graph(trained, encoder)
    assert np.array_equal(
        evaluate.predict(graph, evaluate.encode(graph, x)), evaluate.predict(graph, evaluate.encode(graph, x))
    )


@pytest.mark.parametrize(
    "widths, expected",
    [
        (
            ["--width", "100"],
            "--width 100 (the last layer's) must be a multiple of the 3 classes of data.csv: make it 99 or 102",
        ),
        (
            ["--widths", "50,2"],
            "--widths 2 (the last layer's) must be a multiple of the 3 classes of data.csv: make it 3",
        ),
    ],
)
def test_a_last_layer_that_does_not_split_into_the_classes_names_the_fix(table, widths, expected, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(table), "--label", "answer", *widths, "--steps", "5", "--out", str(out)]) == 2
    assert expected in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    "damage, message",
    [("truncated", "not a readable .npz (File is not a zip file)"), ("encrypted", "the array 'X.npy' is encrypted")],
)
def test_a_damaged_npz_is_one_line_exit_2(damage, message, model, tmp_path, capsys):
    """zipfile's own errors (BadZipFile, and a RuntimeError asking for a password) are not numpy's."""
    buffer = __import__("io").BytesIO()
    np.savez(buffer, X=np.zeros((4, 3)))
    data = bytearray(buffer.getvalue())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general purpose flags, bit 0
            data[data.index(signature) + offset] |= 0x1
    (tmp_path / "data.npz").write_bytes(bytes(data))
    assert main(["predict", str(model), "--data", str(tmp_path / "data.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
