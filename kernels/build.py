"""Building the CUDA kernels: on first use through PyTorch's extension tooling (compiled once, cached under
``TORCH_EXTENSIONS_DIR``), and ``check()``, which compiles every source with nvcc, with the flags PyTorch's
builder adds, for the target architectures on a machine without a GPU.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent / "csrc"
CUDA_SOURCES = ("lgn_kernels.cu",)
HOST_SOURCES = ("lgn_binding.cpp",)
TARGET_ARCHES = ("80", "90")  # A100, H100/H200
NVCC_FLAGS = ("-O3",)
CXX_STANDARD = "-std=c++20"  # what PyTorch 2.13's headers and its extension builder use
EXTENSION_NAME = "lgn_gate_kernels"

_extension = None


def find_nvcc() -> str | None:
    """nvcc from ``$CUDA_HOME/bin`` if set, else from ``PATH``."""
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if cuda_home and (Path(cuda_home) / "bin" / "nvcc").is_file():
        return str(Path(cuda_home) / "bin" / "nvcc")
    return shutil.which("nvcc")


def gencode_flags(arches=TARGET_ARCHES) -> list[str]:
    return [f"-gencode=arch=compute_{a},code=sm_{a}" for a in arches]


def load_extension(verbose: bool = False):
    """The compiled extension module, building it on first call (takes a minute; cached afterwards)."""
    global _extension
    if _extension is None:
        from torch.utils.cpp_extension import load

        sources = [str(SOURCE_DIR / name) for name in HOST_SOURCES + CUDA_SOURCES]
        # PyTorch rebuilds when a listed source changes, not a header: name the build after all of csrc.
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(SOURCE_DIR.iterdir()))).hexdigest()[:12]
        _extension = load(
            name=f"{EXTENSION_NAME}_{digest}",
            sources=sources,
            extra_include_paths=[str(SOURCE_DIR)],
            extra_cflags=["-O3"],
            extra_cuda_cflags=list(NVCC_FLAGS),
            verbose=verbose,
        )
    return _extension


def _torch_nvcc_flags() -> list[str]:
    """The flags PyTorch's extension builder adds to every nvcc call (no implicit half/bfloat16
    conversions, ...), so the check compiles what the real build compiles."""
    from torch.utils import cpp_extension

    return list(getattr(cpp_extension, "COMMON_NVCC_FLAGS", []))


@dataclass(frozen=True)
class CheckResult:
    source: str
    target: str
    ok: bool
    output: str


def _run(command: list[str]) -> tuple[bool, str]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def check(arches=TARGET_ARCHES, nvcc: str | None = None) -> list[CheckResult]:
    """Compile every CUDA source with nvcc for each architecture (object files only, nothing runs) and
    the binding with the host compiler against PyTorch's headers (syntax and types only).

    Raises ``FileNotFoundError`` when nvcc is absent.
    """
    nvcc = nvcc or find_nvcc()
    if nvcc is None:
        raise FileNotFoundError("nvcc not found: install the CUDA toolkit or set CUDA_HOME")
    results = []
    with tempfile.TemporaryDirectory(prefix="lgn-kernel-check-") as scratch:
        for name in CUDA_SOURCES:
            for arch in arches:
                target = Path(scratch) / f"{Path(name).stem}.sm_{arch}.o"
                command = [
                    nvcc,
                    CXX_STANDARD,
                    *NVCC_FLAGS,
                    *_torch_nvcc_flags(),
                    *gencode_flags([arch]),
                    "-Xcompiler",
                    "-Wall",
                    "-Werror",
                    "all-warnings",
                    "-I",
                    str(SOURCE_DIR),
                    "-c",
                    str(SOURCE_DIR / name),
                    "-o",
                    str(target),
                ]
                ok, output = _run(command)
                results.append(CheckResult(name, f"sm_{arch}", ok, output))
        from torch.utils.cpp_extension import include_paths

        compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or "c++"
        includes = [*include_paths(), sysconfig.get_paths()["include"], str(SOURCE_DIR)]
        for name in HOST_SOURCES:
            command = [
                compiler,
                CXX_STANDARD,
                "-fsyntax-only",
                "-Wall",
                "-DTORCH_EXTENSION_NAME=lgn_check",
                *[f"-I{path}" for path in includes],
                str(SOURCE_DIR / name),
            ]
            ok, output = _run(command)
            results.append(CheckResult(name, "host", ok, output))
    return results


def main_check(arches=TARGET_ARCHES) -> int:
    """``python -m lgn.kernels --check``: print one line per compilation; 0 only if all compiled."""
    try:
        results = check(arches)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(f"{'ok  ' if result.ok else 'FAIL'} {result.source} [{result.target}]")
        if not result.ok or result.output:
            print("\n".join("    " + line for line in result.output.splitlines()))
    failed = sum(not r.ok for r in results)
    print(f"{len(results)} compilations, {failed} failed")
    return 1 if failed else 0
