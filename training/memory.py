"""How much memory a reader may use: what this process can still allocate, halved, or what ``--max-memory``
says. Readers of archives compare the memory an array would need (from its header) with this before they
inflate anything, so a small file that expands to gigabytes is refused in a moment instead of exhausting
the machine."""

from __future__ import annotations

import re
import resource
from pathlib import Path

_limit: int | None = None  # set by --max-memory
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from ``512M``, ``2G``, ``1.5GB``, ``100000`` (binary units: 1K = 1024); a ValueError otherwise."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)i?b?\s*", text, re.IGNORECASE | re.ASCII)
    if match is None:
        raise ValueError(f"{text!r} is not a size (such as 512M or 2G)")
    size = int(float(match[1]) * _UNITS[match[2].lower()])
    if size < 1:
        raise ValueError(f"{text!r} is not a size of at least one byte")
    return size


def set_limit(size: int | None) -> None:
    """Make ``size`` bytes the readers' budget (``--max-memory``); None: half of what is available."""
    global _limit
    _limit = size


def budget() -> tuple[int, str]:
    """(bytes a reader may use, how that figure was found, for messages)."""
    if _limit is not None:
        return _limit, "--max-memory"
    return available() // 2, "half the memory available (--max-memory sets it)"


def available() -> int:
    """Bytes this process can still allocate: the least of the machine's available memory (``MemAvailable``),
    the address-space limit less what is mapped (``ulimit -v``), and the cgroup's limit less its use."""
    found = [_meminfo("MemAvailable")]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        found.append(soft - (_status("VmSize") or 0))
    found.append(_cgroup_room())
    known = [f for f in found if f is not None]
    return max(0, min(known)) if known else 1 << 62


def _meminfo(key: str) -> int | None:
    return _kib_field(Path("/proc/meminfo"), key)


def _status(key: str) -> int | None:
    return _kib_field(Path("/proc/self/status"), key)


def _kib_field(path: Path, key: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(":")
            if name == key:
                return int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """The cgroup's memory limit less its use, when it has one (cgroup v2, else v1; inside a container the
    process's own cgroup is often the mounted root)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, where = line.split(":", 2)
        if controllers == "":
            files = ("memory.max", "memory.current")
            roots = (Path("/sys/fs/cgroup") / where.lstrip("/"), Path("/sys/fs/cgroup"))
        elif "memory" in controllers.split(","):
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes")
            base = Path("/sys/fs/cgroup/memory")
            roots = (base / where.lstrip("/"), base)
        else:
            continue
        for root in roots:
            try:
                limit = (root / files[0]).read_text().strip()
                if limit == "max" or int(limit) >= 1 << 60:
                    return None
                return int(limit) - int((root / files[1]).read_text())
            except (OSError, ValueError):
                continue
    return None


def size_text(size: int) -> str:
    """``1.2 GiB`` and the like, in the binary units that :func:`parse_size` reads."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
