"""Memory planning (lgn.compiler.c_plan): the C kernels' programs, run slot by slot by a naive interpreter,
against the reference evaluator, on graphs built to stress slot reuse; and mutations that must be caught."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.compiler import c_build, c_program, evaluate
from lgn.compiler.c_plan import last_readers, plan_slots
from lgn.compiler.ir import FIRST_INPUT, GateGraph
from lgn.compiler.verify import test_vectors as make_vectors
from lgn.compiler.verify import verify_c

from .strategies import gate_graphs


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LGN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lgn-cache"))


def run_program(program: c_program.CProgram, bits: np.ndarray) -> np.ndarray:
    """The outputs of ``program`` (bool[n_samples, n_outputs]) for input bits, one gate at a time through its
    slots: a second reading of the program, independent of the C templates. Each class's outputs are read right
    after the gate that completes the class (before any gate for a class of inputs and constants), as both C
    shapes count them; after that their slots may hold other values."""
    v = np.zeros((program.n_slots, len(bits)), dtype=bool)
    v[1] = True
    v[FIRST_INPUT : FIRST_INPUT + program.n_inputs] = bits.T.astype(bool)
    got = np.zeros((len(bits), len(program.outputs)), dtype=bool)
    offsets = program.class_offsets.tolist()
    done = dict(enumerate(program.class_done.tolist()))

    def read_classes_done_at(step: int) -> None:
        for c in (c for c, at in done.items() if at == step):
            lo, hi = offsets[c], offsets[c + 1]
            got[:, lo:hi] = (v[program.outputs[lo:hi]] ^ program.output_negated[lo:hi, None]).T

    read_classes_done_at(-1)
    luts = iter(zip(program.lut_in.tolist(), program.lut_table.tolist()))
    gates = zip(program.kind.tolist(), program.dst.tolist(), program.a.tolist(), program.b.tolist())
    for step, (kind, dst, a, b) in enumerate(gates):
        if kind == c_program.LUT_KIND:
            ins, table = next(luts)
            index = sum(v[s].astype(np.int64) << k for k, s in enumerate(ins))
        else:
            index, table = v[a].astype(np.int64) + 2 * v[b], kind
        v[dst] = (np.uint64(table) >> index.astype(np.uint64)) & np.uint64(1)  # after every operand is read
        read_classes_done_at(step)
    return got


def _same_as_evaluator(graph: GateGraph, program: c_program.CProgram, n: int = 200) -> bool:
    bits, _ = make_vectors(graph.n_inputs, n, seed=1)
    return bool((run_program(program, bits) == evaluate.output_bits(graph, bits)).all())


@st.composite
def long_lived_graphs(draw) -> GateGraph:
    """Chains of gates where a few early nodes are read again and again, far apart (heavy fan-out, long lives),
    outputs that are also read by later gates, and dead gates."""
    n_inputs = draw(st.integers(1, 6))
    arity = draw(st.sampled_from([2, 3, 6]))
    n_gates = draw(st.integers(1, 60))
    first = FIRST_INPUT + n_inputs
    hubs = [draw(st.integers(0, first - 1)) for _ in range(draw(st.integers(1, 3)))]
    fanins = []
    for gate in range(n_gates):
        node = first + gate
        pick = st.one_of(st.sampled_from(hubs), st.integers(max(0, node - 3), node - 1), st.integers(0, node - 1))
        fanins.append([draw(pick) for _ in range(arity)])
        if gate % 7 == 3:
            hubs.append(node)  # a gate that is read from here on
    tables = [draw(st.integers(0, (1 << (1 << arity)) - 1)) for _ in range(n_gates)]
    n_nodes = first + n_gates
    outputs = [draw(st.integers(0, n_nodes - 1)) for _ in range(draw(st.integers(1, 6)))]
    return GateGraph.build(
        n_inputs=n_inputs,
        fanins=np.asarray(fanins, dtype=np.int64),
        tables=np.asarray(tables, dtype=np.uint64),
        outputs=outputs,
        output_negated=[draw(st.booleans()) for _ in outputs],
        class_offsets=[0, len(outputs)],
    )


@pytest.mark.parametrize("schedule", c_program.SCHEDULES)
@settings(max_examples=60)
@given(graph=st.one_of(long_lived_graphs(), gate_graphs(max_inputs=8, max_gates=40)))
def test_planned_programs_compute_what_the_evaluator_does(schedule, graph):
    program = c_program.build_program(graph, schedule)
    assert _same_as_evaluator(graph, program)
    assert program.n_slots <= graph.n_nodes


@pytest.mark.parametrize("schedule", c_program.SCHEDULES)
@settings(max_examples=60)
@given(graph=long_lived_graphs())
def test_plan_contract(schedule, graph):
    program = c_program.build_program(graph, schedule)
    dst = program.dst
    assert (dst >= FIRST_INPUT).all()  # the constants' slots are never written
    luts = program.kind == c_program.LUT_KIND
    reads = np.zeros((program.n_gates, max(program.arity, 2)), dtype=np.int64) - 1
    reads[luts, : program.arity] = program.lut_in
    reads[~luts, 0], reads[~luts, 1] = program.a[~luts], program.b[~luts]
    assert not (reads == dst[:, None]).any()  # no gate writes a slot it reads
    assert dst.max(initial=0) < program.n_slots and reads.max(initial=0) < program.n_slots


@pytest.mark.parametrize("isa", c_build.host_isas())
@pytest.mark.parametrize("shape", ["straight", "table"])
@settings(max_examples=10, deadline=None)
@given(graph=long_lived_graphs())
def test_c_kernels_with_reused_slots_match_the_evaluator(isa, shape, graph):
    bits, exhaustive = make_vectors(graph.n_inputs, 300)
    report = verify_c(graph, c_build.compile_c(graph, isa=isa, shape=shape, threads=1), bits, exhaustive)
    assert report.ok, report.summary()


@st.composite
def classed(draw, graphs) -> GateGraph:
    """A graph of ``graphs`` with its outputs split into 1-4 classes at random."""
    graph = draw(graphs)
    cuts = sorted(set(draw(st.lists(st.integers(1, graph.n_outputs - 1), max_size=3)))) if graph.n_outputs > 1 else []
    return graph.replace(class_offsets=[0, *cuts, graph.n_outputs])


@pytest.mark.parametrize("schedule", c_program.SCHEDULES)
@settings(max_examples=60)
@given(graph=st.one_of(classed(long_lived_graphs()), gate_graphs(max_inputs=8, max_gates=40)))
def test_programs_free_outputs_only_after_their_class_is_read(schedule, graph):
    program = c_program.build_program(graph, schedule)
    assert _same_as_evaluator(graph, program)
    assert set(program.groups[:, 1].tolist()) >= {int(d) + 1 for d in program.class_done if 0 <= d < graph.n_gates - 1}


def test_counting_each_class_after_its_cone_shrinks_the_live_set():
    """mnist-small (6,000 + 5,000 two-input gates, 5,000 outputs): the level order keeps most of the second layer
    live until the last class is done; class by class (the table kernel) and depth-first (the straight code)
    need less than half the value vectors beyond the inputs (1,426 of 2,946)."""
    from pathlib import Path

    from lgn.compiler import formats

    graph = formats.load_npz(Path(__file__).resolve().parent.parent / "models" / "mnist-small.npz")
    level, by_class, depth = (c_program.build_program(graph, s).n_slots - graph.first_gate for s in c_program.SCHEDULES)
    assert by_class < level / 2 and depth < level / 2


def test_reads_between_gates_must_be_planned_for(monkeypatch):
    """Mutation: a planner that ignores ``read_after`` hands an output's slot to a later gate before its class
    is read, and the by-class interpreter sees a wrong output."""
    from lgn.compiler import c_plan

    graph = GateGraph.build(  # one class: node 4 (no gate reads it) and node 6, which completes the class
        n_inputs=2,
        fanins=np.array([[2, 3], [2, 3], [5, 3]]),
        tables=np.array([0b0110, 0b1000, 0b1110], dtype=np.uint64),  # xor, and, or
        outputs=[4, 6],
    )
    bits, _ = make_vectors(graph.n_inputs, 16, seed=1)
    good = c_program.build_program(graph)
    assert (run_program(good, bits) == evaluate.output_bits(graph, bits)).all()

    def ignoring(n_fixed, reads, kept, read_after=None):
        return c_plan.plan_slots(n_fixed, reads, kept)

    monkeypatch.setattr(c_program, "plan_slots", ignoring)
    bad = c_program.build_program(graph)
    assert not (run_program(bad, bits) == evaluate.output_bits(graph, bits)).all()


def test_a_chain_needs_few_slots():
    """A 500-gate chain over 4 inputs lives in a handful of slots; the node count would be 506."""
    n = 500
    fanins = np.stack([np.arange(n) + FIRST_INPUT + 3, np.full(n, FIRST_INPUT)], axis=1)
    last = FIRST_INPUT + 4 + n - 1
    graph = GateGraph.build(n_inputs=4, fanins=fanins, tables=np.full(n, 0b0110, dtype=np.uint64),
                            outputs=[last], output_negated=[False], class_offsets=[0, 1])  # fmt: skip
    program = c_program.build_program(graph)
    assert program.n_slots <= FIRST_INPUT + 4 + 2
    assert _same_as_evaluator(graph, program)


def test_last_readers_and_unread_inputs():
    reads = np.array([[2, 3], [2, 5], [-1, -1]])
    assert last_readers(7, reads).tolist() == [-1, -1, 1, 0, -1, 1, -1]
    slot, n_slots = plan_slots(FIRST_INPUT + 3, reads, kept=np.array([7]))  # input 4 is never read
    assert slot[5] == 4  # the first gate takes the unread input's slot
    assert n_slots <= FIRST_INPUT + 3 + 1


def test_a_slot_reused_too_early_is_caught():
    """Mutation: g1 = x0 | x1 written into the slot of g0 = x0 & x1 while g2 = g0 ^ g1 still needs g0; g2 then
    reads g1 twice and is 0 where x0 != x1. The interpreter must see it, the true plan must not."""
    x0, x1 = FIRST_INPUT, FIRST_INPUT + 1
    g0, g1 = FIRST_INPUT + 2, FIRST_INPUT + 3
    graph = GateGraph.build(n_inputs=2, fanins=np.array([[x0, x1], [x0, x1], [g0, g1]]),
                            tables=np.array([0b1000, 0b1110, 0b0110], dtype=np.uint64),
                            outputs=[g0 + 2], output_negated=[False], class_offsets=[0, 1])  # fmt: skip
    program = c_program.build_program(graph)
    assert _same_as_evaluator(graph, program)
    dst = program.dst.copy()
    xor_gate = int(np.flatnonzero(program.kind == 0b0110)[0])
    first, second = int(program.a[xor_gate]), int(program.b[xor_gate])  # the AND's and the OR's slots
    dst[dst == second] = first  # one of them overwrites the other's value, still live
    assert not _same_as_evaluator(graph, dataclasses.replace(program, dst=dst))
