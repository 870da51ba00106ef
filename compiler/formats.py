"""Reading and writing gate graphs: the versioned ``.npz`` format and the one-gate-per-line text form.

Both formats are documented field by field in docs/ir.md. Loading never executes code from a file:
``.npz`` files are read with ``allow_pickle=False`` and every field is checked before use.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import GraphError, GraphFormatError
from .ir import MAX_FEATURES, MAX_INPUTS, MAX_NODES, Encoder, GateGraph
from .names import Names
from .truth import gate_name

NPZ_FORMAT = "lgn-gategraph"
NPZ_VERSION = 2  # written only for graphs with names; graphs without are written as version 1, as before
READS = (1, 2)
TEXT_HEADER = "lgn-gategraph v1"

_REQUIRED = (
    "format",
    "version",
    "n_inputs",
    "fanins",
    "tables",
    "outputs",
    "output_negated",
    "class_offsets",
)
_ENCODER = ("encoder_n_features", "encoder_feature", "encoder_threshold")


# ---- .npz ----------------------------------------------------------------------------------------
def to_npz_bytes(graph: GateGraph) -> bytes:
    """The graph as the bytes of a ``.npz`` file (deterministic: no timestamps beyond zip's fixed ones)."""
    fields = {
        "format": np.array(NPZ_FORMAT),
        "version": np.array(NPZ_VERSION if graph.names is not None else 1, dtype=np.int64),
        "n_inputs": np.array(graph.n_inputs, dtype=np.int64),
        "fanins": graph.fanins,
        "tables": graph.tables,
        "outputs": graph.outputs,
        "output_negated": graph.output_negated,
        "class_offsets": graph.class_offsets,
    }
    if graph.encoder is not None:
        fields["encoder_n_features"] = np.array(graph.encoder.n_features, dtype=np.int64)
        fields["encoder_feature"] = graph.encoder.feature
        fields["encoder_threshold"] = graph.encoder.threshold
    if graph.names is not None:
        fields["names"] = np.array(graph.names.to_json())
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **fields)  # type: ignore[arg-type]  # numpy's stub types the keywords as bool
    return buffer.getvalue()


def save_npz(graph: GateGraph, path: str | Path) -> None:
    """Write ``graph`` to ``path`` in the ``.npz`` format of docs/ir.md."""
    Path(path).write_bytes(to_npz_bytes(graph))


