"""lgn.LogicClassifier: a scikit-learn classifier on DataFrames, whose saved graph the lgn commands, the
evaluator and the C library answer the same way; scikit-learn's own estimator checks."""

from __future__ import annotations

import csv
import pickle
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")  # with it, scikit-learn (both come with the [train] extra)

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from lgn import LogicClassifier  # noqa: E402
from lgn.cli import main  # noqa: E402
from lgn.compiler import c_build, evaluate, formats  # noqa: E402

# A fit in a few tenths of a second on one core (the checks' accuracy floor, 0.83 on blobs, still holds).
SMALL: dict[str, Any] = dict(steps=50, width=60, lr=0.05, thresholds=8, device="cpu")


def machines(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A mixed table: numbers, a category column, a text column, a bool; the label is text."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "temperature": rng.normal(50, 10, n).round(1),
            "load": rng.integers(0, 100, n),
            "site": pd.Categorical(rng.choice(["north", "south", "east"], n)),
            "vendor": rng.choice(["acme", "globex"], n).astype(object),
            "spare": rng.random(n) < 0.5,
        }
    )
    hot = (frame["temperature"] > 50) | (frame["site"] == "east")
    return frame, np.where(hot, "fault", "ok")


@pytest.fixture(scope="module")
def fitted() -> tuple[LogicClassifier, pd.DataFrame, np.ndarray]:
    frame, y = machines()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a short run may be judged weak; not what is tested here
        model = LogicClassifier(**{**SMALL, "steps": 200, "width": 120}, random_state=0).fit(frame, y)
    return model, frame, y


def test_a_dataframe_with_categories_and_text_labels(fitted):
    model, frame, y = fitted
    assert list(model.classes_) == ["fault", "ok"]
    assert model.n_features_in_ == 5
    assert list(model.feature_names_in_) == list(frame.columns)
    names = model.graph_.names
    assert names.features == (
        "temperature", "load", "site=east", "site=north", "site=south", "vendor=acme", "vendor=globex",
        "spare=False", "spare=True",
    )  # fmt: skip
    assert names.classes == ("fault", "ok") and names.label == "y"
    assert model.tau is None and names.tau in (3.0, 10.0, 30.0)  # cross-validated on the rows (a small table)
    predicted = model.predict(frame)
    assert set(predicted) <= {"fault", "ok"}
    assert model.score(frame, y) > 0.8


def test_probabilities_sum_to_one_and_their_argmax_is_the_prediction(fitted):
    model, frame, _ = fitted
    proba = model.predict_proba(frame)
    assert proba.shape == (len(frame), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.classes_[np.argmax(proba, axis=1)], model.predict(frame))
    np.testing.assert_allclose(np.exp(model.predict_log_proba(frame)), proba)


def test_the_saved_graph_answers_the_same_through_the_evaluator_and_the_c_library(fitted, tmp_path):
    model, frame, _ = fitted
    path = model.save(tmp_path / "machines.npz")
    graph = formats.load_graph(path)
    from lgn import frames
    from lgn.training.tables import features

    raw = features(frames.columns(frames.checked(frame), list(map(str, frame.columns))), graph.names)
    expected = model.predict(frame)
    np.testing.assert_array_equal(model.classes_[evaluate.predict(graph, evaluate.encode(graph, raw))], expected)
    net = c_build.compile_c(graph, isa="portable")
    np.testing.assert_array_equal(model.classes_[net.predict_features(raw)], expected)


def test_lgn_predict_reads_a_csv_of_the_same_columns_as_the_classifier(fitted, tmp_path, capsys):
    model, frame, y = fitted
    model.save(tmp_path / "m.npz")
    frame.assign(state=y).to_csv(tmp_path / "rows.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = clone(model).fit(frame, pd.Series(y, name="state"))  # the label column takes the Series' name
    assert model.graph_.names.label == "state"
    model.save(tmp_path / "m.npz")
    code = main(["predict", str(tmp_path / "m.npz"), "--data", str(tmp_path / "rows.csv"), "--out",
                 str(tmp_path / "out.csv"), "--quiet"])  # fmt: skip
    assert code == 0
    with (tmp_path / "out.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert [row[-1] for row in rows[1:]] == list(model.predict(frame))
    assert f"accuracy {model.score(frame, y):.4f} on the {len(frame)} labelled rows" in capsys.readouterr().out


def test_compile_c_and_verilog_write_what_lgn_compile_writes(fitted, tmp_path):
    model, _, _ = fitted
    c_dir = model.compile_c(tmp_path / "lib", isa="portable")
    assert {"lgn_net.c", "lgn_net.h", "Makefile"} <= {p.name for p in c_dir.iterdir()}
    source = (c_dir / "lgn_net.c").read_text()
    assert '"fault"' in source and '"site=east"' in source
    v_dir = model.compile_verilog(tmp_path / "rtl", module="machines")
    assert any(p.suffix == ".v" and "module machines" in p.read_text() for p in v_dir.iterdir())
    with pytest.raises(ValueError, match="argument shape: invalid choice: 'round'"):
        model.compile_c(tmp_path / "bad", shape="round")
    with pytest.raises(ValueError, match="module 'bad name' is not a plain Verilog identifier"):
        model.compile_verilog(tmp_path / "bad", module="bad name")


def test_pickled_and_cloned(fitted):
    model, frame, _ = fitted
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(frame), model.predict(frame))
    fresh = clone(model)
    assert fresh.get_params() == model.get_params() and not hasattr(fresh, "graph_")


def test_get_params_and_set_params_round_trip():
    model = LogicClassifier(width=90, categorical=["site"], fill_na="mean", random_state=3)
    params = model.get_params()
    assert params["width"] == 90 and params["categorical"] == ["site"] and params["random_state"] == 3
    assert params["layers"] is None and params["unknown"] == "error"
    other = LogicClassifier().set_params(**params)
    assert other.get_params() == params
    assert "kwargs" not in params


def test_errors_are_clear(fitted):
    model, frame, y = fitted
    with pytest.raises(NotFittedError):
        LogicClassifier().predict(frame)
    with pytest.raises(ValueError, match="X has 2 features, but LogicClassifier is expecting 5 features"):
        with pytest.warns(UserWarning, match="X does not have valid feature names"):
            model.predict(frame[["temperature", "load"]].to_numpy())
    with pytest.raises(ValueError, match="missing:\n- spare"):
        model.predict(frame.iloc[:, :4])
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame[frame.columns[::-1]])
    holes = frame.assign(temperature=frame["temperature"].mask(frame.index == 7))
    with pytest.raises(ValueError, match=r"column 'temperature', row 7: missing or NaN value \(fill_na"):
        clone(model).fit(holes, y)
    with pytest.raises(ValueError, match="every column of X is constant"):
        clone(model).fit(np.ones((20, 2)), np.arange(20) % 2)
    with pytest.raises(ValueError, match="one class"):
        clone(model).fit(frame, np.full(len(frame), "ok"))
    with pytest.raises(ValueError, match="fill_na must be one of"):
        clone(model).set_params(fill_na="median").fit(frame, y)
    with pytest.raises(ValueError, match="width must be"):
        clone(model).set_params(width=-3).fit(frame, y)
    with pytest.raises(ValueError, match="categorical: no column 'colour'"):
        clone(model).set_params(categorical=["colour"]).fit(frame, y)


