"""Checkpoints: one safetensors file holding the weights, the wiring (fixed, or learned: candidate pools
and their logits), the encoder thresholds and, in its metadata, the JSON config. Loading never runs code
from the file: pickles (``torch.save`` files) are refused, the header is parsed by safetensors, every field
is checked, the config is held against the tensors before anything is built from it, and a checksum over
the tensors and the config catches a file edited after it was written. Version-1 files (fixed wiring,
``layers`` x ``width``) still load.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch

from lgn.compiler.build_cache import write_atomic
from lgn.compiler.errors import GraphError, LgnError
from lgn.compiler.ir import MAX_FEATURES, MAX_INPUTS, Encoder
from lgn.compiler.names import Names

from .conv_spec import check_stored, stack_shapes
from .layers import LogicNet

FORMAT, VERSION = "lgn-model", 3
# version 1: fixed wiring, layers x width, a checksum over the tensors only; version 2: no names
READS = ("1", "2", "3")
CONFIG_TYPES: dict[str, type | tuple[type, ...]] = dict(
    in_features=int,
    classes=int,
    widths=list,
    arity=int,
    parametrization=str,
    rho=str,
    init=str,
    tau=(int, float),
    seed=int,
    candidates=list,
)
CONV_CONFIG_TYPES: dict[str, type | tuple[type, ...]] = dict(conv=list, image=list)  # a conv net's extra keys
V1_CONFIG_TYPES: dict[str, type | tuple[type, ...]] = {
    **{k: v for k, v in CONFIG_TYPES.items() if k not in ("widths", "candidates")},
    "layers": int,
    "width": int,
}


class CheckpointError(LgnError):
    """A checkpoint file is missing, foreign, pickled, malformed or modified."""


# The dtype of every tensor a checkpoint may hold, by the last part of its name; anything else is refused.
TENSOR_DTYPES = {
    "weight": torch.float32,
    "wiring_logits": torch.float32,
    "wiring": torch.int64,
    "pool": torch.int64,
    "field": torch.int64,  # a conv tree's field entries (training/conv.py)
    "encoder.feature": torch.int64,
    "encoder.threshold": torch.float64,
}
# What lgn writes (uint8: the random generators' states in a resume file, training/resume.py; never a model's).
SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.uint8: "U8"}


def _raw_bytes(t: torch.Tensor) -> bytes:
    """A tensor's bytes as stored, for any dtype (bfloat16 and float8 included)."""
    t = t.contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _checksum(tensors: dict[str, torch.Tensor], meaning: str = "") -> str:
    """SHA-256 over every tensor (name, dtype, shape, bytes) and, from version 2, ``meaning``: the config and
    the encoder's feature count, so an edited config is caught like an edited tensor."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        digest.update(_raw_bytes(t))
    digest.update(meaning.encode())
    return digest.hexdigest()


def _meaning(config: str, n_features: str, names: str | None = None) -> str:
    """What the checksum covers besides the tensors: the config, the feature count and (version 3) the names."""
    text = f"config:{config}\nencoder_n_features:{n_features}\n"
    return text if names is None else text + f"names:{names}\n"


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """A safetensors file, byte-identical for the same input: tensors in name order, metadata keys sorted,
    the header padded with spaces to 8 bytes (the format's own layout)."""
    header: dict = {"__metadata__": dict(sorted(metadata.items()))}
    chunks, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        raw = _raw_bytes(t)
        span = [offset, offset + len(raw)]
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": span}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text.encode() + b"".join(chunks)


def save_checkpoint(
    path: str | Path, model: LogicNet, encoder: Encoder, info: dict | None = None, names: Names | None = None
) -> None:
    """Write ``model``, ``encoder`` and ``names`` to ``path`` atomically (a crash or Ctrl-C leaves the old
    file), the same bytes for the same model."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    tensors["encoder.feature"] = torch.as_tensor(encoder.feature, dtype=torch.int64)
    tensors["encoder.threshold"] = torch.as_tensor(encoder.threshold, dtype=torch.float64)
    config, n_features = json.dumps(model.config, sort_keys=True), str(encoder.n_features)
    names_text = names.to_json() if names is not None else ""
    metadata = {
        "format": FORMAT,
        "version": str(VERSION),
        "config": config,
        "encoder_n_features": n_features,
        "names": names_text,
        "info": json.dumps(info or {}, sort_keys=True),
        "checksum": _checksum(tensors, _meaning(config, n_features, names_text)),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, safetensors_bytes(tensors, metadata))


def _refuse_foreign(path: Path) -> None:
    """Pickles and zip archives (torch.save) are refused before any parser sees them: they can run code."""
    try:
        with path.open("rb") as handle:
            head = handle.read(9)
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror or exc}") from None
    # A safetensors file starts with its header's length (8 bytes, little-endian), then "{".
    header_length = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
    looks_safetensors = len(head) == 9 and head[8:9] == b"{" and 8 + header_length <= size
    if looks_safetensors:
        return
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise CheckpointError(
            f"{path}: a Python pickle; lgn loads only its own safetensors checkpoints, which cannot run code"
        )
    if head[:4] == b"PK\x03\x04":
        raise CheckpointError(
            f"{path}: a zip archive (torch.save writes pickles in one), not a safetensors checkpoint; lgn loads only "
            "its own checkpoints, which cannot run code"
        )


def read_safetensors(path: Path, error: type[LgnError], what: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """The metadata and tensors of a safetensors file (a pickle or a zip refused first, by its first bytes); a
    malformed file is one ``error`` line saying it is not ``what``."""
    from safetensors import safe_open

    _refuse_foreign(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for every malformed header
        raise error(f"{path}: not {what} ({type(exc).__name__}: {str(exc)[:200]})") from None
    return metadata, tensors


def _read(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    metadata, tensors = read_safetensors(path, CheckpointError, "an lgn checkpoint")
    if metadata.get("format") == "lgn-resume":
        raise CheckpointError(f"{path}: a training run's resume state (lgn train --resume reads it), not a checkpoint")
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an lgn checkpoint (format {metadata.get('format')!r})")
    return metadata, tensors


def _check_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Every tensor is one the model has, in its own dtype, with finite values: nothing is converted."""
    for name, t in tensors.items():
        kind = name if name.startswith("encoder.") else name.rsplit(".", 1)[-1]
        expected = TENSOR_DTYPES.get(kind)
        if expected is None or (name.startswith("encoder.") and name not in TENSOR_DTYPES):
            raise CheckpointError(f"{path}: unexpected tensor {name!r}")
        if t.dtype != expected:
            raise CheckpointError(f"{path}: tensor {name!r} is {t.dtype}, expected {expected}")
        if t.dtype.is_floating_point and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: tensor {name!r} holds NaN or infinite values")
    for name in ("encoder.feature", "encoder.threshold"):
        if name not in tensors:
            raise CheckpointError(f"{path}: missing the tensor {name!r}")


def load_checkpoint(path: str | Path) -> tuple[LogicNet, Encoder, dict]:
    """Read a checkpoint; return (model in eval mode, encoder, info). ``info["names"]`` is the model's
    :class:`Names` (None when it was trained without them). Raise :class:`CheckpointError`."""
    path = Path(path)
    metadata, tensors = _read(path)
    version = metadata.get("version")
    if version not in READS:
        raise CheckpointError(f"{path}: checkpoint version {version} is not supported (this tool reads {READS})")
    names_text = metadata.get("names", "") if version == "3" else None
    config_text, features_text = metadata.get("config", ""), metadata.get("encoder_n_features", "")
    meaning = "" if version == "1" else _meaning(config_text, features_text, names_text)
    if metadata.get("checksum") != _checksum(tensors, meaning):
        raise CheckpointError(f"{path}: checksum mismatch: the file was modified after it was written")
    try:
        config = json.loads(metadata["config"])
        info = json.loads(metadata.get("info", "{}"))
        n_features = int(metadata["encoder_n_features"])
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise CheckpointError(f"{path}: malformed metadata ({type(exc).__name__})") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: malformed metadata (info is not an object)")
    _check_tensors(path, tensors)
    config = _checked_config(path, config, version)
    _check_shapes(path, config, tensors)
    try:
        model = LogicNet(**config)
        model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("encoder.")}, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: tensors do not match the config ({str(exc).splitlines()[0]})") from None
    _check_indices(path, model)
    encoder = _encoder(path, n_features, tensors, config["in_features"])
    info["names"] = _names(path, names_text, n_features, config["classes"])
    model.eval()
    return model, encoder, info


