"""Data augmentation on encoded images: random shifts of the training images, done on their input bits.

Input bit i reads pixel (r, c) of a square image against a threshold; shifted by (dy, dx) it reads pixel
(r - dy, c - dx) against the same threshold, which is another input bit, or none (outside the image or
outside a crop: background, 0). A shift is therefore a gather of each row of bits through a table: one table
per shift, built once, so a step costs one gather on the batch.
"""

from __future__ import annotations

import numpy as np
import torch

from lgn.compiler.errors import ParameterError
from lgn.compiler.ir import Encoder

from .wiring import image_positions


def shift_tables(encoder: Encoder, radius: int) -> np.ndarray:
    """``int64[(2 radius + 1)^2, n_inputs]``: for every shift (dy, dx) with |dy|, |dx| <= radius (the first is
    (-radius, -radius), the middle one (0, 0)), the input bit each bit reads after the shift; ``n_inputs``
    stands for a zero. Raises :class:`ParameterError` when the features are not a square image."""
    positions = image_positions(encoder.feature, encoder.n_features)
    if positions is None:
        raise ParameterError(f"shift needs square images; {encoder.n_features} features are not a square", "shift")
    side = int(round(np.sqrt(encoder.n_features)))
    n_inputs = len(encoder.feature)
    bit_of = {(int(f), float(t)): i for i, (f, t) in enumerate(zip(encoder.feature, encoder.threshold))}
    tables = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            rows, cols = positions[:, 0] - dy, positions[:, 1] - dx
            inside = (rows >= 0) & (rows < side) & (cols >= 0) & (cols < side)
            source = rows * side + cols
            table = [
                bit_of.get((int(source[i]), float(encoder.threshold[i])), n_inputs) if inside[i] else n_inputs
                for i in range(n_inputs)
            ]
            tables.append(table)
    return np.asarray(tables, dtype=np.int64)


def shift_batch(bits: torch.Tensor, tables: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    """Rows of ``bits`` ``[batch, n_inputs]``, row j shifted by table ``choice[j]`` of ``tables``."""
    padded = torch.cat([bits, torch.zeros(len(bits), 1, dtype=bits.dtype, device=bits.device)], dim=1)
    return torch.gather(padded, 1, tables[choice])
