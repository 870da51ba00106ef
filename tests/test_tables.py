"""Your own data: tables in (CSV, TSV, .npz, .npy, Parquet), names that travel with the model, predictions out,
and bad data refused with one line and no file left behind."""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.cli import main
from lgn.compiler import c_emit, evaluate, formats, verilog_emit
from lgn.compiler.errors import GraphError, LgnError
from lgn.compiler.names import Names, c_string
from lgn.compiler.random_graph import random_layered

torch = pytest.importorskip("torch")

from lgn.training.checkpoint import load_checkpoint  # noqa: E402
from lgn.training.export import to_graph  # noqa: E402

ROWS = 1200
# The defaults a table gets (lgn.training.sizing: 2 x 300 gates with learned wiring, 2,000 steps: a few seconds).
TRAIN = ["--seed", "3", "--no-progress"]
# A network trained in a second or two: what the tests of reading, verifying and predicting need.
SMALL = ["--layers", "2", "--width", "30", "--steps", "50", "--eval-every", "50", "--init", "gaussian", "--seed", "1",
         "--no-progress"]  # fmt: skip


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
    colors, counts = np.unique(synthetic()[2], return_counts=True)
    assert names.most_frequent == (colors[np.argmax(counts)],)  # over the file, as the categories are
    assert info["test_acc_discrete"] >= 0.95
    graph = to_graph(trained, encoder, names)
    assert graph.names == dataclasses.replace(names, tau=10.0)  # the export adds the training temperature
    for path in (model.parent / "g.npz", model.parent / "g.txt"):
        (formats.save_npz if path.suffix == ".npz" else lambda g, p: p.write_text(formats.to_text(g)))(graph, path)
        again = formats.load_graph(path)
        assert again.names == graph.names and again.same_as(graph)
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


# ---- labels of any dtype in .npz and .npy -------------------------------------------------------------
LABELS = {  # the array, its classes in order, each row's class
    "str": (np.array(["cat", "dog", "cat", "bird"]), ("bird", "cat", "dog"), "cat dog cat bird"),
    "bytes": (
        np.array([b"cat", b"dog", "café".encode(), b"bird"]),
        ("bird", "café", "cat", "dog"),
        "cat dog café bird",
    ),
    "bool": (np.array([True, False, True, True]), ("0", "1"), "1 0 1 1"),  # numbers, as in Parquet: False is 0
    "int": (np.array([2**60 + 1, 2**60, 7, 7]), ("7", str(2**60), str(2**60 + 1)), f"{2**60 + 1} {2**60} 7 7"),
    "float": (np.array([0.5, 2.0, 0.5, 1.25]), ("0.5", "1.25", "2"), "0.5 2 0.5 1.25"),
}


def _label_files(tmp_path: Path, y: np.ndarray) -> list[tuple[str, str | None]]:
    """The same 4-row table as an .npz and as an .npy with a labels file: (data, labels) pairs."""
    x = np.arange(len(y) * 2, dtype=np.float64).reshape(len(y), 2)
    np.savez(tmp_path / "t.npz", X=x, y=y)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return [(str(tmp_path / "t.npz"), None), (str(tmp_path / "x.npy"), str(tmp_path / "y.npy"))]


@pytest.mark.parametrize("kind", sorted(LABELS))
def test_labels_of_every_dtype_are_read_with_their_values_as_names(kind, tmp_path):
    from lgn.training.tables import class_labels, label_indices, read_table

    y, classes, rows = LABELS[kind]
    for data, labels in _label_files(tmp_path, y):
        table = read_table(data, labels)
        found, index = class_labels(table, "y")
        assert found == classes and [found[i] for i in index] == rows.split(), data
        assert np.array_equal(label_indices(table, "y", classes), index)


def _export(model: Path, out: Path) -> Path:
    assert main(["export", str(model), "--out", str(out)]) == 0
    return out