def load_npz(path: str | Path) -> GateGraph:
    """Read and validate a graph file; raise :class:`GraphFormatError` saying what is wrong and where."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GraphFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return from_npz_bytes(data)
    except GraphError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def from_npz_bytes(data: bytes) -> GateGraph:
    """Parse the bytes of a ``.npz`` graph file (see :func:`load_npz`)."""
    if data[:1] == b"\x80":
        raise GraphFormatError("a Python pickle, not a gate graph (lgn never unpickles: pickles can run code)")
    if data[:4] != b"PK\x03\x04":
        raise GraphFormatError(
            f"not a gate-graph file: neither the .npz format (a zip archive) nor the text form (first line "
            f"{TEXT_HEADER!r})"
        )
    _check_declared_sizes(data)
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise GraphFormatError(f"not a gate-graph .npz file (truncated or foreign: {exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise GraphFormatError("not a gate-graph .npz file (a bare .npy array)")
    with archive:
        present = set(archive.files)
        missing = [n for n in _REQUIRED if n not in present]
        if "format" in present and _scalar_text(archive, "format") != NPZ_FORMAT:
            raise GraphFormatError(f"not a gate-graph file (format field is not {NPZ_FORMAT!r})")
        if missing:
            raise GraphFormatError(f"missing field(s): {', '.join(missing)}")
        version = _scalar_int(archive, "version")
        if version not in READS:
            raise GraphFormatError(f"format version {version} is not supported (this tool reads {READS})")
        unknown = present - set(_REQUIRED) - set(_ENCODER) - ({"names"} if version >= 2 else set())
        if unknown:
            raise GraphFormatError(f"unknown field(s): {', '.join(sorted(unknown))}")
        encoder = None
        if any(n in present for n in _ENCODER):
            if not all(n in present for n in _ENCODER):
                raise GraphFormatError(f"encoder fields must come together: {', '.join(_ENCODER)}")
            encoder = Encoder(
                _scalar_int(archive, "encoder_n_features"),
                _array(archive, "encoder_feature", "iu"),
                _array(archive, "encoder_threshold", "f"),
            )
        return GateGraph.build(
            n_inputs=_scalar_int(archive, "n_inputs"),
            fanins=_array(archive, "fanins", "iu", ndim=2),
            tables=_array(archive, "tables", "u", ndim=1),
            outputs=_array(archive, "outputs", "iu", ndim=1),
            output_negated=_array(archive, "output_negated", "b", ndim=1),
            class_offsets=_array(archive, "class_offsets", "iu", ndim=1),
            encoder=encoder,
            names=Names.from_json(_scalar_text(archive, "names")) if "names" in present else None,
        )


def _load_field(archive, name: str) -> np.ndarray:
    try:
        return archive[name]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise GraphFormatError(f"field {name!r} cannot be read ({exc})") from None


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
# Deflate expands at most about 1032:1; a member that claims more is a lie or a bomb.
_MAX_DEFLATE_RATIO = 1032


def encrypted_member(archive: zipfile.ZipFile) -> str | None:
    """The first member flagged as encrypted, if any: zipfile stops at one with a RuntimeError asking for a
    password, where a reader wants its own one-line error."""
    return next((info.filename for info in archive.infolist() if info.flag_bits & 0x1), None)


def _check_declared_sizes(data: bytes) -> None:
    """Every member's declared sizes, checked before numpy allocates anything: the zip's uncompressed size
    against its compressed bytes, the array header's shape against that size. numpy allocates a member's
    whole array from its header before reading it, so this bounds memory to what the file can hold."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            locked = encrypted_member(archive)
            if locked is not None:
                raise GraphFormatError(f"field {locked!r} is encrypted")
            for info in archive.infolist():
                limit = info.compress_size if info.compress_type == zipfile.ZIP_STORED else (
                    _MAX_DEFLATE_RATIO * info.compress_size + 1024
                )  # fmt: skip
                if info.file_size > limit:
                    raise GraphFormatError(
                        f"field {info.filename!r} claims {info.file_size} bytes from {info.compress_size} compressed"
                    )
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version not in _HEADER_READERS:
                        raise GraphFormatError(f"field {info.filename!r} is in .npy format {version}")
                    shape, _, dtype = _HEADER_READERS[version](member)
                    if dtype.hasobject:
                        raise GraphFormatError(f"field {info.filename!r} holds Python objects")
                    if math.prod(shape) * dtype.itemsize > info.file_size:
                        raise GraphFormatError(f"field {info.filename!r} declares shape {shape}, more than it holds")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        raise GraphFormatError(f"not a gate-graph .npz file (truncated or foreign: {exc})") from None


def _array(archive, name: str, kinds: str, ndim: int | None = None) -> np.ndarray:
    value = _load_field(archive, name)
    if value.dtype.kind not in kinds:
        raise GraphFormatError(f"field {name!r} has dtype {value.dtype}; expected kind {kinds!r}")
    if ndim is not None and value.ndim != ndim:
        raise GraphFormatError(f"field {name!r} must be {ndim}-dimensional, got shape {value.shape}")
    return value


def _scalar_int(archive, name: str) -> int:
    value = _load_field(archive, name)
    if value.shape != () or value.dtype.kind not in "iu":
        raise GraphFormatError(f"field {name!r} must be an integer scalar, got {value.dtype}{value.shape}")
    number = int(value)
    if not 0 <= number < 1 << 62:  # a count: the IR's own bounds (docs/ir.md) are checked when the graph is built
        raise GraphFormatError(f"field {name!r} must be a non-negative count, got {number}")
    return number


