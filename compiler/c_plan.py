"""Memory planning for the C kernels: which value vector (slot) each node of a program lives in.

A program evaluates its gates in a fixed order, each gate once. Node n's value is needed from the gate that
writes it until its last reader; after that its slot can hold a later gate's value. Planning slots this way
makes the kernels' working set the network's *live width* instead of its node count, so a wide or deep
network's values stay in a nearer cache level.

Contract of :func:`plan_slots` (checked by tests/test_c_plan.py against the evaluator, on graphs built to
stress it: heavy fan-out, values read long after they are written, outputs read by gates):

- the fixed nodes (constants and inputs, ids ``0..n_fixed-1``) start in their own slots (the kernels load
  inputs there); the constants' slots and the kept nodes' slots are never reused;
- a gate never writes a slot that one of its own operands lives in (the kernels may write the result
  before reading every operand, as k-input LUT code does);
- a slot is handed to a gate only after the last reader of its previous value (a gate, or code between
  gates named by ``read_after``): most recently freed first, so a value is written where one was just read,
  in cache.
"""

from __future__ import annotations

import numpy as np

from .ir import FIRST_INPUT  # nodes below it are the constants 0 and 1


def last_readers(n_nodes: int, reads: np.ndarray) -> np.ndarray:
    """int64[n_nodes]: the index of the last gate that reads each node, -1 for nodes no gate reads.

    ``reads`` is int[n_gates, k]: the nodes gate i reads (a gate may list a node twice; -1 pads a row)."""
    last = np.full(n_nodes, -1, dtype=np.int64)
    if reads.size:
        gate = np.broadcast_to(np.arange(len(reads))[:, None], reads.shape)
        used = reads >= 0
        np.maximum.at(last, reads[used], gate[used])
    return last


def plan_slots(
    n_fixed: int, reads: np.ndarray, kept: np.ndarray, read_after: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """The slot of every node of a program, and the number of slots it needs.

    ``n_fixed``: constants and inputs, nodes ``0..n_fixed-1``; gate i is node ``n_fixed + i`` and reads the nodes
    in row i of ``reads`` (int[n_gates, k], -1 pads); ``kept``: nodes whose values are read after the last gate
    (the outputs); ``read_after`` (int[n_nodes], -1 for none): code between gates that reads a node right after
    gate i (the straight code's in-line GroupSum), so the node's slot is not reused before gate i + 1.
    Returns (int64[n_nodes] slots, slot count)."""
    n_gates = len(reads)
    n_nodes = n_fixed + n_gates
    last = last_readers(n_nodes, reads)
    if read_after is not None:
        last = np.maximum(last, np.asarray(read_after, dtype=np.int64))
    forever = n_gates  # past every gate
    last[np.asarray(kept, dtype=np.int64)] = forever
    last[:FIRST_INPUT] = forever
    # The nodes whose last reader is gate i free their slots right after it writes its own.
    by_last = np.argsort(last, kind="stable")
    bounds = np.searchsorted(last[by_last], np.arange(-1, n_gates + 1)).tolist()
    unread = by_last[bounds[0] : bounds[1]]
    free = sorted(unread[unread < n_fixed].tolist(), reverse=True)  # inputs nothing reads; pop() gives the lowest
    dying, unused = by_last.tolist(), (last < 0).tolist()
    slot = list(range(n_nodes))
    n_slots = n_fixed
    for i in range(n_gates):
        if free:
            s = free.pop()
        else:
            s, n_slots = n_slots, n_slots + 1
        slot[n_fixed + i] = s
        if unused[n_fixed + i]:  # a value nothing reads: its slot is free again at once
            free.append(s)
        free.extend(slot[node] for node in dying[bounds[i + 1] : bounds[i + 2]])
    return np.asarray(slot, dtype=np.int64), n_slots