def test_a_model_trained_on_string_labels_keeps_them(tmp_path, capsys):
    """From an .npz with str labels: the class names in lgn info, the predictions and the C header."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(240, 2))
    y = np.where(x[:, 0] > 0, "späť", "ahead")
    np.savez(tmp_path / "t.npz", X=x, y=np.char.encode(y, "utf-8"))  # as UTF-8 bytes
    out = tmp_path / "m.st"
    assert main(["train", "--data", str(tmp_path / "t.npz"), "--out", str(out), *SMALL]) == 0
    assert load_checkpoint(out)[2]["names"].classes == ("ahead", "späť")
    capsys.readouterr()
    assert main(["info", str(out)]) == 0 and "class names 'ahead', 'späť'" in capsys.readouterr().out
    assert main(["predict", str(out), "--data", str(tmp_path / "t.npz"), "--quiet"]) == 0
    assert set(capsys.readouterr().out.split()[1:]) <= {"ahead", "späť"}
    graph = formats.load_graph(_export(out, tmp_path / "g.npz"))
    assert c_string("späť") in c_emit.emit_c(graph).files["lgn_net.c"]


BAD_ARRAYS = {
    "object labels in an .npz": ("npz", "y", "the labels y are an object array", "y.astype(str)"),
    "object labels in an .npy": ("npy", "y", "the labels y are an object array", "y.astype(str)"),
    "object features": ("npz", "X", "the features X are an object array", "X.astype(float)"),
    "object column names": ("npz", "columns", "the column names are an object array", "columns.astype(str)"),
    "0-d column names": ("npz", "columns-0d", "columns must be a 1-D array of strings", "shape ()"),
    "numbers as column names": ("npz", "columns-int", "columns must be a 1-D array of strings", "int64"),
    "bytes that are not UTF-8": ("npz", "y-latin1", "the label in row 3 is not UTF-8 text", "b'caf\\xe9'"),
    "complex labels": ("npy", "y-complex", "labels of dtype complex128 are not supported", "numbers or strings"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_arrays_lgn_cannot_read_are_one_line_naming_the_fix(case, tmp_path, capsys):
    """Object arrays (a pickle inside) are never loaded; the message says how to save them instead."""
    form, what, message, fix = BAD_ARRAYS[case]
    x = np.zeros((4, 2))
    y = np.array(["a", "b", "a", "b"])
    arrays = {"X": x, "y": y}
    if what == "y":
        arrays["y"] = y.astype(object)
    elif what == "X":
        arrays["X"] = x.astype(object)
    elif what == "columns":
        arrays["columns"] = np.array(["p", "q"], dtype=object)
    elif what == "columns-0d":
        arrays["columns"] = np.array("pq")
    elif what == "columns-int":
        arrays["columns"] = np.array([1, 2])
    elif what == "y-latin1":
        arrays["y"] = np.array([b"a", b"b", "café".encode("latin-1"), b"a"])
    elif what == "y-complex":
        arrays["y"] = np.array([1j, 2j, 1j, 2j])
    if form == "npz":
        np.savez(tmp_path / "t.npz", **arrays, allow_pickle=True)
        argv = ["--data", str(tmp_path / "t.npz")]
    else:
        np.save(tmp_path / "x.npy", arrays["X"])
        np.save(tmp_path / "y.npy", arrays["y"], allow_pickle=True)
        argv = ["--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]
    assert main(["train", *argv, "--out", str(tmp_path / "m.st"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lgn: error: ") and message in err and fix in err, err
    assert not (tmp_path / "m.st").exists()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=6), min_size=2, max_size=12))
def test_text_labels_mean_the_same_in_an_npz_an_npy_and_a_csv(texts):
    """Labels as a str array, as UTF-8 bytes and as CSV cells: the same classes for the same rows, or the
    same refusal (a missing label, a single class)."""
    from lgn.training.tables import TableError, class_labels, read_table

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        y = np.array(texts, dtype=str)
        x = np.zeros((len(texts), 1))
        np.savez(root / "s.npz", X=x, y=y)
        np.savez(root / "b.npz", X=x, y=np.array([t.encode() for t in texts], dtype="S"))
        np.save(root / "x.npy", x)
        np.save(root / "y.npy", y)
        write_csv(root / "t.csv", ["x0", "y"], [[0, t] for t in texts])
        answers = []
        for data, labels in ((root / "t.csv", None), (root / "s.npz", None), (root / "b.npz", None),
                             (root / "x.npy", root / "y.npy")):  # fmt: skip
            try:
                classes, index = class_labels(read_table(data, labels), "y")
                answers.append((classes, index.tolist()))
            except TableError as exc:
                answers.append(re.sub(r"^.*?: (column 'y', (line|row) \d+: )?", "", str(exc)))  # less where
        assert all(a == answers[0] for a in answers), answers


# ---- predict: probabilities and categories unseen in training ------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, Path]:
    """(a model trained in seconds at temperature 3, its data: two numeric columns, a categorical one)."""
    a, b, color, label = synthetic(4)
    root = tmp_path_factory.mktemp("small")
    data = write_csv(root / "data.csv", ["a", "b", "color", "answer"], zip(a[:400], b[:400], color[:400], label[:400]))
    out = root / "small.st"
    assert main(["train", "--data", str(data), "--label", "answer", "--tau", "3", "--out", str(out), *SMALL]) == 0
    return out, data


def test_predict_proba_is_softmax_of_the_scores_at_the_training_temperature(small, tmp_path, capsys):
    model, data = small
    graph = formats.load_graph(_export(model, tmp_path / "g.npz"))
    assert graph.names.tau == 3.0  # from the checkpoint's config, through the export and the graph file
    (tmp_path / "g.txt").write_text(formats.to_text(graph))
    assert formats.load_graph(tmp_path / "g.txt").names.tau == 3.0
    outputs = {}
    for source in (model, tmp_path / "g.npz"):
        out = tmp_path / f"{Path(source).suffix[1:]}.csv"
        argv = ["predict", str(source), "--data", str(data), "--scores", "--proba", "--quiet", "--out", str(out)]
        assert main(argv) == 0
        outputs[source] = out.read_text()
    assert outputs[model] == outputs[tmp_path / "g.npz"]
    rows = list(csv.reader(outputs[model].splitlines()))
    classes = ["maybe", "no", "yes"]
    assert rows[0] == ["prediction", *(f"score_{c}" for c in classes), *(f"proba_{c}" for c in classes)]
    scores = np.array([[int(v) for v in r[1:4]] for r in rows[1:]])
    proba = np.array([[float(v) for v in r[4:]] for r in rows[1:]])
    assert np.allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.array_equal(proba, evaluate.probabilities(scores, 3.0))  # written exactly (shortest repr)
    predicted = [classes.index(r[0]) for r in rows[1:]]
    assert np.array_equal(np.argmax(proba, axis=1), predicted)  # ties: the lowest class, like the prediction


def test_predict_proba_without_the_training_temperature_is_one_line(small, tmp_path, capsys):
    model, data = small
    graph = formats.load_graph(_export(model, tmp_path / "g.npz"))
    formats.save_npz(graph.replace(names=dataclasses.replace(graph.names, tau=0.0)), tmp_path / "old.npz")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "old.npz"), "--data", str(data), "--proba"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks its training temperature (tau)" in err, err
    assert main(["predict", str(tmp_path / "old.npz"), "--data", str(data), "--scores", "--quiet"]) == 0


def test_unseen_categories_are_an_error_unless_zero_or_default_is_asked(small, tmp_path, capsys):
    from lgn.training.tables import features, features_and_unseen, read_table

    model, data = small
    rows = list(csv.reader(data.open()))
    rows[3][2] = rows[8][2] = "purple"
    rows[5][2] = "teal"
    odd = write_csv(tmp_path / "odd.csv", rows[0], rows[1:])
    names = load_checkpoint(model)[2]["names"]
    table, plain = read_table(odd), read_table(data)
    with pytest.raises(LgnError, match="column 'color', line 4: category 'purple' was not seen in training"):
        features(table, names)
    zero, unseen = features_and_unseen(table, names, "zero")
    assert unseen == {"color": 3}
    one_hot = slice(len(names.numeric), None)
    changed = [2, 4, 7]  # data rows of lines 4, 6 and 9
    assert not zero[changed, one_hot].any() and np.array_equal(
        zero[:, : len(names.numeric)], features(plain, names)[:, :2]
    )
    common, unseen = features_and_unseen(table, names, "default")
    assert unseen == {"color": 3} and names.most_frequent[0] in ("blue", "green", "red")
    expected = features(plain, names)
    expected[changed, one_hot] = (np.array(names.categorical[0][1]) == names.most_frequent[0]).astype(np.float32)
    assert np.array_equal(common, expected)
    assert np.array_equal(np.delete(zero, changed, 0), np.delete(features(plain, names), changed, 0))

    capsys.readouterr()
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), "--data", str(odd), "--out", str(out)]) == 2 and not out.exists()
    assert "category 'purple' was not seen in training" in capsys.readouterr().err
    for policy in ("zero", "default"):
        assert main(["predict", str(model), "--data", str(odd), "--unknown", policy, "--quiet", "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "'color' in 3 rows" in err and f"--unknown {policy}" in err, err
        assert len(out.read_text().splitlines()) == len(rows)
    # A model from before the most frequent categories were kept offers zero and error only.
    graph = formats.load_graph(_export(model, tmp_path / "g.npz"))
    formats.save_npz(graph.replace(names=dataclasses.replace(graph.names, most_frequent=())), tmp_path / "old.npz")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "old.npz"), "--data", str(odd), "--unknown", "default"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not record its columns' most frequent categories" in err, err


def test_names_from_before_tau_and_most_frequent_still_load_and_are_written_as_before():
    old = (
        '{"categorical":[["c",["x","y"]]],"classes":["a","b"],"features":["n","c=x","c=y"],"fill":[],"ignored":[],'
        '"label":"t"}'
    )
    names = Names.from_json(old)
    assert names.tau == 0.0 and names.most_frequent == () and names.to_json() == old
    newer = dataclasses.replace(names, tau=2.5, most_frequent=("y",))
    assert Names.from_json(newer.to_json()) == newer
    for bad, message in [
        ('"tau":-1', "tau must be a finite number"),
        ('"tau":"10"', "tau must be a finite number"),
        ('"most_frequent":["z"]', "most_frequent must name one of its categories"),
        ('"most_frequent":["x","y"]', "most_frequent must name one of its categories"),
    ]:
        with pytest.raises(GraphError, match=message):
            Names.from_json(old[:-1] + "," + bad + "}")
