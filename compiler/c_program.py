"""C backend, program half: the order of the gates, their kinds and the slots of their values.

The C kernels run a :class:`CProgram`: the gates in one order, each 2-input gate named by its function (its
4-bit table) and each wider one a k-input LUT, every value named by its slot in the kernel's value array. Three
schedules order the gates (:func:`build_program`):

- ``level``: level by level; within a level the outputs of class 0, of class 1, ..., then the other gates, each
  by function and then by their operands' new ids, so that each (level, function) group is one contiguous run
  that the table kernel evaluates as one tight loop;
- ``class``: the same order applied to the cone of class 0's outputs, then to what class 1's cone needs more,
  ... (:func:`first_class_reaching`): each class is counted as soon as its cone is done, and its outputs' slots
  are free again, while the table kernel's loops stay grouped by function;
- ``depth``: depth-first from the outputs, class by class (:func:`depth_first_order`), for the straight code.
  The level order evaluates every gate of a level before any of the next, so a whole level is live at once;
  depth-first, a gate's operands are written just before it, values die soon after they are born, and their
  slots are reused at once (:mod:`.c_plan`).

Whatever the schedule, each class is counted right after the gate that completes it and its output slots are
reused from the next gate on. :func:`plan_program` keeps, of the schedules a code shape can run, the one that
needs the fewest slots.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .c_plan import plan_slots
from .errors import ParameterError
from .ir import GateGraph
from .lowering import two_input_form

LUT_KIND = 16  # CProgram.kind of a k-input LUT (0..15: a 2-input function, its table)
SCHEDULES = ("level", "class", "depth")


@dataclasses.dataclass(frozen=True)
class CProgram:
    """The gates in execution order, every value named by its slot in the kernel's value array (planned by
    :mod:`.c_plan`: a slot is reused once its value's last reader has run). Constants and inputs keep their
    node ids as slots."""

    n_inputs: int
    arity: int
    n_slots: int
    kind: np.ndarray  # uint8[n_gates]: 0..15 = a 2-input function (its table), 16 = a k-input LUT
    dst: np.ndarray  # int32[n_gates]: the slot each gate writes
    a: np.ndarray  # int32[n_gates]: slot of the first operand of 2-input gates
    b: np.ndarray  # int32[n_gates]
    lut_in: np.ndarray  # int32[n_luts, arity]: operand slots of the k-input LUTs
    lut_table: np.ndarray  # uint64[n_luts]
    groups: np.ndarray  # int32[n_groups, 4]: kind, first gate, count, offset into the LUT arrays (LUT groups)
    outputs: np.ndarray  # int32[n_outputs]: slots (valid until their class is counted)
    class_done: np.ndarray  # int64[n_classes]: the gate (in program order) after which a class's outputs all
    # exist (-1: they are inputs and constants); their slots are free again after it
    output_negated: np.ndarray
    class_offsets: np.ndarray

    @property
    def n_gates(self) -> int:
        return len(self.kind)


def _execution_order(graph: GateGraph, kind: np.ndarray, slot_a: np.ndarray, slot_b: np.ndarray, schedule: str):
    """The gates in program order for ``schedule`` (see the module's docstring), and the new id of every old
    node id."""
    first = graph.first_gate
    output_of = np.full(graph.n_gates, graph.n_classes, dtype=np.int64)  # n_classes: no output
    output_class = np.repeat(np.arange(graph.n_classes), graph.class_sizes)
    is_gate = graph.outputs >= first
    np.minimum.at(output_of, graph.outputs[is_gate] - first, output_class[is_gate])
    new_id = np.arange(graph.n_nodes, dtype=np.int64)
    parts, next_id = [], first
    for gates in graph.level_batches:
        rows = np.arange(len(gates))
        fanins = graph.fanins[gates]
        a = new_id[fanins[rows, slot_a[gates]]]
        b = new_id[fanins[rows, slot_b[gates]]]
        ordered = gates[np.lexsort((b, a, kind[gates], output_of[gates]))]
        new_id[first + ordered] = next_id + rows
        next_id += len(gates)
        parts.append(ordered)
    order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if schedule == "class":
        rank = np.empty(graph.n_gates, dtype=np.int64)
        rank[order] = np.arange(graph.n_gates)
        order = np.lexsort((rank, kind, graph.levels, first_class_reaching(graph, output_of)))
    elif schedule == "depth":
        roots = order[output_of[order] < graph.n_classes]
        order = depth_first_order(graph, roots[np.argsort(output_of[roots], kind="stable")])
    new_id[first + order] = first + np.arange(len(order))
    return order, new_id


def first_class_reaching(graph: GateGraph, output_of: np.ndarray) -> np.ndarray:
    """int64[n_gates]: the lowest class whose outputs depend on each gate (``output_of``: each gate's own class
    as an output, ``n_classes`` for none; ``n_classes`` for gates no output needs), from the last level down."""
    cone = output_of.copy()
    for gates in reversed(graph.level_batches):
        operands = graph.fanins[gates] - graph.first_gate
        is_gate = operands >= 0
        np.minimum.at(cone, operands[is_gate], np.broadcast_to(cone[gates][:, None], operands.shape)[is_gate])
    return cone


def build_program(graph: GateGraph, schedule: str = "level") -> CProgram:
    """Order, classify, renumber and place the gates of ``graph`` for the C kernels (``schedule``: see
    :func:`_execution_order`). Each class is counted right after the gate that completes it (``class_done``),
    and its outputs' slots are free again after that."""
    if schedule not in SCHEDULES:
        raise ParameterError(f"schedule {schedule!r} is unknown; choose one of {', '.join(SCHEDULES)}", "schedule")
    first, n = graph.first_gate, graph.n_gates
    support, slot_a, slot_b, small = two_input_form(graph)
    kind = np.where(support <= 2, small, LUT_KIND).astype(np.uint8)
    order, new_id = _execution_order(graph, kind, slot_a, slot_b, schedule)
    fanins = new_id[graph.fanins[order]].reshape(n, graph.arity)
    kind, support, levels = kind[order], support[order], graph.levels[order]
    rows = np.arange(n)
    a = fanins[rows, slot_a[order]]
    b = fanins[rows, slot_b[order]]
    a = np.where(support == 0, 0, a)  # constants read node 0; wires and inverters read A twice
    b = np.where(support <= 1, a, b)
    lut = kind == LUT_KIND
    reads = np.full((n, max(graph.arity, 2)), -1, dtype=np.int64)  # what each gate's code reads
    reads[lut, : graph.arity] = fanins[lut]
    reads[~lut, 0], reads[~lut, 1] = a[~lut], b[~lut]
    outputs = new_id[graph.outputs]
    output_class = np.repeat(np.arange(graph.n_classes), graph.class_sizes)
    class_done = np.full(graph.n_classes, -1, dtype=np.int64)
    np.maximum.at(class_done, output_class, np.where(outputs >= first, outputs - first, -1))
    read_after = np.full(graph.n_nodes, -1, dtype=np.int64)  # counted after the gate completing their class
    np.maximum.at(read_after, outputs, class_done[output_class])
    slot, n_slots = plan_slots(first, reads, np.zeros(0, dtype=np.int64), read_after)
    counted = np.zeros(n, dtype=bool)  # a group ends where a class is complete: the table kernel counts it there
    counted[class_done[class_done >= 0]] = True
    new_group = np.r_[True, (kind[1:] != kind[:-1]) | (levels[1:] != levels[:-1]) | counted[:-1]] if n else counted
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.r_[starts, n])
    lut_rank = np.cumsum(lut) - lut  # index of each LUT gate among the LUT gates
    groups = np.stack([kind[starts], starts, counts, lut_rank[starts]], axis=1).astype(np.int32).reshape(-1, 4)
    return CProgram(
        n_inputs=graph.n_inputs,
        arity=graph.arity,
        n_slots=n_slots,
        kind=kind,
        dst=slot[first:].astype(np.int32),
        a=np.where(lut, 0, slot[a]).astype(np.int32),
        b=np.where(lut, 0, slot[b]).astype(np.int32),
        lut_in=slot[fanins[lut]].astype(np.int32).reshape(-1, graph.arity),
        lut_table=graph.tables[order][lut],
        groups=groups,
        outputs=slot[outputs].astype(np.int32),
        class_done=class_done,
        output_negated=graph.output_negated,
        class_offsets=graph.class_offsets,
    )


