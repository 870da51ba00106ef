"""Where lgn writes: the one rule every command that writes follows (docs/reliability.md, "Outputs").

- An output never is an input of the same command, however it is reached (the same path spelled another way,
  a symbolic link, a hard link): refused before any work (:func:`check_file`, :meth:`OutputFolder.reserve`).
- A single-file output replaces an existing file only when that file is empty or of the kind lgn writes
  there (a checkpoint by a checkpoint, a graph by a graph, predictions by predictions, metrics by metrics);
  anything else (a table, a model of another kind, a file lgn did not write) needs ``force``; a device, a pipe
  or a socket is never replaced.
- A folder output (``lgn compile``, ``lgn synth --pnr``, ``lgn demo``) is written only when it is new, empty
  or one lgn wrote: :data:`MANIFEST` lists lgn's files there with their SHA-256, and a file that is not
  listed, or was changed since lgn wrote it, is never replaced (:func:`claim_folder`).
- Every output is checked writable by creating a private file where it will go, before any work: not by
  ``os.access``, which says yes to root everywhere, ``/proc`` included.
- One writer per model: :class:`lgn.compiler.output_lock.OutputLock`, a lock file beside the output naming its
  process.

The messages speak parameters (``out``, ``metrics``, ``data``); the command line names them by their flags.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from .build_cache import PRIVATE_PREFIX, write_atomic
from .errors import LgnError, ParameterError
from .formats import TEXT_HEADER

CHECKPOINT, GRAPH, PREDICTIONS, METRICS, EMPTY = "checkpoint", "graph", "predictions", "metrics", "empty"
_KIND_TEXT = {
    CHECKPOINT: "a model checkpoint",
    GRAPH: "a gate graph",
    PREDICTIONS: "predictions",
    METRICS: "training metrics",
    None: "a file lgn did not write",
}
MANIFEST = ".lgn-manifest.json"
_SNIFF_BYTES = 1 << 20  # the first line of a predictions or metrics file is read up to this size


# ---- what an existing file holds --------------------------------------------------------------------------
def file_kind(path: str | Path) -> str | None:
    """What the existing regular file ``path`` holds, as far as lgn writes such files: :data:`CHECKPOINT`
    (safetensors), :data:`GRAPH` (the ``.npz`` or text form), :data:`PREDICTIONS` (``lgn predict``'s CSV),
    :data:`METRICS` (training's JSONL), :data:`EMPTY`, or None (anything else: a table, an archive, text)."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        return None
    if not head:
        return EMPTY
    if len(head) >= 9 and head[8:9] == b"{":
        return CHECKPOINT
    if head.startswith(TEXT_HEADER.encode()):
        return GRAPH
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                return GRAPH if "format.npy" in archive.namelist() else None
        except (OSError, zipfile.BadZipFile, ValueError):
            return None
    line = head.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
    fields = next(csv.reader([line]), [])
    if fields and fields[0] == "prediction" and all(f.startswith(("score_", "proba_")) for f in fields[1:]):
        return PREDICTIONS
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return METRICS if isinstance(record, dict) and ("step" in record or "final" in record) else None


# ---- inputs and outputs -----------------------------------------------------------------------------------
def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same inode on the same device (symbolic and hard links), or,
    where one does not exist, the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _is_parameter(label: str) -> bool:
    return label.replace("_", "").isalnum() and label.islower()


def check_not_input(target: Path, name: str, inputs: dict[str, str | Path | None] | None) -> None:
    """Refuse ``target`` (the output ``name``) when it is one of ``inputs`` (label -> path: a parameter name
    such as ``data``, or words such as ``the model`` for a positional argument), or lies inside one that is
    a folder the command reads."""
    for label, value in (inputs or {}).items():
        if value is None or str(value) == "":
            continue
        source = Path(value)
        inside = source.is_dir() and Path(os.path.realpath(target)).is_relative_to(os.path.realpath(source))
        if same_file(target, source) or inside:
            how = "the same file" if not inside else "a file inside"
            shown = str(target) if str(target) == str(source) else f"{target}, {source}"
            params = [name] + ([label] if _is_parameter(label) else [])
            raise ParameterError(
                f"{name} and {label} name {how} ({shown}): lgn never writes over an input of the same command; "
                "give another path",
                *params,
            )


def probe_writable(target: Path, name: str, folder: Path | None = None) -> None:
    """Create (and remove) a private file in ``folder`` (default: ``target``'s), or in the nearest folder
    above it that exists, which the command would create it in: the only proof that the path takes files
    (``os.access`` says yes to root under ``/proc``)."""
    place = target.parent if folder is None else folder
    while not os.path.lexists(place) and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise ParameterError(f"{name} {target}: {place} is a file, not a folder", name)
    try:
        fd, private = tempfile.mkstemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-probe-", dir=place)
    except OSError as exc:
        raise ParameterError(f"{name} {target}: cannot write in {place}: {exc.strerror or exc}", name) from None
    os.close(fd)
    os.unlink(private)


def check_file(
    path: str | Path,
    name: str,
    kind: str,
    inputs: dict[str, str | Path | None] | None = None,
    force: bool = False,
    parents: bool = True,
) -> Path:
    """Check the single-file output ``name`` at ``path``, of ``kind``, before any work: not an input, not a
    folder, not a device; an existing file replaced only when empty or of ``kind`` (else only with
    ``force``); its folder takes files (with ``parents``, the command makes missing folders: the nearest
    folder above that exists takes files). Creates and changes nothing."""
    target = Path(path)
    check_not_input(target, name, inputs)
    if target.is_dir():
        raise ParameterError(f"{name} {target} is a folder; give a file name", name)
    if target.exists():
        if not target.is_file():
            raise ParameterError(f"{name} {target} is not a regular file (a device, pipe or socket)", name)
        found = file_kind(target)
        if found not in (kind, EMPTY) and not force:
            raise ParameterError(
                f"{name} {target} exists and is {_KIND_TEXT[found]}, not {_KIND_TEXT[kind]}: replacing it needs "
                "--force",
                name,
            )
    if not parents and not target.parent.is_dir():
        raise ParameterError(f"{name} {target}: cannot write in {target.parent}: no such folder", name)
    probe_writable(target, name)
    return target


# ---- folders ------------------------------------------------------------------------------------------------
def _digest(path: Path) -> str | None:
    """``sha256:HEX`` of a regular file, ``folder`` for a folder, None for anything else."""
    if path.is_dir() and not path.is_symlink():
        return "folder"
    if not path.is_file() or path.is_symlink():
        return None
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return f"sha256:{sha.hexdigest()}"


def _lgn_private(entry: str) -> bool:
    return entry == MANIFEST or entry.startswith(PRIVATE_PREFIX)


class OutputFolder:
    """A folder a command writes its files into, claimed by :func:`claim_folder`. Names are entries of the
    folder itself; a name ending in ``/`` is a subfolder lgn owns as a whole (a build or a tool's work)."""

    def __init__(self, path: Path, name: str, inputs: dict, owned: dict[str, str | None], before: set[str]):
        self.path, self.name, self.inputs = path, name, inputs
        self.owned = owned  # entry -> its digest when lgn wrote it (None: being written)
        self.before = before  # the entries present when the folder was claimed
        self.reserved: set[str] = set()  # the entries this command writes
        self.created = False  # whether this command made the folder

    def check(self, names: Iterable[str]) -> list[str]:
        """Refuse (before any work) when an entry in ``names`` is an input of the command, or exists and is not
        lgn's (not listed in the manifest, or changed since lgn wrote it); the entries, without a final ``/``."""
        entries = []
        for raw in names:
            entry = raw.rstrip("/")
            target = self.path / entry
            check_not_input(target, self.name, self.inputs)
            if os.path.lexists(target):
                recorded = self.owned.get(entry, "")
                if entry not in self.owned:
                    why = f"is not listed in {MANIFEST}"
                elif recorded is not None and recorded != "folder" and _digest(target) != recorded:
                    why = "was changed since lgn wrote it"
                else:
                    why = ""
                if why:
                    raise ParameterError(
                        f"{self.name} {self.path}: {entry} {why}, and lgn never replaces a file it did not write: "
                        "move it away, or give another folder",
                        self.name,
                    )
            entries.append(entry)
        return entries

    def _save_manifest(self) -> None:
        record = {"written_by": "lgn", "version": 1, "files": dict(sorted(self.owned.items()))}
        write_atomic(self.path / MANIFEST, (json.dumps(record, indent=1) + "\n").encode())

    def reserve(self, names: Iterable[str]) -> None:
        """Check that every entry in ``names`` is absent or lgn's and not an input, then record them as lgn's
        (being written) in the manifest, creating the folder. Raises before anything is written."""
        entries = self.check(list(names))
        try:
            self.created = self.created or not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            for entry in entries:
                self.owned[entry] = None
                self.reserved.add(entry)
            self._save_manifest()
        except OSError as exc:
            raise LgnError(f"{self.path}: cannot write: {exc.strerror or exc}") from None

    def write(self, files: Mapping[str, str | bytes]) -> None:
        """Reserve ``files``' names, write each (text as UTF-8) under a private name renamed into place, and
        record their digests."""
        self.reserve(files)
        try:
            for entry, content in files.items():
                write_atomic(self.path / entry, content.encode() if isinstance(content, str) else content)
        except OSError as exc:
            raise LgnError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
        self.settle()

    def settle(self) -> None:
        """Record in the manifest the digests of the entries this command wrote: those reserved, and those that
        appeared since the claim (a tool's files, written by names lgn does not choose)."""
        if not self.path.is_dir():
            return
        for entry in os.listdir(self.path):
            if not _lgn_private(entry) and (entry in self.reserved or entry not in self.before):
                self.owned[entry] = _digest(self.path / entry)
        self.owned = {e: d for e, d in self.owned.items() if os.path.lexists(self.path / e)}
        if self.created and not self.owned and os.listdir(self.path) == [MANIFEST]:
            (self.path / MANIFEST).unlink()  # the command failed before writing: leave no folder behind
            self.path.rmdir()
            return
        self._save_manifest()


def _read_manifest(folder: Path, name: str) -> dict[str, str | None]:
    try:
        record = json.loads((folder / MANIFEST).read_text())
        files = record["files"]
        if record.get("written_by") != "lgn" or not isinstance(files, dict):
            raise ValueError
        return {str(k): (v if isinstance(v, str) else None) for k, v in files.items()}
    except (OSError, ValueError, KeyError, TypeError):
        raise ParameterError(f"{name} {folder}: {MANIFEST} is not one lgn wrote; give another folder", name) from None


def claim_folder(
    path: str | Path, name: str = "out", inputs: dict[str, str | Path | None] | None = None
) -> OutputFolder:
    """The output folder ``name`` at ``path``, checked before any work: a folder (or nothing yet), new, empty
    or one lgn wrote (its :data:`MANIFEST`), in a place that takes files. Nothing is created here; the
    entries are checked when reserved (:meth:`OutputFolder.reserve`, :meth:`OutputFolder.write`)."""
    folder = Path(path)
    if os.path.lexists(folder) and not folder.is_dir():
        what = "a broken link" if not folder.exists() else "a file"
        raise ParameterError(f"{name} {folder} is {what}, not a folder; give a folder", name)
    entries = set(os.listdir(folder)) if folder.is_dir() else set()
    theirs = sorted(e for e in entries if not _lgn_private(e))
    owned: dict[str, str | None] = {}
    if MANIFEST in entries:
        owned = _read_manifest(folder, name)
    elif theirs:
        shown = ", ".join(theirs[:4]) + (f" and {len(theirs) - 4} more" if len(theirs) > 4 else "")
        raise ParameterError(
            f"{name} {folder} holds files lgn did not write ({shown}): lgn writes into a new or empty folder, "
            f"or one it wrote ({MANIFEST} lists its files), and never replaces yours; give another folder",
            name,
        )
    probe_writable(folder, name, folder)
    return OutputFolder(folder, name, dict(inputs or {}), owned, entries)
