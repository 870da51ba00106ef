"""The one build cache: shared objects compiled once per content and reused by every process.

Both the C backend (:mod:`lgn.compiler.c_build`) and the kernels' host libraries (``lgn.kernels.host``)
build here. An artifact's folder is named by a digest of everything that decides its bytes (sources,
compiler, flags, and for ``-march=native`` builds this CPU's signature); the compiler writes a private
file that is renamed into place atomically, so two processes building the same thing at once never see
a half-written library.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import LgnError


class BuildError(LgnError):
    """A compiler failed or is missing; the message holds the command and its output."""


def cache_root() -> Path:
    """``$LGN_CACHE_DIR``, else ``~/.cache/lgn``."""
    root = os.environ.get("LGN_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "lgn"


def cpu_signature() -> str:
    """This CPU's feature flags: part of the key of anything built with ``-march=native``, so a shared cache
    never hands one machine another's instructions."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor()


def digest(parts: Iterable[bytes | str]) -> str:
    """A hex SHA-256 over ``parts``, each length-prefixed so that no two sequences collide."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a private file renamed into place."""
    fd, private = tempfile.mkstemp(prefix=".write-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(private, path)
    except BaseException:
        Path(private).unlink(missing_ok=True)
        raise


def compile_once(target: Path, command: list[str], what: str = "compiler") -> Path:
    """``target``, built by ``command`` (its output path given as ``{out}``) unless it already exists;
    ``what`` names the compiler in messages.

    The command writes a private file in ``target``'s folder that is renamed onto ``target`` only when
    the compiler succeeds. Raises :class:`BuildError` with the command and the compiler's messages.
    """
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, private = tempfile.mkstemp(prefix=".build-", suffix=target.suffix, dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise BuildError(
            f"cannot write to the build cache {target.parent}: {exc.strerror or exc} (set LGN_CACHE_DIR)"
        ) from None
    concrete = [private if part == "{out}" else part for part in command]
    try:
        proc = subprocess.run(concrete, capture_output=True, text=True)
    except OSError as exc:
        Path(private).unlink(missing_ok=True)
        raise BuildError(f"cannot run the {what} {concrete[0]!r}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        Path(private).unlink(missing_ok=True)
        raise BuildError(
            f"{what} failed (exit {proc.returncode}): {shlex.join(concrete)}\n{(proc.stdout + proc.stderr).strip()}"
        )
    os.replace(private, target)  # atomic: a concurrent build of the same content renames the same bytes
    return target
