"""Checkpoints: one safetensors file holding the weights, the wiring, the encoder thresholds and, in
its metadata, the JSON config. Loading never runs code from the file: pickles (``torch.save`` files)
are refused, the header is parsed by safetensors, every field is checked, and a checksum over the
tensors catches a file edited after it was written.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from lgn.compiler.errors import LgnError
from lgn.compiler.ir import Encoder

from .layers import LogicNet

FORMAT, VERSION = "lgn-model", 1
CONFIG_TYPES: dict[str, type | tuple[type, ...]] = dict(
    in_features=int,
    classes=int,
    layers=int,
    width=int,
    arity=int,
    parametrization=str,
    rho=str,
    init=str,
    tau=(int, float),
    seed=int,
)


class CheckpointError(LgnError):
    """A checkpoint file is missing, foreign, pickled, malformed or modified."""


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: str | Path, model: LogicNet, encoder: Encoder, info: dict | None = None) -> None:
    """Write ``model`` and ``encoder`` to ``path`` atomically (a crash or Ctrl-C leaves the old file)."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    tensors["encoder.feature"] = torch.as_tensor(encoder.feature, dtype=torch.int64)
    tensors["encoder.threshold"] = torch.as_tensor(encoder.threshold, dtype=torch.float64)
    metadata = {
        "format": FORMAT,
        "version": str(VERSION),
        "config": json.dumps(model.config, sort_keys=True),
        "encoder_n_features": str(encoder.n_features),
        "info": json.dumps(info or {}, sort_keys=True),
        "checksum": _checksum(tensors),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, private = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, private, metadata=metadata)
        os.replace(private, path)
    except BaseException:
        Path(private).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> tuple[LogicNet, Encoder, dict]:
    """Read a checkpoint; return (model in eval mode, encoder, info). Raise :class:`CheckpointError`."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(9)
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror or exc}") from None
    # A safetensors file starts with its header's length (8 bytes, little-endian), then "{".
    header_length = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
    looks_safetensors = len(head) == 9 and head[8:9] == b"{" and 8 + header_length <= size
    pickled = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    if not looks_safetensors and (pickled or head[:4] == b"PK\x03\x04"):
        raise CheckpointError(
            f"{path}: a pickled (torch.save) file; lgn loads only its own safetensors "
            "checkpoints, which cannot run code"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for every malformed header
        raise CheckpointError(f"{path}: not an lgn checkpoint ({type(exc).__name__}: {exc})") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an lgn checkpoint (format {metadata.get('format')!r})")
    if metadata.get("version") != str(VERSION):
        raise CheckpointError(f"{path}: checkpoint version {metadata.get('version')} is not supported")
    if metadata.get("checksum") != _checksum(tensors):
        raise CheckpointError(f"{path}: checksum mismatch: the file was modified after it was written")
    try:
        config = json.loads(metadata["config"])
        info = json.loads(metadata.get("info", "{}"))
        n_features = int(metadata["encoder_n_features"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: malformed metadata ({exc})") from None
    _check_config(path, config)
    try:
        model = LogicNet(**config)
        model_tensors = {k: v for k, v in tensors.items() if not k.startswith("encoder.")}
        model.load_state_dict(model_tensors, strict=True)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: tensors do not match the config ({str(exc).splitlines()[0]})") from None
    for i, layer in enumerate(model.layers):
        if layer.wiring.min() < 0 or layer.wiring.max() >= layer.in_features:
            raise CheckpointError(f"{path}: layer {i} wiring reads outside its {layer.in_features} inputs")
    try:
        encoder = Encoder(
            n_features,
            tensors["encoder.feature"].numpy().astype(np.int64),
            tensors["encoder.threshold"].numpy().astype(np.float64),
        )
    except KeyError:
        raise CheckpointError(f"{path}: missing encoder tensors") from None
    if len(encoder.feature) != config["in_features"]:
        raise CheckpointError(
            f"{path}: encoder gives {len(encoder.feature)} bits, the model reads {config['in_features']}"
        )
    model.eval()
    return model, encoder, info


def _check_config(path: Path, config) -> None:
    if not isinstance(config, dict) or set(config) != set(CONFIG_TYPES):
        raise CheckpointError(f"{path}: config must have exactly the keys {sorted(CONFIG_TYPES)}")
    for key, kind in CONFIG_TYPES.items():
        if not isinstance(config[key], kind) or isinstance(config[key], bool):
            raise CheckpointError(f"{path}: config {key!r} has the wrong type")
