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


def draw_pools(
    rng: np.random.Generator,
    initial: np.ndarray,
    n_in: int,
    candidates: int,
    positions: np.ndarray | None = None,
    radius: int = 3,
) -> np.ndarray:
    """``int[slots, candidates]`` candidate inputs of every fan-in slot (``initial`` flattened gives one per
    slot, kept as candidate 0 so the starting choice covers every input).

    The others are distinct random inputs; with ``positions`` (``int[n_in, 2]`` pixel coordinates, for
    image inputs) half of them come from within ``radius`` pixels of the slot's starting input instead, so
    a gate can refine a local feature as well as reach across the image.
    """
    slots = initial.reshape(-1)
    pools = np.empty((slots.size, candidates), dtype=np.int64)
    pools[:, 0] = slots
    if candidates == 1:
        return pools
    pools[:, 1:] = rng.integers(0, n_in, size=(slots.size, candidates - 1))
    if positions is not None:
        local = candidates // 2
        near = _nearby(rng, positions, slots, local, radius)
        pools[:, 1 : 1 + local] = near
    _redraw_repeats(rng, pools, n_in)
    return pools


def _nearby(rng: np.random.Generator, positions: np.ndarray, slots: np.ndarray, count: int, radius: int) -> np.ndarray:
    """For every slot, ``count`` distinct inputs other than its own whose pixels lie within ``radius`` of its
    starting input's pixel (thresholds of one pixel share its position; the window is clipped to the image,
    and tops up with random inputs where it holds too few)."""
    rows, cols = positions[:, 0], positions[:, 1]
    windows: dict[tuple[int, int], np.ndarray] = {}
    out = np.empty((slots.size, count), dtype=np.int64)
    for s, start in enumerate(slots.tolist()):
        pixel = (int(rows[start]), int(cols[start]))
        if pixel not in windows:
            near = (np.abs(rows - pixel[0]) <= radius) & (np.abs(cols - pixel[1]) <= radius)
            windows[pixel] = np.flatnonzero(near)
        window = windows[pixel]
        window = window[window != start]
        if len(window) >= count:
            out[s] = rng.choice(window, size=count, replace=False)
        else:
            out[s] = np.concatenate([window, rng.integers(0, len(positions), count - len(window))])
    return out


def _redraw_repeats(rng: np.random.Generator, pools: np.ndarray, n_in: int, rounds: int = 16) -> None:
    """Replace candidates that repeat an earlier one of their slot (where enough inputs exist)."""
    if pools.shape[1] > n_in:
        return
    for _ in range(rounds):
        ordered = np.sort(pools, axis=1)
        if not (ordered[:, 1:] == ordered[:, :-1]).any():
            return
        for row in np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1)):
            seen: set[int] = set()
            for c in range(pools.shape[1]):
                if int(pools[row, c]) in seen:
                    pools[row, c] = rng.integers(n_in)
                seen.add(int(pools[row, c]))


def image_positions(features: np.ndarray, n_features: int) -> np.ndarray | None:
    """``int[n_inputs, 2]`` (row, column) of the pixel each input bit reads, when the raw features are a
    square image; None otherwise."""
    side = int(round(np.sqrt(n_features)))
    if side * side != n_features or side < 4:
        return None
    return np.stack(np.divmod(np.asarray(features, dtype=np.int64), side), axis=1)


def check_given_wiring(in_features: int, out_features: int, arity: int, candidates: int, wiring, pool) -> None:
    """A layer's given wiring is ``[out, arity]`` and its given pool ``[out * arity, candidates]`` (fewer
    candidates than inputs, else the layer mixes every input and a pool means nothing), both reading inputs
    that exist. ``None`` is always fine (the layer draws its own)."""
    for name, given, shape in (
        ("wiring", wiring, (out_features, arity)),
        ("pool", pool, (out_features * arity, candidates)),
    ):
        if given is not None and (
            given.shape != shape or (given.size and not 0 <= given.min() <= given.max() < in_features)
        ):
            raise ValueError(f"{name} must have shape {shape} and read inputs 0..{in_features - 1}, got {given.shape}")
    if pool is not None and candidates >= in_features:
        raise ValueError(f"a pool needs fewer candidates than the {in_features} inputs, got {candidates}")
