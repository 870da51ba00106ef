"""Host (CPU) shared libraries built from ``csrc/`` with the system C++ compiler, in the project's one build
cache (``lgn.compiler.build_cache``), keyed by their sources, flags and this CPU: the fast CPU operators
(``lgn_cpu.cpp``) and the kernel emulation (``lgn_host_emulation.cpp``)."""

from __future__ import annotations

import ctypes
import os
import shutil
import warnings
from pathlib import Path

from lgn.compiler.build_cache import BuildError, cache_root, compile_once, cpu_signature, digest

from .build import SOURCE_DIR

CPU_SOURCE = "lgn_cpu.cpp"
# -march=native: the cache key includes this CPU's feature flags, so a shared cache never hands one
# machine another's instructions. -fopenmp: the simd pragmas, and OpenMP's threads (torch's pool, see
# parallel_rows in lgn_cpu.cpp).
CPU_FLAGS = ("-O3", "-march=native", "-fopenmp", "-pthread")


def cache_dir() -> Path:
    """Inside the build cache (``LGN_CACHE_DIR``, default ``~/.cache/lgn``)."""
    return cache_root() / "host-kernels"


def find_compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def build_host_library(source: str, flags: tuple[str, ...], headers: tuple[str, ...] = (), folder=None) -> Path:
    """Compile ``csrc/source`` into a shared library (cached); its path. Raises ``FileNotFoundError``
    without a C++ compiler and :class:`BuildError` with the compiler's output when the build fails."""
    compiler = find_compiler()
    if compiler is None:
        raise FileNotFoundError("no C++ compiler (g++) found; install g++")
    key = digest([(SOURCE_DIR / name).read_bytes() for name in (source, *headers)] + [" ".join(flags), cpu_signature()])
    library = Path(folder or cache_dir()) / f"{Path(source).stem}_{key[:16]}.so"
    command = [compiler, "-std=c++20", *flags, "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
               f"-I{SOURCE_DIR}", str(SOURCE_DIR / source), "-o", "{out}"]  # fmt: skip
    return compile_once(library, command, "C++ compiler")


_cpu_library: ctypes.CDLL | None = None
_cpu_failed = False


def cpu_library() -> ctypes.CDLL | None:
    """The fast CPU operators, built on first use; None (with one warning) where they cannot be built,
    and the operators then run the torch reference."""
    global _cpu_library, _cpu_failed
    if _cpu_library is None and not _cpu_failed:
        try:
            _cpu_library = ctypes.CDLL(str(build_host_library(CPU_SOURCE, CPU_FLAGS)))
        except (OSError, BuildError) as exc:
            _cpu_failed = True
            message = f"lgn: the fast CPU gate operators are unavailable ({exc}); using the torch reference"
            warnings.warn(message, stacklevel=2)
    return _cpu_library
