"""Formal equivalence with ABC's ``cec`` (Debian package ``berkeley-abc``): the one ABC driver.

``--formal`` has one meaning everywhere: prove that an implementation's gate network computes every output
bit (negation flags applied) of the reference graph. :func:`prove_graphs` compares two graphs (their
BLIF, written by :mod:`lgn.compiler.blif`); :func:`prove_verilog` compares the Verilog the backend emits
for a graph, read and flattened by yosys, with the graph itself. GroupSum and argmax come from the same
emitter over the same class groups on both sides and are covered by simulation.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .blif import to_blif
from .errors import LgnError, ToolMissingError
from .ir import GateGraph

ABC_BINARIES = ("berkeley-abc", "abc")


def find_abc() -> str | None:
    """Path of the ABC executable, or None."""
    for name in ABC_BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


def abc_cec(left: Path, right: Path, timeout: float = 600.0) -> bool:
    """ABC's ``cec`` on two BLIF files: True if proven equivalent, False on a counterexample. Raises
    :class:`LgnError` when ABC is missing or gives no verdict."""
    abc = find_abc()
    if abc is None:
        raise ToolMissingError("ABC is not installed: `apt-get install berkeley-abc` (bash .ci/bootstrap does this)")
    try:
        proc = subprocess.run([abc, "-q", f"cec {left} {right}"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LgnError(f"ABC cec gave no verdict within {timeout:.0f} s") from None
    text = proc.stdout + proc.stderr
    if "Networks are equivalent" in text:
        return True
    if "NOT EQUIVALENT" in text:
        return False
    raise LgnError(f"ABC cec gave no verdict (exit {proc.returncode}): {text.strip()[:300]}")


def _same_shape(a: GateGraph, b: GateGraph) -> None:
    if (a.n_inputs, a.n_outputs) != (b.n_inputs, b.n_outputs):
        raise LgnError("formal check needs the same inputs and outputs on both sides")


def prove_graphs(reference: GateGraph, other: GateGraph, timeout: float = 600.0) -> bool:
    """Whether ``other`` computes every output bit of ``reference``."""
    _same_shape(reference, other)
    with tempfile.TemporaryDirectory(prefix="lgn-cec-") as tmp:
        left, right = Path(tmp) / "a.blif", Path(tmp) / "b.blif"
        left.write_text(to_blif(reference))
        right.write_text(to_blif(other))
        return abc_cec(left, right, timeout)


def prove_verilog(reference: GateGraph, implementation: GateGraph | None = None, timeout: float = 1800.0) -> bool:
    """Whether the Verilog emitted for ``implementation`` (default: ``reference`` itself) computes every output
    bit of ``reference``. yosys reads the emitted gate network and writes it as gate-level BLIF."""
    from .hdl_tools import yosys_blif
    from .verilog_emit import emit_verilog, network_only

    implementation = reference if implementation is None else implementation
    _same_shape(reference, implementation)
    text = emit_verilog(network_only(implementation), module="lgn_formal", raw_input=False, with_argmax=False)
    with tempfile.TemporaryDirectory(prefix="lgn-cec-") as tmp:
        left, right = Path(tmp) / "graph.blif", Path(tmp) / "verilog.blif"
        # yosys names the bits of a vector port x[i]; a one-bit port keeps its plain name.
        inputs = "x[{}]" if reference.n_inputs > 1 else "x"
        outputs = "scores[{}]" if reference.n_outputs > 1 else "scores"
        left.write_text(to_blif(reference, inputs=inputs, outputs=outputs))
        yosys_blif(text["lgn_formal.v"], "lgn_formal", right, timeout)
        return abc_cec(left, right, timeout)
