"""C backend, build-and-load half: gcc, a content-addressed build cache, and cffi.

``compile_c(graph)`` emits the C library (see :mod:`compiler.c_emit`), compiles it to a shared object
once per content hash (safe when several processes build the same model at once: each compiles to a
private file and renames it into place atomically), and loads it with cffi. Calls release the GIL, so
``CompiledNet`` splits large batches across threads, one workspace per thread.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cffi
import numpy as np

from . import c_emit
from .build_cache import BuildError, cache_root, compile_once, digest, is_cached, write_atomic
from .errors import InputError, LgnError, ParameterError
from .ir import GateGraph
from .raw_input import U8

BASE_FLAGS = ["-O2", "-g0", "-fPIC", "-shared", "-fno-strict-aliasing", "-Wall"]

__all__ = [
    "BuildError", "CompiledNet", "build_shared", "cache_root", "compile_c", "fastest_isa", "host_isas", "resolve_isa"
]  # fmt: skip


def host_isas() -> list[str]:
    """The ISAs whose code this machine can run, widest first."""
    try:
        flags = set()
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
    except OSError:
        flags = set()
    isas = []
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        isas.append("avx512")
    if "avx2" in flags:
        isas.append("avx2")
    return isas + ["portable"]


def resolve_isa(isa: str) -> str:
    """An ISA name for ``native`` (the widest this machine runs) or a named ISA; ``auto`` needs the model:
    see :func:`choose_isa`."""
    if isa == "native":
        return host_isas()[0]
    if isa not in c_emit.ISAS:
        raise ParameterError(f"isa {isa!r} is unknown; choose auto, native, {', '.join(c_emit.ISAS)}", "isa")
    return isa


def choose_isa(graph: GateGraph, isa: str, shape: str = "auto", cache_dir: Path | None = None) -> str:
    """``isa`` resolved for ``graph``: ``auto`` is the ISA of :func:`lgn.compiler.c_tune.fastest` (measured with
    the code shape when ``shape`` is auto), anything else :func:`resolve_isa`."""
    from . import c_tune

    return c_tune.fastest(graph, "auto", shape, cache_dir).isa if isa == "auto" else resolve_isa(isa)


def fastest_isa(graph: GateGraph, shape: str = "auto", cache_dir: Path | None = None) -> tuple[str, dict, bool]:
    """(the vector ISA of the fastest (ISA, shape) pair for ``graph`` here, the samples/s of each ISA in the
    chosen shape, whether the choice came from the cache): :func:`lgn.compiler.c_tune.fastest` by ISA.
    Portable C is measured only where no vector ISA runs."""
    from . import c_tune

    choice = c_tune.fastest(graph, "auto", shape, cache_dir)
    rates = {pair.split(" ")[0]: rate for pair, rate in choice.rates.items() if pair.endswith(f" {choice.shape}")}
    return choice.isa, rates, choice.cached


def find_compiler() -> str:
    """``$CC`` (default ``gcc``), checked to be a command line whose program is on PATH."""
    cc = os.environ.get("CC", "gcc")
    try:
        words = shlex.split(cc)
    except ValueError as exc:
        raise BuildError(f"CC={cc!r} is not a valid command line ({exc})") from None
    path = shutil.which(words[0]) if words else None
    if path is None:
        raise BuildError(f"no C compiler found ({cc!r} is not on PATH): install gcc (apt-get install gcc) or set CC")
    return cc


def _compiler_identity(cc: str) -> str:
    try:
        proc = subprocess.run([*shlex.split(cc), "--version"], capture_output=True, text=True, timeout=60)
        return proc.stdout.splitlines()[0] if proc.stdout else cc
    except (OSError, subprocess.SubprocessError):
        return cc


def build_shared(files: dict[str, str], isa: str, cache_dir: Path | None = None) -> Path:
    """Compile the emitted ``files`` into a shared object (cached by content hash); return its path."""
    cc = find_compiler()
    flags = BASE_FLAGS + c_emit.ISA_FLAGS[isa]
    key = digest([part for name in sorted(files) for part in (name, files[name])] + [_compiler_identity(cc), *flags])
    folder = (cache_dir or cache_root()) / "c" / key[:32]
    target = folder / "liblgn_net.so"
    if is_cached(target):
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            write_atomic(folder / name, text.encode())
    except OSError as exc:
        raise BuildError(
            f"cannot write to the build cache {folder}: {exc.strerror or exc} (set LGN_CACHE_DIR)"
        ) from None
    source = next(name for name in files if name.endswith(".c"))
    return compile_once(target, [*shlex.split(cc), *flags, "-o", "{out}", str(folder / source)], "C compiler")


class CompiledNet:
    """A compiled network loaded through cffi. Methods take sample-major arrays and return numpy arrays.

    ``threads``: how many threads share a large batch (default: every core); each call splits the batch
    into whole blocks of ``lanes`` samples.
    """

    PREFIX = "lgn_net"

    def __init__(self, graph: GateGraph, library: Path, isa: str, shape: str, threads: int | None = None):
        self.graph, self.isa, self.shape, self.path = graph, isa, shape, library
        self.lanes = c_emit.ISAS[isa]
        self.threads = max(1, threads if threads is not None else (os.cpu_count() or 1))
        self._ffi = cffi.FFI()
        self._ffi.cdef(c_emit.api_declarations(graph, self.PREFIX))
        self._lib = self._ffi.dlopen(str(library))
        self._workspace_bytes = int(getattr(self._lib, f"{self.PREFIX}_workspace_bytes")())
        self._workspaces: list[np.ndarray] = []  # one per worker, reused across calls
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # calls from several Python threads take turns (shared workspaces)

    # ---- inputs ---------------------------------------------------------------------------------
    def _bits(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.graph.n_inputs:
            raise InputError(f"expected input bits of shape [samples, {self.graph.n_inputs}], got {x.shape}")
        if x.dtype == bool:
            x = x.view(np.uint8)
        elif x.dtype.kind in "iu":
            if x.size and (x.min() < 0 or x.max() > 1):
                raise InputError("input bits must be 0 or 1 (raw features go through the *_features methods)")
            x = x.astype(np.uint8, copy=False)
        else:
            raise InputError(f"input bits must be bool or integer 0/1, got dtype {x.dtype}")
        return np.ascontiguousarray(x)

    def _features(self, x) -> tuple[np.ndarray, str]:
        if self.graph.encoder is None:
            raise InputError("this model has no encoder: pass input bits, not raw features")
        x = np.asarray(x)
        n_features = self.graph.encoder.n_features
        if x.ndim != 2 or x.shape[1] != n_features:
            raise InputError(f"expected raw features of shape [samples, {n_features}], got {x.shape}")
        if x.dtype == np.uint8:
            return np.ascontiguousarray(x), "u8"
        if x.dtype == np.float32:
            return np.ascontiguousarray(x), "f32"
        if x.dtype.kind in "iu":  # whole numbers take the byte path when they are bytes; nothing is wrapped
            return np.ascontiguousarray(U8.words(x).astype(np.uint8)), "u8"
        raise InputError(
            f"raw features must be uint8 or float32 (or integers 0..255), got dtype {x.dtype} (convert explicitly)"
        )

    # ---- calls ----------------------------------------------------------------------------------
    def _call(self, name: str, x: np.ndarray, out: np.ndarray, ctype: str, packed_n: int | None = None) -> np.ndarray:
        """Run ``name`` over the rows of ``x`` (or, ``packed_n`` given, over that many samples of packed
        blocks), the batch split into whole blocks across the threads."""
        n = x.shape[0] if packed_n is None else packed_n
        if n == 0:
            return out
        function = getattr(self._lib, f"{self.PREFIX}_{name}")
        in_type = {np.dtype(np.float32): "float *", np.dtype(np.uint64): "uint64_t *"}.get(x.dtype, "uint8_t *")
        per_sample = out.size // n if n else 0
        blocks = -(-n // self.lanes)
        workers = min(self.threads, blocks)
        step = -(-blocks // workers) * self.lanes

        def run(start: int) -> None:
            stop = min(n, start + step)
            workspace = self._workspaces[start // step]
            rows = x[start:stop] if packed_n is None else x[start // self.lanes :]
            function(
                self._ffi.cast(in_type, rows.ctypes.data),
                stop - start,
                self._ffi.cast(ctype, out.reshape(n, -1)[start:stop].ctypes.data) if per_sample else self._ffi.NULL,
                self._ffi.cast("void *", workspace.ctypes.data),
            )

        starts = list(range(0, n, step))
        with self._lock:
            while len(self._workspaces) < workers:
                self._workspaces.append(np.empty(self._workspace_bytes, dtype=np.uint8))
            if len(starts) == 1:
                run(0)
            else:
                if self._pool is None or self._pool._max_workers < len(starts):
                    self._pool = ThreadPoolExecutor(len(starts), thread_name_prefix="lgn")
                list(self._pool.map(run, starts))
        return out

    def _alloc(self, shape, dtype) -> np.ndarray:
        try:
            return np.empty(shape, dtype=dtype)
        except (MemoryError, ValueError) as exc:
            raise InputError(f"cannot allocate the result {shape} ({exc})") from None

    def predict(self, x) -> np.ndarray:
        """``int32[N]``: the class of each row of 0/1 input bits."""
        x = self._bits(x)
        return self._call("predict_bits", x, self._alloc(len(x), np.int32), "int32_t *")

    def scores(self, x) -> np.ndarray:
        """``int32[N, n_classes]``: GroupSum scores of each row of input bits."""
        x = self._bits(x)
        return self._call("scores_bits", x, self._alloc((len(x), self.graph.n_classes), np.int32), "int32_t *")

    def outputs(self, x) -> np.ndarray:
        """``uint8[N, n_outputs]``: every output bit (negation applied) of each row of input bits."""
        x = self._bits(x)
        return self._call("outputs_bits", x, self._alloc((len(x), self.graph.n_outputs), np.uint8), "uint8_t *")

    def _packed(self, x, n: int) -> np.ndarray:
        x = np.asarray(x)
        blocks = -(-n // self.lanes)
        words = self.graph.n_inputs * self.lanes // 64
        if x.dtype != np.uint64 or x.shape != (blocks, words):
            raise InputError(
                f"expected packed bits uint64[{blocks}, {words}] ({n} samples in blocks of {self.lanes}; see "
                f"pack_bits), got {x.dtype}{list(x.shape)}"
            )
        return np.ascontiguousarray(x)

    def predict_packed(self, x, n: int) -> np.ndarray:
        """``int32[n]`` from input bits already in the library's block layout (:func:`pack_bits`)."""
        x = self._packed(x, n)
        return self._call("predict_packed", x, self._alloc(n, np.int32), "int32_t *", packed_n=n)

    def scores_packed(self, x, n: int) -> np.ndarray:
        x = self._packed(x, n)
        return self._call("scores_packed", x, self._alloc((n, self.graph.n_classes), np.int32), "int32_t *", n)

    def predict_features(self, x) -> np.ndarray:
        """``int32[N]`` from raw features (uint8, integers 0..255, or float32) through the encoder thresholds; an
        integer outside 0..255 raises :class:`InputError` (it is never wrapped to a byte)."""
        x, kind = self._features(x)
        return self._call(f"predict_{kind}", x, self._alloc(len(x), np.int32), "int32_t *")

    def scores_features(self, x) -> np.ndarray:
        x, kind = self._features(x)
        return self._call(f"scores_{kind}", x, self._alloc((len(x), self.graph.n_classes), np.int32), "int32_t *")