def _check_indices(path: Path, model: LogicNet) -> None:
    """Every wiring, candidate pool and conv field reads inside what its layer has (the operators index with
    them unchecked)."""
    layers = [(f"layer {i}", layer) for i, layer in enumerate(model.layers)]
    for b, conv in enumerate(model.conv.convs() if model.conv is not None else ()):
        entries = conv.in_channels * conv.kernel_size**2
        if conv.field.numel() and (conv.field.min() < 0 or conv.field.max() >= entries):
            raise CheckpointError(f"{path}: conv block {b + 1} reads outside its {entries} field entries")
        layers += [(f"conv block {b + 1} level {i}", level) for i, level in enumerate(conv.levels)]
    for where, layer in layers:
        for name, indices in (("wiring", layer.wiring), ("candidate pool", getattr(layer, "pool", None))):
            if indices is not None and indices.numel() and (indices.min() < 0 or indices.max() >= layer.in_features):
                raise CheckpointError(f"{path}: {where} {name} reads outside its {layer.in_features} inputs")


def _names(path: Path, text: str | None, n_features: int, classes: int) -> Names | None:
    if not text:
        return None
    try:
        names = Names.from_json(text)
        names.check(n_features, classes)
    except GraphError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return names


def _encoder(path: Path, n_features: int, tensors: dict[str, torch.Tensor], in_features: int) -> Encoder:
    feature, threshold = tensors["encoder.feature"].numpy(), tensors["encoder.threshold"].numpy()
    if feature.shape != (in_features,) or threshold.shape != (in_features,):
        raise CheckpointError(f"{path}: the encoder gives {len(feature)} bits, the model reads {in_features}")
    if not 1 <= n_features <= MAX_FEATURES or (len(feature) and (feature.min() < 0 or feature.max() >= n_features)):
        raise CheckpointError(f"{path}: the encoder reads features outside 0..{n_features - 1}")
    return Encoder(n_features, feature.astype(np.int64), threshold.astype(np.float64))


