"""Fuzzing the readers: random mutations of valid files (bytes flipped, cut, inserted, header fields changed)
give either a correct result or the reader's own one-line error, never another exception.

"Correct" for a graph means a :class:`GateGraph` that passed the IR's validating constructor (the evaluator
runs on it); for a checkpoint, a model whose exported graph does the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lgn.compiler import evaluate, formats
from lgn.compiler.errors import LgnError
from lgn.compiler.random_graph import random_layered

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

GRAPH = random_layered(n_inputs=6, layers=2, width=8, arity=2, classes=2, seed=3, pass_through=0.2)
TEXT = formats.to_text(GRAPH).encode()
NPZ = formats.to_npz_bytes(GRAPH)


@st.composite
def mutated(draw, original: bytes) -> bytes:
    """``original`` with a few random edits: byte flips, a cut, an insertion, a duplicated slice."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "duplicate", "set"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif data:
            data[at] = draw(st.sampled_from([0, 0xFF, ord("9"), ord("-"), ord("\n")]))
    return bytes(data)


def _check_graph_reader(path: Path) -> None:
    try:
        graph = formats.load_graph(path)
    except LgnError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    bits = np.random.default_rng(0).integers(0, 2, (4, graph.n_inputs)).astype(bool)
    evaluate.predict(graph, bits)  # a graph that loads is one the evaluator runs


@FUZZ
@given(data=mutated(TEXT))
def test_text_reader_survives_mutations(data, tmp_path):
    path = tmp_path / "g.txt"
    path.write_bytes(data)
    _check_graph_reader(path)


@FUZZ
@given(data=mutated(NPZ))
def test_npz_reader_survives_mutations(data, tmp_path):
    path = tmp_path / "g.npz"
    path.write_bytes(data)
    _check_graph_reader(path)


@FUZZ
@given(
    field=st.sampled_from(["n_inputs", "fanins", "tables", "outputs", "output_negated", "class_offsets", "version"]),
    value=st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.lists(st.integers(-(2**40), 2**40), max_size=20),
        st.floats(allow_nan=True),
        st.booleans(),
    ),
)
def test_npz_reader_survives_wrong_fields(field, value, tmp_path):
    """Each field of a valid npz replaced by a value of another type, sign or size."""
    with np.load(__import__("io").BytesIO(NPZ)) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays[field] = np.asarray(value)
    path = tmp_path / "g.npz"
    np.savez(path, **arrays)
    _check_graph_reader(path)


# ---- the checkpoint reader ----------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    from lgn.training.config import TrainConfig
    from lgn.training.trainer import train

    out = tmp_path_factory.mktemp("fuzz") / "m.st"
    train(TrainConfig(dataset="iris", layers=2, width=30, steps=5, eval_every=5, out=str(out), progress=False))
    return out.read_bytes()


def _check_checkpoint_reader(path: Path) -> None:
    from lgn.training.checkpoint import load_checkpoint
    from lgn.training.export import to_graph

    try:
        model, encoder, _ = load_checkpoint(path)
    except LgnError as exc:
        assert "\n" not in str(exc)
        return
    to_graph(model, encoder)  # what loads, exports


@FUZZ
@given(data=st.data())
def test_checkpoint_reader_survives_mutations(data, checkpoint_bytes, tmp_path):
    path = tmp_path / "m.st"
    path.write_bytes(data.draw(mutated(checkpoint_bytes)))
    _check_checkpoint_reader(path)


@FUZZ
@given(data=st.data())
def test_checkpoint_reader_survives_header_edits(data, checkpoint_bytes, tmp_path):
    """The JSON header edited field by field (dtype, shape, offsets, metadata), the file kept whole."""
    n = int.from_bytes(checkpoint_bytes[:8], "little")
    header, body = json.loads(checkpoint_bytes[8 : 8 + n]), checkpoint_bytes[8 + n :]
    name = data.draw(st.sampled_from(sorted(header)))
    if name == "__metadata__":
        key = data.draw(st.sampled_from(sorted(header[name])))
        header[name][key] = data.draw(st.sampled_from(["", "0", "-1", "1e309", "[]", "{}", "null", str(2**70)]))
    else:
        key = data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
        header[name][key] = data.draw(
            st.one_of(
                st.sampled_from(["BF16", "F16", "F64", "I8", "U8", "BOOL", "F8_E4M3", "I32"]),
                st.lists(st.integers(0, 2**40), max_size=3),
            )
        )
    text = json.dumps(header)
    text += " " * (-len(text) % 8)
    path = tmp_path / "m.st"
    path.write_bytes(len(text).to_bytes(8, "little") + text.encode() + body)
    _check_checkpoint_reader(path)