def pack_bits(bits, lanes: int) -> np.ndarray:
    """Input bits ``[n, n_inputs]`` in the C library's block layout for ``*_predict_packed``:
    ``uint64[ceil(n / lanes), n_inputs * lanes / 64]``; block b, input i, word q, bit s hold sample
    ``b * lanes + 64 q + s``. Padding samples are 0. ``lanes``: the library's (64, 256 or 512)."""
    bits = np.asarray(bits, dtype=bool)
    n, n_inputs = bits.shape
    blocks = -(-n // lanes)
    padded = np.zeros((blocks * lanes, n_inputs), dtype=bool)
    padded[:n] = bits
    per_block = padded.reshape(blocks, lanes, n_inputs).transpose(0, 2, 1)  # [block, input, sample]
    packed = np.packbits(per_block, axis=2, bitorder="little")  # sample s: bit s % 8 of byte s // 8
    return np.ascontiguousarray(packed).view("<u8").reshape(blocks, n_inputs * lanes // 64).astype(np.uint64)


def compile_c(
    graph: GateGraph,
    isa: str = "auto",
    shape: str = "auto",
    threads: int | None = None,
    cache_dir: Path | None = None,
) -> CompiledNet:
    """Emit, build (cached) and load the C library of ``graph``. ``isa``: auto (the ISA, and with ``shape``
    auto the code shape too, measured fastest here: :func:`lgn.compiler.c_tune.fastest`), native (the widest
    this machine runs), or an ISA's name; ``shape`` (with a named ISA): auto (by gate count), straight, table."""
    if isa == "auto":  # the ISA and the shape measured together (lgn.compiler.c_tune)
        from . import c_tune

        choice = c_tune.fastest(graph, "auto", shape, cache_dir)
        isa, shape = choice.isa, choice.shape
    isa = resolve_isa(isa)
    if isa not in host_isas():
        raise LgnError(f"this machine cannot run {isa} code (it supports {', '.join(host_isas())})")
    shape = c_emit.choose_shape(graph, shape)
    emitted = c_emit.emit_c(graph, isa=isa, shape=shape, prefix=CompiledNet.PREFIX)
    library = build_shared(emitted.files, isa, cache_dir)
    return CompiledNet(graph, library, isa, shape, threads)
