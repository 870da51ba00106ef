"""Dual-output LUT packing: LUT6 sites counted as Vivado counts them (issue 32, item 4).

A LUT6 site of a Xilinx 7-series or UltraScale part (the ``LUT6_2`` primitive) computes either one function of
up to six inputs, or two functions of up to five inputs each that share the site's five pins A1..A5 (outputs
O6 and O5). Two of our LUTs therefore fit one site when together they read at most five distinct signals.
Vivado's utilization report counts sites ("Slice LUTs"), so a Vivado-reported LUT count (DWN's 1,413 for
97.9% MNIST) is to be compared with our count *after* such packing; the plain count (one site per LUT) is
what yosys' ``synth_xilinx`` and our mapping report.

:func:`dual_output_pairs` is a greedy matching, not an optimum: every pair it returns is a legal LUT6_2, so
``n_luts - len(pairs)`` is a count a placer can reach (an upper bound on the fewest sites), deterministic for a
given graph. Only the packing is modelled; the placer's other limits (slices of four sites, carry chains,
control sets) are not, so this is the figure to set beside a vendor's LUT count, not a promise of fit.
"""

from __future__ import annotations

import numpy as np

from .ir import GateGraph
from .truth import depends_on

SHARED_PINS = 5  # a LUT6_2's two outputs read the same five pins (A6 tied high)
_PARTNERS_PER_SIGNAL = 64  # candidates looked at per shared signal: bounds the work on signals read by thousands


def supports(graph: GateGraph) -> list[frozenset[int]]:
    """Per gate, the node ids its table actually depends on (a fan-in slot the table ignores is not a pin)."""
    used = np.zeros(graph.fanins.shape, dtype=bool)
    for slot in range(graph.arity):
        used[:, slot] = depends_on(graph.tables, slot, graph.arity)
    return [frozenset(int(n) for n in row[mask]) for row, mask in zip(graph.fanins, used)]


def dual_output_pairs(pins: list[frozenset[int]]) -> list[tuple[int, int]]:
    """Disjoint pairs of LUT indices whose pins together are at most :data:`SHARED_PINS` signals.

    First LUTs that share signals, the widest first (they have the fewest partners), each with the candidate
    that adds the fewest new pins (ties: the lowest index); then the LUTs left over, paired by size alone
    (two LUTs of 2 and 3 disjoint pins fill a site as well): the largest with the smallest that fits.
    """
    small = [i for i, p in enumerate(pins) if len(p) <= SHARED_PINS]
    readers: dict[int, list[int]] = {}
    for i in small:
        for signal in sorted(pins[i]):
            readers.setdefault(signal, []).append(i)
    partner: dict[int, int] = {}
    for i in sorted(small, key=lambda j: (-len(pins[j]), j)):
        if i not in partner:
            best = _best_sharing_partner(i, pins, readers, partner)
            if best is not None:
                partner[i], partner[best] = best, i
    left = sorted((len(pins[i]), i) for i in small if i not in partner)
    pairs = [(min(i, j), max(i, j)) for i, j in partner.items() if i < j]
    low, high = 0, len(left) - 1
    while low < high:
        if left[low][0] + left[high][0] <= SHARED_PINS:
            pairs.append((min(left[low][1], left[high][1]), max(left[low][1], left[high][1])))
            low += 1
        high -= 1
    return sorted(pairs)


def _best_sharing_partner(i: int, pins, readers: dict[int, list[int]], partner: dict[int, int]) -> int | None:
    """The unpaired LUT sharing a signal with ``i`` whose union with ``i``'s pins is smallest and fits."""
    best, best_key = None, None
    for signal in sorted(pins[i]):
        seen = 0
        for j in readers[signal]:
            if j == i or j in partner:
                continue
            seen += 1
            union = len(pins[i] | pins[j])
            if union <= SHARED_PINS and (best_key is None or (union, j) < best_key):
                best, best_key = j, (union, j)
            if seen >= _PARTNERS_PER_SIGNAL:
                break
    return best


def packed_sites(graph: GateGraph) -> int:
    """LUT6 sites of ``graph`` (a netlist of at most 6-input gates) when pairs of LUTs that read at most five
    signals together share a site, as Vivado's LUT6_2 does."""
    return graph.n_gates - len(dual_output_pairs(supports(graph)))
