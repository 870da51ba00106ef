"""Host (CPU) shared libraries built from ``csrc/`` with the system C++ compiler, cached by their
sources, flags and CPU: the fast 2-input CPU operators (``lgn_cpu.cpp``) and the kernel emulation
(``lgn_host_emulation.cpp``)."""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import warnings
from pathlib import Path

from compiler.c_build import cache_root

from .build import SOURCE_DIR

CPU_SOURCE = "lgn_cpu.cpp"
# -march=native: the cache key includes this CPU's feature flags, so a shared cache never hands one
# machine another's instructions. -fopenmp-simd: the simd pragmas only, no OpenMP runtime.
CPU_FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-pthread")


def cache_dir() -> Path:
    """Inside the C backend's build cache (``LGN_CACHE_DIR``, default ``~/.cache/lgn``)."""
    return cache_root() / "host-kernels"


def _cpu_signature() -> bytes:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line.encode()
    except OSError:
        pass
    return platform.processor().encode()


def find_compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def build_host_library(source: str, flags: tuple[str, ...], headers: tuple[str, ...] = (), folder=None) -> Path:
    """Compile ``csrc/source`` into a shared library (cached); its path. Raises ``FileNotFoundError``
    without a C++ compiler and ``RuntimeError`` with the compiler's output when the build fails."""
    compiler = find_compiler()
    if compiler is None:
        raise FileNotFoundError("no C++ compiler (g++) found; install g++")
    digest = hashlib.sha256()
    for name in (source, *headers):
        digest.update((SOURCE_DIR / name).read_bytes())
    digest.update(" ".join(flags).encode() + _cpu_signature())
    folder = Path(folder or cache_dir())
    library = folder / f"{Path(source).stem}_{digest.hexdigest()[:16]}.so"
    if library.exists():
        return library
    folder.mkdir(parents=True, exist_ok=True)
    private = library.with_suffix(f".{os.getpid()}.tmp")
    command = [compiler, "-std=c++20", *flags, "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
               f"-I{SOURCE_DIR}", str(SOURCE_DIR / source), "-o", str(private)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        private.unlink(missing_ok=True)
        raise RuntimeError(f"building {source} failed:\n{done.stdout}{done.stderr}")
    os.replace(private, library)  # atomic: concurrent builders never see a half-written library
    return library


_cpu_library: ctypes.CDLL | None = None
_cpu_failed = False


def cpu_library() -> ctypes.CDLL | None:
    """The fast CPU operators, built on first use; None (with one warning) where they cannot be built,
    and the operators then run the torch reference."""
    global _cpu_library, _cpu_failed
    if _cpu_library is None and not _cpu_failed:
        try:
            _cpu_library = ctypes.CDLL(str(build_host_library(CPU_SOURCE, CPU_FLAGS)))
        except (OSError, RuntimeError) as exc:
            _cpu_failed = True
            message = f"lgn: the fast CPU gate operators are unavailable ({exc}); using the torch reference"
            warnings.warn(message, stacklevel=2)
    return _cpu_library
