"""What this core can do with the gate code, measured in the same run as a model (``lgn bench``).

Three rates of sample-gate evaluations per second, for one ISA (its vector width of samples per operation):
the table kernel's inner step (load two values, one logic operation, store) with the values in a working set
half the size of L1, and half the size of L2; and logic operations on values held in registers. The core
clock comes from a chain of dependent additions (one per cycle on every x86-64 core), so rates can be stated
per cycle. A model's fraction of the ceiling compares it with the memory level its value vectors fit in.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import cffi
import numpy as np

from lgn.compiler import c_build, c_emit
from lgn.compiler.lowering import VERSION
from lgn.compiler.templating import environment

_CDEF = """
void lgn_ceiling_memory(void *values, const uint16_t *a, const uint16_t *b, const uint16_t *d, int32_t n,
                        int32_t reps);
void lgn_ceiling_registers(void *out, int32_t reps);
uint64_t lgn_ceiling_clock(int64_t n);
"""
STEPS = 4096  # gate steps per pass of the memory test
TARGET_SECONDS = 0.05  # each measurement runs about this long, best of three
DEFAULT_CACHES = (32 * 1024, 1024 * 1024)  # L1 data, L2: where the machine does not say


@dataclasses.dataclass(frozen=True)
class Ceiling:
    """Sample-gate evaluations per second on one core, and the clock (Hz)."""

    isa: str
    lanes: int
    clock_hz: float
    registers: float
    l1: float
    l2: float
    l1_bytes: int
    l2_bytes: int

    def matching(self, value_bytes: int) -> tuple[str, float]:
        """The level a model whose value vectors take ``value_bytes`` runs from, and its ceiling there (beyond
        L2 the L2 rate, an upper bound)."""
        return ("L1", self.l1) if value_bytes <= self.l1_bytes else ("L2", self.l2)


def cache_sizes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> tuple[int, int]:
    """(L1 data, L2) bytes of this core from sysfs; :data:`DEFAULT_CACHES` where it does not say."""
    sizes = dict(zip((1, 2), DEFAULT_CACHES))
    try:
        for index in sorted(root.glob("index*")):
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            text = (index / "size").read_text().strip().upper()
            if level in sizes and kind in ("Data", "Unified"):
                sizes[level] = int(text[:-1]) * {"K": 1024, "M": 1024**2}[text[-1]] if text[-1] in "KM" else int(text)
    except (OSError, ValueError, KeyError):
        return DEFAULT_CACHES
    return sizes[1], sizes[2]


def _best_seconds(run) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return max(best, 1e-9)


def _reps_for(run_once) -> int:
    """Repetitions that make a measurement last about TARGET_SECONDS."""
    return max(1, int(TARGET_SECONDS / _best_seconds(run_once)))


def measure(isa: str, cache_dir: Path | None = None, seed: int = 0) -> Ceiling:
    """Build the probes for ``isa`` (one this machine runs) and measure them."""
    lanes = c_emit.ISAS[isa]
    text = (
        environment("c")
        .get_template("ceiling.c.j2")
        .render(isa=isa, lanes=lanes, version=VERSION, reg="+r" if isa == "portable" else "+x")
    )
    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    lib = ffi.dlopen(str(c_build.build_shared({"lgn_ceiling.c": text}, isa, cache_dir)))
    vector_bytes = lanes // 8
    l1_bytes, l2_bytes = cache_sizes()
    rng = np.random.default_rng(seed)

    def memory_rate(working_bytes: int) -> float:
        slots = max(4, min(65535, working_bytes // 2 // vector_bytes))
        values = np.zeros(slots * vector_bytes // 8 + 8, dtype=np.uint64)  # 64-byte aligned below
        start = (-values.ctypes.data) % 64 // 8
        base = ffi.cast("void *", values[start:].ctypes.data)
        a, b, d = (rng.integers(0, slots, STEPS).astype(np.uint16) for _ in range(3))
        pa, pb, pd = (ffi.cast("const uint16_t *", i.ctypes.data) for i in (a, b, d))
        reps = _reps_for(lambda: lib.lgn_ceiling_memory(base, pa, pb, pd, STEPS, 1))
        return STEPS * reps * lanes / _best_seconds(lambda: lib.lgn_ceiling_memory(base, pa, pb, pd, STEPS, reps))

    registers = np.arange(8 * vector_bytes // 8 + 8, dtype=np.uint64)
    out = ffi.cast("void *", registers[(-registers.ctypes.data) % 64 // 8 :].ctypes.data)
    reps = _reps_for(lambda: lib.lgn_ceiling_registers(out, 100_000)) * 100_000
    register_rate = 8 * reps * lanes / _best_seconds(lambda: lib.lgn_ceiling_registers(out, reps))
    adds = _reps_for(lambda: lib.lgn_ceiling_clock(1_000_000)) * 1_000_000
    clock = adds / _best_seconds(lambda: lib.lgn_ceiling_clock(adds))
    return Ceiling(isa, lanes, clock, register_rate, memory_rate(l1_bytes), memory_rate(l2_bytes), l1_bytes, l2_bytes)
