"""The straight code's in-line GroupSum (compiler/c_count.py): the adder plan sums exactly, each ternary
immediate is the function it stands for, and compiled class scores equal the evaluator's on classes far
wider than the hypothesis graphs reach, with negated, duplicated, constant and input outputs."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.compiler import c_build, c_count
from lgn.compiler.random_graph import random_layered
from lgn.compiler.verify import test_vectors as make_vectors
from lgn.compiler.verify import verify_c


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LGN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lgn-cache"))


def plan_sum(values: list[int]) -> int:
    """The sum the plan computes for one-bit ``values``, step by step as the emitted code does."""
    steps, bits = c_count.adder_plan(len(values))
    held = dict(enumerate(values))
    for kind, operands, sum_id, carry_id in steps:
        total = sum(held[i] for i in operands)
        assert len(operands) == (3 if kind == "fa" else 2)
        held[sum_id], held[carry_id] = total & 1, total >> 1
    return sum(held[bit] << k for k, bit in enumerate(bits) if bit is not None)


def test_plan_sums_every_assignment_up_to_ten_leaves():
    for n in range(11):
        for values in itertools.product((0, 1), repeat=n):
            assert plan_sum(list(values)) == sum(values), values


@settings(max_examples=60)
@given(st.lists(st.integers(0, 1), min_size=11, max_size=600))
def test_plan_sums_wide_classes(values):
    assert plan_sum(values) == sum(values)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 100, 257])
def test_plan_shape(n):
    steps, bits = c_count.adder_plan(n)
    assert len(bits) == max(1, n.bit_length())
    full_adders = sum(kind == "fa" for kind, *_ in steps)
    assert full_adders <= n  # each full adder removes one bit
    assert len(steps) - full_adders <= len(bits)  # half adders only at the end, one per column at most


def test_every_immediate_is_its_function():
    functions = {  # the adders' outputs over (a, b, c), written out independently of c_count's tables (a half
        # adder ignores c)
        "fa": (lambda a, b, c: a ^ b ^ c, lambda a, b, c: (a & b) | (a & c) | (b & c)),
        "ha": (lambda a, b, c: a ^ b, lambda a, b, c: a & b),
    }
    for kind, tables in c_count.ADDERS.items():
        for table, function in zip(tables, functions[kind]):
            for negated in itertools.product((False, True), repeat=3):
                imm = c_count.immediate(table, negated)
                for a, b, c in itertools.product((0, 1), repeat=3):
                    lane = (imm >> (4 * a + 2 * b + c)) & 1  # LGN_T3(x2=a, x1=b, x0=c, imm)
                    assert lane == function(a ^ negated[0], b ^ negated[1], c ^ negated[2]), (kind, negated)


def wide_class_graph():
    """Three classes of 120-260 outputs: LUT outputs, some negated, some repeated, and inputs and constants."""
    graph = random_layered(90, 2, 300, arity=6, classes=3, pass_through=0.0, seed=7)
    rng = np.random.default_rng(7)
    outputs = graph.outputs.copy()
    outputs[rng.choice(len(outputs), 20, replace=False)] = rng.integers(2, graph.first_gate, 20)  # inputs
    outputs[:3] = [0, 1, 1]  # constants
    outputs[-10:] = outputs[-20:-10]  # repeats
    negated = rng.random(len(outputs)) < 0.3
    return graph.replace(outputs=outputs, output_negated=negated, class_offsets=[0, 120, 180, len(outputs)])


@pytest.mark.parametrize("isa", c_build.host_isas())
def test_wide_classes_match_the_evaluator(isa):
    graph = wide_class_graph()
    bits, _ = make_vectors(graph.n_inputs, 1100, seed=1)
    report = verify_c(graph, c_build.compile_c(graph, isa=isa, shape="straight", threads=1), bits)
    assert report.ok, report.summary()


@pytest.mark.parametrize("isa", c_build.host_isas())
def test_a_wrong_adder_is_caught(monkeypatch, isa):
    """Mutation: a plan whose first adder swaps its sum and carry must fail verification."""
    plan = c_count.adder_plan

    def swapped(n):
        steps, bits = plan(n)
        if steps:
            kind, operands, sum_id, carry_id = steps[0]
            steps[0] = (kind, operands, carry_id, sum_id)
        return steps, bits

    monkeypatch.setattr(c_count, "adder_plan", swapped)
    graph = wide_class_graph()
    bits, _ = make_vectors(graph.n_inputs, 600, seed=2)
    report = verify_c(graph, c_build.compile_c(graph, isa=isa, shape="straight", threads=1), bits)
    assert not report.ok
