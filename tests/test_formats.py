"""The .npz format and the text form: round trips, golden text, and refusal of bad files."""

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

from lgn.compiler import formats
from lgn.compiler.errors import GraphError, GraphFormatError
from lgn.compiler.ir import Encoder, GateGraph

from .strategies import gate_graphs


@given(gate_graphs())
def test_text_round_trip(graph):
    text = formats.to_text(graph)
    assert formats.from_text(text).same_as(graph)
    assert formats.to_text(formats.from_text(text)) == text


@given(gate_graphs())
def test_npz_round_trip_and_bytes_are_deterministic(graph):
    data = formats.to_npz_bytes(graph)
    assert formats.from_npz_bytes(data).same_as(graph)
    assert formats.to_npz_bytes(formats.from_npz_bytes(data)) == data


def golden_graph() -> GateGraph:
    """A 3-input, 2-class example covering 2-input gates, a negated output, a constant output."""
    return GateGraph.build(
        n_inputs=3,
        fanins=[[2, 3], [3, 4], [5, 6], [7, 2], [0, 4]],
        tables=[0x8, 0x6, 0xE, 0x9, 0x5],
        outputs=[7, 8, 6, 9, 1],
        output_negated=[False, True, False, False, False],
        class_offsets=[0, 2, 5],
        encoder=Encoder(2, np.array([0, 0, 1]), np.array([127.5, 63.75, 0.1])),
    )


def test_save_load_and_load_graph_sniffs_text(tmp_path):
    g = golden_graph()
    formats.save_npz(g, tmp_path / "g.npz")
    assert formats.load_npz(tmp_path / "g.npz").same_as(g)
    (tmp_path / "g.txt").write_text(formats.to_text(g))
    assert formats.load_graph(tmp_path / "g.txt").same_as(g)


def npz_bytes(**fields) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **fields)
    return buf.getvalue()


def good_fields() -> dict:
    g = golden_graph()
    return dict(np.load(io.BytesIO(formats.to_npz_bytes(g))))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.pop("tables"), "missing field"),
        (lambda f: f.update(format=np.array("something-else")), "not a gate-graph file"),
        (lambda f: f.update(version=np.array(99)), "format version 99 is not supported"),
        (lambda f: f.update(tables=f["tables"].astype(np.float64)), "field 'tables' has dtype float64"),
        (lambda f: f.update(fanins=f["fanins"].ravel()), "field 'fanins' must be 2-dimensional"),
        (lambda f: f.update(n_inputs=np.array([3, 4])), "field 'n_inputs' must be an integer scalar"),
        (lambda f: f.update(extra=np.zeros(3)), "unknown field"),
        (lambda f: f.pop("encoder_feature"), "encoder fields must come together"),
        (lambda f: f.update(fanins=np.array([[2, 3], [3, 4], [5, 9], [7, 2], [0, 4]])), "reads node 9"),
        (lambda f: f.update(class_offsets=np.array([0, 2, 4])), "class groups must cover the 5 outputs"),
    ],
)
def test_npz_refuses_malformed_fields(mutate, message):
    fields = good_fields()
    mutate(fields)
    with pytest.raises(GraphError, match=message):
        formats.from_npz_bytes(npz_bytes(**fields))