def plan_program(graph: GateGraph, shape: str) -> CProgram:
    """The program the C library of ``shape`` (``straight`` or ``table``) runs: of the schedules that shape can
    run (the table kernel's loops: ``level`` or ``class``; the straight code: ``level`` or ``depth``), the one
    that needs the fewest value vectors. Neither wins everywhere: depth-first keeps the inputs live longer
    (mnist-tiny needs more slots, mnist-small fewer), and class by class splits each level between the classes'
    cones, which lengthens the lives of the values below on deep random nets (6 x 8,000: more; mnist-small:
    fewer)."""
    if shape not in ("straight", "table"):
        raise ParameterError(f"shape {shape!r} is not a code shape; choose straight or table", "shape")
    schedules = ("level", "depth") if shape == "straight" else ("level", "class")
    programs = [build_program(graph, schedule) for schedule in schedules]
    return min(programs, key=lambda program: program.n_slots)  # the first of equals: level


def depth_first_order(graph: GateGraph, roots: np.ndarray) -> np.ndarray:
    """int64[n_gates]: gate indices (node id - ``graph.first_gate``) in post-order of a depth-first walk that
    starts at each of ``roots`` (gate indices, in order) and then at every gate no root reaches (in id order,
    so nothing is lost). Within a gate, the operand whose cone is deeper goes first (Sethi-Ullman: the
    shallower value waits for less time)."""
    first, n = graph.first_gate, graph.n_gates
    operands = graph.fanins - first  # < 0: a constant or an input, nothing to evaluate
    depth = graph.levels.astype(np.int64)
    by_depth = np.argsort(-depth[np.clip(operands, 0, None)] * (operands >= 0), axis=1, kind="stable")
    operands = np.take_along_axis(operands, by_depth, axis=1).tolist()
    placed = np.zeros(n, dtype=bool)
    order: list[int] = []
    for root in [*np.asarray(roots, dtype=np.int64).tolist(), *range(n)]:
        if placed[root]:
            continue
        stack = [(root, 0)]
        while stack:  # iterative post-order: (gate, next operand to visit)
            gate, k = stack.pop()
            row = operands[gate]
            while k < len(row) and (row[k] < 0 or placed[row[k]]):
                k += 1
            if k < len(row):
                stack.append((gate, k + 1))
                placed[row[k]] = True  # claimed now: a gate reached twice on one path is visited once
                stack.append((row[k], 0))
            else:
                placed[gate] = True
                order.append(gate)
    return np.asarray(order, dtype=np.int64)