def _scalar_text(archive, name: str) -> str:
    value = _load_field(archive, name)
    if value.shape != () or value.dtype.kind != "U":
        return ""
    return str(value)


# ---- text form -----------------------------------------------------------------------------------
def to_text(graph: GateGraph) -> str:
    """The one-gate-per-line text form (docs/ir.md); :func:`from_text` parses it back exactly."""
    k = graph.arity
    digits = max(1, (1 << k) // 4)
    lines = [
        TEXT_HEADER,
        f"inputs {graph.n_inputs}",
        f"arity {k}",
        f"classes {graph.n_classes}",
    ]
    first = graph.first_gate
    for i, (row, table) in enumerate(zip(graph.fanins.tolist(), graph.tables.tolist())):
        args = ", ".join(str(s) for s in row)
        lines.append(f"node {first + i} = {table:#0{digits + 2}x}({args})  # {gate_name(table, k)}")
    for c in range(graph.n_classes):
        lo, hi = int(graph.class_offsets[c]), int(graph.class_offsets[c + 1])
        for node, neg in zip(graph.outputs[lo:hi].tolist(), graph.output_negated[lo:hi].tolist()):
            lines.append(f"out {c} = {'!' if neg else ''}{node}")
    if graph.encoder is not None:
        e = graph.encoder
        lines.append(f"encoder {e.n_features}")
        for i, (feat, thr) in enumerate(zip(e.feature.tolist(), e.threshold.tolist())):
            lines.append(f"bit {2 + i} = x[{feat}] > {thr!r}")
    if graph.names is not None:
        lines.append(f"names {graph.names.to_json()}")
    return "\n".join(lines) + "\n"


_NODE = re.compile(r"node (\d+) = 0x([0-9a-fA-F]+)\(([\d, ]*)\)$")
_OUT = re.compile(r"out (\d+) = (!?)(\d+)$")
_BIT = re.compile(r"bit (\d+) = x\[(\d+)\] > (\S+)$")
_KEYED = re.compile(r"(inputs|arity|classes|encoder) (\d+)$")


def from_text(text: str) -> GateGraph:
    """Parse the text form; raise :class:`GraphFormatError` naming the offending line."""
    header: dict[str, int] = {}
    fanins: list[list[int]] = []
    tables: list[int] = []
    outputs: list[int] = []
    negated: list[bool] = []
    out_class: list[int] = []
    features: list[int] = []
    thresholds: list[float] = []
    lines = text.splitlines()
    if not lines or lines[0].strip() != TEXT_HEADER:
        raise GraphFormatError(f"line 1: expected {TEXT_HEADER!r}")
    names = None
    for number, raw in enumerate(lines[1:], start=2):
        if raw.startswith("names "):  # JSON, which may hold '#': read before comments are cut
            names = _names_line(number, raw, names)
            continue
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            if m := _KEYED.match(line):
                if m[1] in header:
                    raise ValueError(f"{m[1]} given twice")
                header[m[1]] = _header_value(m[1], m[2])
            elif m := _NODE.match(line):
                _expect_header(header, ("inputs", "arity"))
                expected = 2 + header["inputs"] + len(fanins)
                if int(m[1]) != expected:
                    raise ValueError(f"node ids must count up from {2 + header['inputs']}; expected {expected}")
                row = [_node_id(s) for s in m[3].split(",")] if m[3].strip() else []
                if len(row) != header["arity"]:
                    raise ValueError(f"{len(row)} fan-ins given, arity is {header['arity']}")
                fanins.append(row)
                tables.append(int(m[2], 16))
                if tables[-1] >= 1 << 64:
                    raise ValueError("truth table wider than 64 bits")
            elif m := _OUT.match(line):
                out_class.append(int(m[1]))
                negated.append(m[2] == "!")
                outputs.append(_node_id(m[3]))
            elif m := _BIT.match(line):
                _expect_header(header, ("inputs", "encoder"))
                if int(m[1]) != 2 + len(features):
                    raise ValueError(f"encoder bits must be listed in order; expected bit {2 + len(features)}")
                features.append(_node_id(m[2]))
                thresholds.append(float(m[3]))
            else:
                raise ValueError("not a recognised line")
        except (ValueError, OverflowError) as exc:
            raise GraphFormatError(f"line {number}: {exc}: {raw.strip()!r}") from None
    _expect_header(header, ("inputs", "arity", "classes"))
    n_classes = header["classes"]
    if not 1 <= n_classes <= max(1, len(outputs)):  # every class owns an output: no allocation beyond the file
        raise GraphFormatError(f"classes must be between 1 and the {len(outputs)} outputs listed, got {n_classes}")
    if not 1 <= header["arity"] <= 6:
        raise GraphFormatError(f"arity must be between 1 and 6, got {header['arity']}")
    if any(b < a for a, b in zip(out_class, out_class[1:])) or any(c >= n_classes for c in out_class):
        raise GraphFormatError("output lines must list classes 0..classes-1 in ascending, contiguous order")
    counts = np.bincount(np.asarray(out_class, dtype=np.int64), minlength=n_classes)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    encoder = None
    if "encoder" in header:
        encoder = Encoder(header["encoder"], np.asarray(features, np.int64), np.asarray(thresholds))
    k = header["arity"]
    return GateGraph.build(
        n_inputs=header["inputs"],
        fanins=np.asarray(fanins, dtype=np.int64).reshape(-1, k),
        tables=np.asarray(tables, dtype=np.uint64),
        outputs=np.asarray(outputs, dtype=np.int64),
        output_negated=np.asarray(negated, dtype=bool),
        class_offsets=offsets,
        encoder=encoder,
        names=names,
    )


# The header's counts, bounded as the IR bounds them (docs/ir.md, "Bounds"), so that no later line is parsed
# against a size that no backend can hold. ``classes`` is bounded again by the outputs listed.
_HEADER_BOUNDS = {"inputs": (0, MAX_INPUTS), "arity": (1, 6), "classes": (1, MAX_NODES), "encoder": (1, MAX_FEATURES)}


def _header_value(key: str, text: str) -> int:
    value = int(text)
    low, high = _HEADER_BOUNDS.get(key, (0, MAX_NODES))
    if not low <= value <= high:
        raise ValueError(f"{key} must be between {low} and {high}, got {value}")
    return value


def _names_line(number: int, raw: str, earlier: Names | None) -> Names:
    if earlier is not None:
        raise GraphFormatError(f"line {number}: names given twice")
    try:
        return Names.from_json(raw[len("names ") :])
    except GraphError as exc:
        raise GraphFormatError(f"line {number}: {exc}") from None


def _node_id(text: str) -> int:
    value = int(text)
    if value > MAX_NODES:
        raise ValueError(f"{value} is beyond the largest node id {MAX_NODES}")
    return value


def _expect_header(header: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in header:
            raise GraphFormatError(f"the '{key}' line must come before gates, outputs and encoder bits")


def load_graph(path: str | Path) -> GateGraph:
    """Load a ``.npz`` graph, or a text-form graph when the file starts with the text header."""
    path = Path(path)
    try:
        head = path.open("rb").read(len(TEXT_HEADER))
    except OSError as exc:
        raise GraphFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if head == TEXT_HEADER.encode():
        try:
            return from_text(path.read_text())
        except GraphError as exc:
            raise type(exc)(f"{path}: {exc}") from None
        except UnicodeDecodeError:
            raise GraphFormatError(f"{path}: not a UTF-8 text-form graph") from None
    return load_npz(path)


def looks_like_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` starts like a safetensors file (an 8-byte header length, then ``{``): the format of
    trained-model checkpoints, which the training package loads."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"