def test_npz_refuses_truncated_foreign_and_pickled(tmp_path):
    data = formats.to_npz_bytes(golden_graph())
    with pytest.raises(GraphFormatError, match="not a gate-graph .npz file"):
        formats.from_npz_bytes(data[: len(data) // 2])
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    for bad in (b"hello world", b"", buf.getvalue()):
        with pytest.raises(GraphFormatError, match="neither the .npz format"):
            formats.from_npz_bytes(bad)
    with pytest.raises(GraphFormatError, match="a Python pickle"):
        formats.from_npz_bytes(pickle.dumps([1, 2]))
    fields = good_fields()
    fields["tables"] = np.array([object()] * 5, dtype=object)  # needs pickle to load
    with pytest.raises(GraphFormatError, match="field 'tables.npy' holds Python objects"):
        formats.from_npz_bytes(npz_bytes(**fields))


def _npz_member(name: str, payload: bytes, declared_size: int | None = None, encrypted: bool = False) -> bytes:
    """A one-member zip whose local and central headers may lie about the uncompressed size, or flag the
    member as encrypted."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, payload)
    data = bytearray(buffer.getvalue())
    if declared_size is not None:
        for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            at = data.index(signature)
            data[at + offset : at + offset + 4] = declared_size.to_bytes(4, "little")
    if encrypted:
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general purpose flags, bit 0
            data[data.index(signature) + offset] |= 0x1
    return bytes(data)


def test_npz_with_an_encrypted_member_is_refused_in_one_line():
    """The fuzz test found it: zipfile asks for a password with a RuntimeError."""
    with pytest.raises(GraphFormatError, match="field 'tables.npy' is encrypted"):
        formats.from_npz_bytes(_npz_member("tables.npy", bytes(100), encrypted=True))


def test_npz_sizes_are_checked_before_anything_is_allocated():
    """A member whose zip entry claims gigabytes, or whose array header claims more than the member holds,
    is refused from the headers: numpy would allocate the declared array before reading a byte of it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<i8", "fortran_order": False, "shape": (10**9,)})
    with pytest.raises(GraphFormatError, match="declares shape"):
        formats.from_npz_bytes(_npz_member("fanins.npy", header.getvalue() + bytes(64)))
    with pytest.raises(GraphFormatError, match="claims 4000000000 bytes"):
        formats.from_npz_bytes(_npz_member("fanins.npy", header.getvalue(), declared_size=4_000_000_000))


class _Boom:
    def __reduce__(self):
        return (Path("/tmp/lgn-pwned").touch, ())


def test_loading_never_executes_code(tmp_path):
    fields = good_fields()
    fields["tables"] = np.array([_Boom()], dtype=object)
    path = tmp_path / "evil.npz"
    path.write_bytes(npz_bytes(**fields))
    Path("/tmp/lgn-pwned").unlink(missing_ok=True)
    with pytest.raises(GraphFormatError):
        formats.load_npz(path)
    assert not Path("/tmp/lgn-pwned").exists()
    path.write_bytes(pickle.dumps(golden_graph()))
    with pytest.raises(GraphFormatError, match="a Python pickle, not a gate graph"):
        formats.load_graph(path)
    assert not Path("/tmp/lgn-pwned").exists()


def test_zip_with_garbage_member(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("tables.npy", b"garbage")
    with pytest.raises(GraphFormatError):
        formats.from_npz_bytes(buf.getvalue())


@pytest.mark.parametrize(
    "text, message",
    [
        ("nonsense\n", "line 1: expected 'lgn-gategraph v1'"),
        (
            "lgn-gategraph v1\ninputs 2\narity 2\nclasses 1\nnode 5 = 0x8(2, 3)\n",
            "line 5: node ids must count up",
        ),
        ("lgn-gategraph v1\ninputs 2\narity 2\nclasses 1\nnode 4 = 0x8(2)\n", "line 5: 1 fan-ins given"),
        ("lgn-gategraph v1\ninputs 2\nclasses 1\nnode 4 = 0x8(2, 3)\n", "'arity' line must come before"),
        ("lgn-gategraph v1\ninputs 2\narity 2\nclasses 1\nwhat is this\n", "line 5: not a recognised line"),
        ("lgn-gategraph v1\ninputs 2\narity 2\nclasses 2\nout 1 = 2\nout 0 = 3\n", "ascending, contiguous"),
        ("lgn-gategraph v1\ninputs 2\narity 2\nclasses 1\nnode 4 = 0x18(2, 3)\nout 0 = 4\n", "bits beyond"),
        ("lgn-gategraph v1\ninputs 2\ninputs 3\n", "line 3: inputs given twice"),
    ],
)
def test_text_refuses_with_line_numbers(text, message):
    with pytest.raises(GraphError, match=message):
        formats.from_text(text)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(GraphFormatError, match="cannot read"):
        formats.load_graph(tmp_path / "nope.npz")
