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
    return _cpuinfo_line("flags") or platform.processor()


def cpu_model() -> str:
    """This CPU's model name (empty where /proc/cpuinfo has none): part of the key of a measured choice."""
    return _cpuinfo_line("model name")


def _cpuinfo_line(field: str) -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line
    except OSError:
        pass
    return ""


def digest(parts: Iterable[bytes | str]) -> str:
    """A hex SHA-256 over ``parts``, each length-prefixed so that no two sequences collide."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


PRIVATE_PREFIX = ".lgn-tmp-"


def _private_prefix() -> str:
    """Private files carry the writer's process id, so a later process can tell a killed writer's leftovers
    (see :func:`remove_stale`) from a live writer's work in progress."""
    return f"{PRIVATE_PREFIX}{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale(folder: Path) -> None:
    """Delete the private files in ``folder`` left by processes that no longer run (killed mid-write)."""
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.name.startswith(PRIVATE_PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(PRIVATE_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            (folder / name).unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a private file renamed into place."""
    remove_stale(path.parent)
    fd, private = tempfile.mkstemp(prefix=_private_prefix(), dir=path.parent)
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
    if is_cached(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(target.parent)
        fd, private = tempfile.mkstemp(prefix=_private_prefix(), suffix=target.suffix, dir=target.parent)
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
    # The digest first, then the library: a reader that finds the library finds its digest too. Concurrent
    # builds of the same content write the same bytes, so either order of two writers is consistent.
    write_atomic(_digest_path(target), _file_digest(Path(private)).encode())
    os.replace(private, target)
    return target


def _digest_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_cached(target: Path) -> bool:
    """Whether a cached artifact exists with the bytes it was built with; a damaged or truncated one (or one
    without its digest) is deleted so that it is built again."""
    remove_stale(target.parent)
    if not target.exists():
        return False
    try:
        if _digest_path(target).read_text().strip() == _file_digest(target):
            return True
    except OSError:
        pass
    target.unlink(missing_ok=True)
    return False
