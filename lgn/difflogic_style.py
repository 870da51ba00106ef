"""A baseline C emitter written the way difflogic's CompiledLogicNet writes C, for benchmarks only.

Its shape, from difflogic's description (no code copied): one ``const uint64_t vN = a OP b;`` statement
per gate in one big function over 64-sample words, no SIMD, input packing one bit at a time with
shifts, GroupSum as a bit-sliced ripple-carry counter fed one output at a time, then a per-sample argmax;
built with ``gcc -O1`` (no ``-march``) and loaded with ctypes.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from lgn.compiler.ir import GateGraph
from lgn.compiler.lowering import Dialect, gate_expression

# difflogic writes plain 64-bit integer expressions: the shared gate functions in that dialect.
_WORD = Dialect("0", "~(uint64_t)0")


def emit(graph: GateGraph) -> str:
    if graph.arity != 2:
        raise ValueError("the difflogic-style baseline handles 2-input gates only")

    def name(node: int) -> str:
        if node == 0:
            return "((uint64_t)0)"
        if node == 1:
            return "(~(uint64_t)0)"
        if node < graph.first_gate:
            return f"inp[{node - 2}]"
        return f"v{node}"

    lines = [
        "#include <stdint.h>",
        "#include <string.h>",
        "",
        "static void net(const uint64_t *inp, uint64_t *out) {",
    ]
    for i, (row, table) in enumerate(zip(graph.fanins.tolist(), graph.tables.tolist())):
        expr = gate_expression(table, name(row[0]), name(row[1]), _WORD)
        lines.append(f"    const uint64_t v{graph.first_gate + i} = {expr};")
    for j, (node, neg) in enumerate(zip(graph.outputs.tolist(), graph.output_negated.tolist())):
        lines.append(f"    out[{j}] = {'~' if neg else ''}{name(node)};")
    lines.append("}")
    bits = max(1, int(graph.class_sizes.max()).bit_length())
    offsets = ", ".join(map(str, graph.class_offsets.tolist()))
    lines += [
        f"static const int offsets[] = {{{offsets}}};",
        "void apply(const uint8_t *x, long n, int32_t *classes) {",
        f"    uint64_t inp[{max(1, graph.n_inputs)}], out[{graph.n_outputs}];",
        f"    uint64_t count[{graph.n_classes}][{bits}];",
        "    for (long start = 0; start < n; start += 64) {",
        "        long m = n - start < 64 ? n - start : 64;",
        "        memset(inp, 0, sizeof(inp));",
        "        for (long s = 0; s < m; s++)",
        f"            for (int i = 0; i < {graph.n_inputs}; i++)",
        f"                inp[i] |= (uint64_t)(x[(start + s) * {graph.n_inputs} + i] != 0) << s;",
        "        net(inp, out);",
        "        memset(count, 0, sizeof(count));",
        f"        for (int c = 0; c < {graph.n_classes}; c++)",
        "            for (int j = offsets[c]; j < offsets[c + 1]; j++) {",
        "                uint64_t carry = out[j];",
        f"                for (int b = 0; b < {bits}; b++) {{",
        "                    uint64_t t = count[c][b] & carry; count[c][b] ^= carry; carry = t;",
        "                }",
        "            }",
        "        for (long s = 0; s < m; s++) {",
        "            int best = 0, best_score = -1;",
        f"            for (int c = 0; c < {graph.n_classes}; c++) {{",
        "                int score = 0;",
        f"                for (int b = 0; b < {bits}; b++) score |= (int)((count[c][b] >> s) & 1) << b;",
        "                if (score > best_score) { best_score = score; best = c; }",
        "            }",
        "            classes[start + s] = best;",
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


class BaselineNet:
    """The baseline compiled with ``gcc -O1`` (like difflogic's default) and loaded with ctypes."""

    def __init__(self, graph: GateGraph, opt: str = "-O1", timeout: float | None = None):
        self.folder = Path(tempfile.mkdtemp(prefix="lgn-baseline-"))
        source, library = self.folder / "net.c", self.folder / "net.so"
        source.write_text(emit(graph))
        subprocess.run(["gcc", opt, "-shared", "-fPIC", "-o", str(library), str(source)], check=True, timeout=timeout)
        self._lib = ctypes.CDLL(str(library))
        self._lib.apply.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]
        self.graph = graph

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.uint8)
        out = np.empty(len(x), dtype=np.int32)
        self._lib.apply(x.ctypes.data, len(x), out.ctypes.data)
        return out

    def close(self) -> None:
        for path in self.folder.iterdir():
            os.unlink(path)
        self.folder.rmdir()