def test_missing_values_filled_and_unseen_categories_by_policy():
    frame, y = machines(120, seed=1)
    holes = frame.assign(temperature=frame["temperature"].mask(frame.index % 10 == 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = LogicClassifier(**SMALL, fill_na="mean").fit(holes, y)
    means = [float(np.float32(holes[c].mean())) for c in ("temperature", "load")]
    assert model.graph_.names.fill == pytest.approx(tuple(means))
    assert len(model.predict(holes)) == len(holes)
    new = frame.head(3).assign(site=pd.Categorical(["west", "north", "west"]))
    with pytest.raises(ValueError, match="category 'west' was not seen in training"):
        model.predict(new)
    for policy in ("zero", "default"):
        with pytest.warns(UserWarning, match="'site': 2 rows"):
            assert len(model.set_params(unknown=policy).predict(new)) == 3


def test_filling_missing_values_leaves_the_callers_data_untouched():
    """Read-only input (pandas' copy-on-write columns, a frozen array) is read, never written: the holes
    stay holes in the caller's data and the fit still fills them."""
    frame, y = machines(120, seed=3)
    numbers = frame[["temperature", "load"]].to_numpy(dtype=np.float64)
    numbers[::10, 0] = np.nan
    numbers.setflags(write=False)
    before = numbers.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = LogicClassifier(**SMALL, fill_na="mean").fit(numbers, y)
    np.testing.assert_array_equal(numbers, before)  # NaN == NaN here: the holes are still there
    assert len(model.predict(numbers)) == len(numbers)


def test_labels_of_any_type_keep_their_values():
    frame, y = machines(120, seed=2)
    for labels in (y == "fault", np.where(y == "fault", 3, 7), np.where(y == "fault", 1.0, 2.0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = LogicClassifier(**SMALL).fit(frame, labels)
        np.testing.assert_array_equal(model.classes_, np.unique(labels))
        assert model.predict(frame).dtype == np.asarray(labels).dtype
    assert model.graph_.names.classes == ("1", "2")  # as a CSV cell of them reads
    with pytest.raises(ValueError, match="Unknown label type"):
        LogicClassifier(**SMALL).fit(frame, np.where(y == "fault", 0.5, 2.0))


def test_a_numeric_array_and_categorical_positions():
    rng = np.random.default_rng(4)
    x = np.column_stack([rng.normal(size=150), rng.integers(0, 3, 150)])
    y = (x[:, 1] == 2).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = LogicClassifier(**SMALL, categorical=[1]).fit(x, y)
    assert model.graph_.names.features == ("x0", "x1=0.0", "x1=1.0", "x1=2.0")
    assert not hasattr(model, "feature_names_in_")
    assert model.score(x, y) > 0.9


def test_a_weak_model_is_a_warning():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 3)), rng.integers(0, 2, 300)  # nothing to learn
    with pytest.warns(UserWarning, match="not clearly better than always answering"):
        LogicClassifier(**SMALL).fit(x, y)


def test_pipeline_cross_validation_and_grid_search():
    frame, y = machines(150, seed=3)
    numbers = frame[["temperature", "load"]].to_numpy()
    target = y == "fault"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pipe = make_pipeline(StandardScaler(), LogicClassifier(**SMALL))
        assert len(cross_val_score(pipe, numbers, target, cv=3)) == 3
        search = GridSearchCV(LogicClassifier(**SMALL), {"width": [30, 60], "random_state": [0, 1]}, cv=2)
        search.fit(frame, y)
    assert search.best_params_["width"] in (30, 60)
    assert search.predict(frame).shape == (len(frame),)


def test_import_lgn_stays_light():
    code = "import sys, lgn; assert 'torch' not in sys.modules and 'sklearn' not in sys.modules; lgn.LogicClassifier"
    subprocess.run([sys.executable, "-c", code], check=True)


@parametrize_with_checks([LogicClassifier(**SMALL)])
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny random tables: the health findings speak up
        check(estimator)
