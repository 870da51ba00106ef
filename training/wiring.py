"""How a layer's gates are wired to the layer before: the initial (fixed or starting) wiring of training.

Wiring is part of the model and is saved with it (a buffer of every layer).
"""

from __future__ import annotations

import numpy as np


def layer_wiring(rng: np.random.Generator, n_in: int, n_out: int, arity: int) -> np.ndarray:
    """``int[n_out, arity]`` indices into the previous layer: a random permutation of the
    ``arity * n_out`` slots modulo ``n_in``, so every input is used when ``arity * n_out >= n_in``.

    Where the layer is wide enough, a gate that drew the same input twice trades one of those slots
    with a random other gate; trades keep the multiset of slots, so no input loses its reader.
    """
    wiring = (rng.permutation(arity * n_out) % n_in).reshape(n_out, arity)
    if n_in < 2 * arity or arity == 1:
        return wiring
    for _ in range(64):
        ordered = np.sort(wiring, axis=1)
        bad = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if bad.size == 0:
            break
        for gate in bad.tolist():
            row = wiring[gate]
            repeats = [k for k in range(arity) if row[k] in row[:k]]
            if not repeats:  # an earlier trade in this round already fixed it
                continue
            slot = repeats[0]
            other, other_slot = int(rng.integers(n_out)), int(rng.integers(arity))
            a, b = row[slot], wiring[other, other_slot]
            if other != gate and b not in row and a not in np.delete(wiring[other], other_slot):
                wiring[gate, slot], wiring[other, other_slot] = b, a
    return wiring
