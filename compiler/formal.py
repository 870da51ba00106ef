"""Formal equivalence of two gate graphs with ABC's ``cec`` (Debian package ``berkeley-abc``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .blif import to_blif
from .errors import LgnError
from .ir import GateGraph

ABC_BINARIES = ("berkeley-abc", "abc")


def find_abc() -> str | None:
    """Path of the ABC executable, or None."""
    for name in ABC_BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


def abc_equivalent(a: GateGraph, b: GateGraph, timeout: float = 600.0) -> bool:
    """True if ABC proves every output of ``a`` equal to the same output of ``b`` (negation flags
    included), False if it finds a counterexample. Raises :class:`LgnError` if ABC is missing or
    gives no verdict."""
    abc = find_abc()
    if abc is None:
        raise LgnError("ABC is not installed: `apt-get install berkeley-abc` (bash .ci/bootstrap does this)")
    if (a.n_inputs, a.n_outputs) != (b.n_inputs, b.n_outputs):
        raise LgnError("formal check needs the same inputs and outputs on both sides")
    with tempfile.TemporaryDirectory(prefix="lgn-cec-") as tmp:
        left, right = Path(tmp) / "a.blif", Path(tmp) / "b.blif"
        left.write_text(to_blif(a))
        right.write_text(to_blif(b))
        try:
            proc = subprocess.run([abc, "-q", f"cec {left} {right}"], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LgnError(f"ABC cec gave no verdict within {timeout:.0f} s") from None
    text = proc.stdout + proc.stderr
    if "Networks are equivalent" in text:
        return True
    if "Networks are NOT EQUIVALENT" in text:
        return False
    raise LgnError(f"ABC cec gave no verdict (exit {proc.returncode}): {text.strip()[:300]}")