def _checked_config(path: Path, config, version: str) -> dict:
    """The config's keys and types checked; a version-1 config in today's terms."""
    kinds = V1_CONFIG_TYPES if version == "1" else CONFIG_TYPES
    if version != "1" and isinstance(config, dict) and set(CONV_CONFIG_TYPES) <= set(config):
        kinds = {**CONFIG_TYPES, **CONV_CONFIG_TYPES}
    if not isinstance(config, dict) or set(config) != set(kinds):
        raise CheckpointError(f"{path}: config must have exactly the keys {sorted(kinds)}")
    for key, kind in kinds.items():
        if not isinstance(config[key], kind) or isinstance(config[key], bool):
            raise CheckpointError(f"{path}: config {key!r} has the wrong type")
    _check_values(path, config)
    if "conv" in config:
        try:
            check_stored(config["conv"], config["image"], config["in_features"])
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    if version == "1":
        layers, width = config.pop("layers"), config.pop("width")
        if not 1 <= layers <= 100_000:
            raise CheckpointError(f"{path}: config 'layers' must be between 1 and 100000, got {layers}")
        config = {**config, "widths": [width] * layers, "candidates": [0] * layers}
    return config


def _check_values(path: Path, config: dict) -> None:
    """Values a network can be built from; what no run could have written is refused here, not deeper down."""
    from .config import INITS, PARAMETRIZATIONS, RHOS

    problems = {
        "in_features": not 1 <= config["in_features"] <= MAX_INPUTS,
        "classes": not 1 <= config["classes"] <= 1 << 20,
        "arity": not 1 <= config["arity"] <= 6,
        "parametrization": config["parametrization"] not in PARAMETRIZATIONS,
        "rho": config["rho"] not in RHOS,
        "init": config["init"] not in INITS,
        "tau": not (math.isfinite(config["tau"]) and config["tau"] > 0),
        "seed": not 0 <= config["seed"] < 1 << 63,
    }
    bad = [name for name, wrong in problems.items() if wrong]
    if bad:
        raise CheckpointError(f"{path}: config {bad[0]!r} has an impossible value {config[bad[0]]!r}")


def _check_shapes(path: Path, config: dict, tensors: dict[str, torch.Tensor]) -> None:
    """The config against the tensors, before any network is built from it: a config that declares more
    layers, gates or inputs than the file holds is refused without allocating them."""
    widths, candidates = config["widths"], config["candidates"]
    if not widths or len(candidates) != len(widths):
        raise CheckpointError(f"{path}: config gives {len(widths)} widths and {len(candidates)} candidate counts")
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in widths + candidates) or min(widths) < 1:
        raise CheckpointError(f"{path}: config widths and candidates must be non-negative integers")
    layers = {name.split(".")[1] for name in tensors if name.startswith("layers.")}
    if layers != {str(i) for i in range(len(widths))}:
        raise CheckpointError(f"{path}: the config has {len(widths)} layers, the tensors {len(layers)}")
    first = config["in_features"]
    if "conv" in config:  # the FC layers read the stack's flattened bits
        first = math.prod(stack_shapes(config["image"], config["conv"])[-1])
    inputs = [first] + widths
    for i, width in enumerate(widths):
        wiring = tensors.get(f"layers.{i}.wiring")
        if wiring is None or tuple(wiring.shape) != (width, config["arity"]):
            raise CheckpointError(f"{path}: layer {i} wiring does not match {width} gates of {config['arity']} inputs")
        logits = tensors.get(f"layers.{i}.wiring_logits")
        if candidates[i] and (logits is None or logits.shape[-1] != min(candidates[i], inputs[i])):
            raise CheckpointError(f"{path}: layer {i} wiring logits do not match {candidates[i]} candidates")
