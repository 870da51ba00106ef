"""The CUDA kernels' per-thread code run on the host (``csrc/lgn_host_emulation.cpp``), for testing the
kernels' arithmetic and indexing on machines without a GPU. Not a fast path: one thread index after
another. Takes and returns CPU tensors with the same layout and arguments as the CUDA operators.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch
from torch import Tensor

from .host import build_host_library

DTYPES = {torch.float32: 0, torch.float64: 1}


def build_library(folder: Path | None = None) -> Path:
    """Compile the emulation into a shared library (cached by its sources); the library's path."""
    return build_host_library("lgn_host_emulation.cpp", ("-O2",), ("lgn_gate_math.cuh",), folder)


class Emulator:
    """The emulated kernels. Every method mirrors one launcher of ``csrc/lgn_kernels.h``."""

    def __init__(self, library: Path | None = None):
        self.lib = ctypes.CDLL(str(library or build_library()))

    @staticmethod
    def _ptr(t: Tensor) -> ctypes.c_void_p:
        return ctypes.c_void_p(t.data_ptr())

    def _check(self, code: int, what: str) -> None:
        if code != 0:
            raise ValueError(f"{what}: unsupported dtype or arity")

    def forward(self, x: Tensor, wiring: Tensor, corners: Tensor) -> Tensor:
        x, wiring, corners = x.contiguous(), wiring.to(torch.int32).contiguous(), corners.contiguous()
        y = torch.empty(wiring.shape[0], x.shape[1], dtype=x.dtype)
        code = self.lib.lgn_emulate_forward(
            DTYPES[x.dtype], self._ptr(x), ctypes.c_int64(x.shape[1]), self._ptr(wiring), wiring.shape[1],
            ctypes.c_int64(wiring.shape[0]), self._ptr(corners), self._ptr(y),
        )  # fmt: skip
        self._check(code, "forward")
        return y

    def backward(self, grad_y: Tensor, x: Tensor, wiring: Tensor, corners: Tensor, offsets: Tensor, entries: Tensor):
        grad_y, x, corners = grad_y.contiguous(), x.contiguous(), corners.contiguous()
        wiring = wiring.to(torch.int32).contiguous()
        grad_x, grad_corners = torch.empty_like(x), torch.empty_like(corners)
        code = self.lib.lgn_emulate_backward(
            DTYPES[x.dtype], self._ptr(grad_y), self._ptr(x), ctypes.c_int64(x.shape[1]), ctypes.c_int64(x.shape[0]),
            self._ptr(wiring), wiring.shape[1], ctypes.c_int64(wiring.shape[0]), self._ptr(corners),
            self._ptr(offsets), self._ptr(entries), self._ptr(grad_x), self._ptr(grad_corners),
        )  # fmt: skip
        self._check(code, "backward")
        return grad_x, grad_corners

    def op_corners(self, logits: Tensor, tables: Tensor) -> Tensor:
        logits, tables = logits.contiguous(), tables.to(torch.int32).contiguous()
        corners = torch.empty(logits.shape[0], 4, dtype=logits.dtype)
        code = self.lib.lgn_emulate_op_corners(
            DTYPES[logits.dtype], self._ptr(logits), self._ptr(tables), ctypes.c_int64(logits.shape[0]),
            self._ptr(corners),
        )  # fmt: skip
        self._check(code, "op_corners")
        return corners

    def op_corners_backward(self, grad_corners: Tensor, logits: Tensor, tables: Tensor) -> Tensor:
        grad_corners, logits = grad_corners.contiguous(), logits.contiguous()
        tables = tables.to(torch.int32).contiguous()
        grad_logits = torch.empty_like(logits)
        code = self.lib.lgn_emulate_op_corners_backward(
            DTYPES[logits.dtype], self._ptr(grad_corners), self._ptr(logits), self._ptr(tables),
            ctypes.c_int64(logits.shape[0]), self._ptr(grad_logits),
        )  # fmt: skip
        self._check(code, "op_corners_backward")
        return grad_logits

    def packed_layer(self, bits: Tensor, wiring: Tensor, tables: Tensor) -> Tensor:
        bits, tables = bits.contiguous(), tables.to(torch.int64).contiguous()
        wiring = wiring.to(torch.int32).contiguous()
        out = torch.empty(wiring.shape[0], bits.shape[1], dtype=torch.int64)
        code = self.lib.lgn_emulate_packed(
            self._ptr(bits), ctypes.c_int64(bits.shape[1]), self._ptr(wiring), wiring.shape[1],
            ctypes.c_int64(wiring.shape[0]), self._ptr(tables), self._ptr(out),
        )  # fmt: skip
        self._check(code, "packed_layer")
        return out
