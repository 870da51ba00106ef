"""Compressor trees: the sum of columns of bits (column c weighs 2^c) from counters of at most K inputs, each
output bit one K-input LUT, with as few LUTs as a bounded search finds.

The counters are generalized parallel counters over two adjacent columns: a ``(a0, a1)`` counter takes a0 >= 2
bits of column c and a1 bits of column c + 1 (a0 + a1 <= K) and writes their value, a0 + 2 a1, as
bit_length(a0 + 2 a1) bits into columns c, c + 1, ... Output bits at or above ``width`` are dropped: the total
is below 2^width, so they are always 0. Columns are finished from the least significant up; a column is done
when it holds at most one bit, and that bit is the score's bit.

Every LUT removes (inputs - outputs) bits from the columns and the number of bits to remove is fixed, so the
LUT count falls with the counters' efficiency (inputs - outputs) / outputs: 1 for (6:3) and (5,1), 2/3 for
(5:3), (4,1), (3,2), 1/2 for (3:2), 0 for a half adder. The plan is an exhaustive search over the counters,
memoized on the column heights, once the most efficient single-column counter has brought the column being
finished down to ``SEARCH_HEIGHT`` bits (a higher bound saves about one LUT per 100 bits and costs 4x the
time). For 100 bits in one column: 96 LUT6 (the staged Wallace tree this replaced: 103 after mapping) and
188 LUT4 (234).

The plan decides only which counters run; ``count_columns`` wires each counter to the earliest-computed bits
of its columns, so a column of n bits still compresses in about log(n) levels.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable

SEARCH_HEIGHT = 8  # above this many bits a column takes the most efficient single-column counter, unsearched

Shape = tuple[int, int]  # (bits taken from column c, bits taken from column c + 1)
Step = tuple[int, Shape, int]  # (column c, counter shape, how many of them in a row)
Literal = tuple[int, bool]


def shape_outputs(shape: Shape) -> int:
    """Output bits of a counter: the bit length of the largest value it can see."""
    return sum(a << i for i, a in enumerate(shape)).bit_length()


@functools.lru_cache(maxsize=16)
def _shapes(k: int) -> tuple[Shape, ...]:
    """Every counter of at most ``k`` inputs (largest first, so the search meets good plans early)."""
    return tuple(sorted({(a0, a1) for a0 in range(2, k + 1) for a1 in range(k - a0 + 1)}, reverse=True))


def _bulk_shape(k: int) -> Shape:
    """The single-column counter that removes the most bits per LUT ((6:3) at k = 6, (3:2) at k = 4)."""
    return max(((a0, 0) for a0 in range(2, k + 1)), key=lambda s: (s[0] - shape_outputs(s)) / shape_outputs(s))


@functools.lru_cache(maxsize=8)
def _memo(k: int, width: int) -> dict:
    """The search's memo for one counter size and score width, shared by every class's columns."""
    return {}


def plan(heights: tuple[int, ...], width: int, k: int) -> tuple[int, tuple[Step, ...]]:
    """(LUTs, steps) reducing columns of ``heights`` bits (column 0 first) to at most one bit each below
    ``width``. Pure: the same heights give the same plan."""
    return _best(k, width, 0, _trim(heights))


def _trim(heights) -> tuple[int, ...]:
    heights = list(heights)
    while heights and heights[-1] == 0:
        heights.pop()
    return tuple(heights)


def _apply(heights: tuple[int, ...], c: int, width: int, shape: Shape, times: int) -> tuple[tuple[int, ...], int]:
    """Heights (from column c) after ``times`` counters of ``shape`` at column c, and the LUTs they cost."""
    n_out = shape_outputs(shape)
    new = list(heights) + [0] * (n_out + len(shape))
    for i, a in enumerate(shape):
        new[i] -= a * times
    kept = [j for j in range(n_out) if c + j < width]
    for j in kept:
        new[j] += times
    return _trim(new), len(kept) * times


def _best(k: int, width: int, c: int, heights: tuple[int, ...]) -> tuple[int, tuple[Step, ...]]:
    """The cheapest steps finishing columns c, c + 1, ... (``heights`` starts at column c)."""
    while heights and heights[0] <= 1 and c < width:
        heights, c = heights[1:], c + 1
    if not heights or c >= width:
        return 0, ()
    memo = _memo(k, width)
    key = (c, heights)
    if key in memo:
        return memo[key]
    if heights[0] > SEARCH_HEIGHT:
        bulk = _bulk_shape(k)
        times = -(-(heights[0] - SEARCH_HEIGHT) // (bulk[0] - 1))
        after, luts = _apply(heights, c, width, bulk, times)
        rest, steps = _best(k, width, c, after)
        result = (luts + rest, ((c, bulk, times), *steps))
    else:
        result = (1 << 62, ())
        have = heights + (0, 0)
        for shape in _shapes(k):
            if any(a > h for a, h in zip(shape, have)):
                continue
            after, luts = _apply(heights, c, width, shape, 1)
            rest, steps = _best(k, width, c, after)
            if luts + rest < result[0]:
                result = (luts + rest, ((c, shape, 1), *steps))
    memo[key] = result
    return result


def count_columns(
    function: Callable[[list[Literal], Callable[[list[int]], int]], Literal],
    columns: list[list[Literal]],
    width: int,
    k: int,
    zero: Literal,
) -> list[Literal]:
    """The sum of ``columns`` (column c of weight 2^c) as ``width`` literals, LSB first, built with
    ``function(literals, fn)`` (a gate computing ``fn`` of the literals' values; see NetlistBuilder.function).
    The caller promises the sum is below 2^width."""
    # per column a heap of (level, serial, literal): counters take the earliest-computed bits, ties first-added;
    # one empty column past the top, for counters that take bits of column c + 1
    pending = [[(0, i, lit) for i, lit in enumerate(col)] for col in columns]
    pending += [[] for _ in range(width + 1 - len(pending))]
    serial = sum(len(col) for col in columns)
    _, steps = plan(tuple(len(col) for col in columns), width, k)
    for c, shape, times in steps:
        for _ in range(times):
            taken = [heapq.heappop(pending[c + i]) for i, a in enumerate(shape) for _ in range(a)]
            inputs = [lit for _, _, lit in taken]
            weights = [1 << i for i, a in enumerate(shape) for _ in range(a)]
            depth = 1 + max(lvl for lvl, _, _ in taken)
            for j in range(shape_outputs(shape)):
                if c + j < width:
                    out = function(inputs, _bit_of_weighted_sum(weights, j))
                    heapq.heappush(pending[c + j], (depth, serial, out))
                    serial += 1
    if any(len(col) > 1 for col in pending[:width]):
        raise RuntimeError("compressor plan left a column with more than one bit")  # a bug in plan(), not input
    return [col[0][2] if col else zero for col in pending[:width]]


def _bit_of_weighted_sum(weights: list[int], j: int) -> Callable[[list[int]], int]:
    return lambda values: (sum(w * v for w, v in zip(weights, values)) >> j) & 1
