"""k-input LUTs as straight-line C (lgn.compiler.c_lut): the expansion's shortcuts (constant slices, equal
slices, equal multiplexers) against the evaluator on every input assignment, on every ISA this machine runs."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lgn.compiler import c_build, c_emit
from lgn.compiler.c_lut import MUX_OPS, best_orders, lut_statement, minimal_slices, operation_counts, permute_tables
from lgn.compiler.ir import FIRST_INPUT, GateGraph
from lgn.compiler.random_graph import random_layered
from lgn.compiler.truth import evaluate_table
from lgn.compiler.verify import test_vectors as make_vectors
from lgn.compiler.verify import verify_c

from .strategies import tiny_lut_graph

# Slices that take each shortcut: constants, a lone input, its negation, and ones that repeat.
SLICES = [0x00, 0xFF, 0xAA, 0x55, 0xF0, 0x96, 0xE8, 0x6A]


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LGN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lgn-cache"))


@st.composite
def structured_tables(draw, arity: int) -> int:
    """A table whose 8-bit slices come from a small alphabet (so equal slices and constants are common)."""
    slices = [draw(st.one_of(st.sampled_from(SLICES), st.integers(0, 255))) for _ in range(1 << (arity - 3))]
    return sum(s << (8 * j) for j, s in enumerate(slices))


@st.composite
def lut_graphs(draw) -> GateGraph:
    """One layer of k-input LUTs over k inputs (every assignment is a test vector), all gates outputs."""
    arity = draw(st.integers(3, 6))
    tables = draw(st.lists(structured_tables(arity), min_size=1, max_size=12))
    inputs = list(range(FIRST_INPUT, FIRST_INPUT + arity))
    orders = [draw(st.permutations(inputs)) for _ in tables]
    return GateGraph.build(
        n_inputs=arity,
        fanins=orders,
        tables=tables,
        outputs=[FIRST_INPUT + arity + g for g in range(len(tables))],
        output_negated=[False] * len(tables),
        class_offsets=[0, len(tables)],
    )


@settings(max_examples=12, deadline=None)
@given(lut_graphs())
def test_structured_tables_match_the_evaluator_everywhere(graph):
    bits, exhaustive = make_vectors(graph.n_inputs, 64)
    assert exhaustive
    for isa in c_build.host_isas():
        report = verify_c(graph, c_build.compile_c(graph, isa=isa, shape="straight", threads=1), bits, exhaustive)
        assert report.ok, f"{isa}: {report.summary()}"


def test_equal_slices_need_no_multiplexer():
    """Six inputs whose table is one three-input function repeated: one operation, the upper inputs unread."""
    text = lut_statement("y", [f"v[{i}]" for i in range(6)], int("96" * 8, 16), ternary=True)
    assert text == "{ const lgn_vec x0 = v[0]; const lgn_vec x1 = v[1]; const lgn_vec x2 = v[2]; " \
        "const lgn_vec t0 = LGN_T3(x2, x1, x0, 0x96); y = t0; }"  # fmt: skip


def test_a_lut_that_selects_an_input_reads_only_what_it_needs():
    """x3 ? x0 : 0 over four inputs: a constant slice and the projection x0, one multiplexer."""
    text = lut_statement("y", ["a", "b", "c", "d"], 0xAA00, ternary=False)
    expected = "{ const lgn_vec x0 = a; const lgn_vec x3 = d; const lgn_vec t0 = LGN_MUX(x3, x0, LGN_ZERO); y = t0; }"
    assert text == expected


@pytest.mark.parametrize("arity", [2, 7])
def test_arity_outside_three_to_six_is_refused(arity):
    with pytest.raises(ValueError, match="3 to 6 inputs"):
        lut_statement("y", ["a"] * arity, 0, ternary=False)


@pytest.mark.parametrize("isa", ["portable", "avx512"])
def test_straight_lut_code_golden(golden, isa):
    emitted = c_emit.emit_c(tiny_lut_graph(), isa=isa, shape="straight")
    golden(f"c_{isa}_straight_lut3_lgn_net.c", emitted.files["lgn_net.c"])


def test_auto_shape_counts_lut_nets_and_gate_nets_apart():
    """Straight-line code pays for 2-input gates up to STRAIGHT_LINE_MAX_GATES gates, for k-input LUTs (several
    operations each) up to STRAIGHT_LINE_MAX_LUTS."""
    width = 5000
    luts = random_layered(20, 1, width, arity=6, classes=10, seed=1)
    gates = random_layered(20, 1, width, arity=2, classes=10, seed=1)
    wider = random_layered(20, 1, 2 * width, arity=2, classes=10, seed=1)
    assert c_emit.STRAIGHT_LINE_MAX_LUTS < width <= c_emit.STRAIGHT_LINE_MAX_GATES < 2 * width
    assert c_emit.choose_shape(luts, "auto") == "table" and c_emit.choose_shape(gates, "auto") == "straight"
    assert c_emit.choose_shape(wider, "auto") == "table"


def test_straight_code_is_cut_into_functions():
    graph = random_layered(10, 1, 3 * c_emit.STRAIGHT_CHUNK_OPS, arity=2, classes=10, seed=2)
    text = c_emit.emit_c(graph, isa="portable", shape="straight").files["lgn_net.c"]
    assert "static void lgn_gates_2(" in text and "lgn_gates_2(v, o);" in text
    assert np.all([f"lgn_gates_{n}(v, o);" in text for n in range(3)])


def test_compile_lut_merges_before_emitting_and_verifies(tmp_path, capsys):
    """`lgn compile --lut 4`: a two-layer 2-input net becomes one LUT4 per output cone, straight-line code, and
    --verify checks it against the graph as given."""
    from lgn.cli import main
    from lgn.compiler import formats

    formats.save_npz(random_layered(16, 2, 40, classes=4, seed=3), tmp_path / "g.npz")
    argv = ["compile", str(tmp_path / "g.npz"), "--out", str(tmp_path / "lib"), "--lut", "4", "--isa", "native"]
    assert main([*argv, "--verify"]) == 0
    out = capsys.readouterr().out
    assert "straight shape" in out and ", 0 mismatches" in out
    assert "LGN_K 4" in (tmp_path / "lib" / "lgn_net.c").read_text()
    assert main([*argv[:4], "--target", "verilog", "--lut", "4"]) == 2
    assert "--lut merges gates for the C target" in capsys.readouterr().err


@settings(max_examples=60)
@given(st.integers(3, 6).flatmap(lambda k: st.tuples(st.just(k), structured_tables(k), st.permutations(range(k)))))
def test_permuted_tables_compute_the_same_function(case):
    arity, table, order = case
    permuted = int(permute_tables(np.array([table], dtype=np.uint64), tuple(order), arity)[0])
    for m in range(1 << arity):
        new_bits = [(m >> i) & 1 for i in range(arity)]
        old_bits = [0] * arity
        for i, source in enumerate(order):
            old_bits[source] = new_bits[i]
        assert evaluate_table(permuted, new_bits) == evaluate_table(table, old_bits)


def _tables_of_one_arity(arity: int):
    return st.tuples(st.just(arity), st.lists(structured_tables(arity), min_size=1, max_size=6))


@settings(max_examples=60)
@given(st.integers(3, 6).flatmap(_tables_of_one_arity))
def test_the_cost_model_counts_what_lut_statement_emits_and_the_search_never_loses(case):
    arity, tables = case
    tables = np.array(tables, dtype=np.uint64)
    inputs = [f"v[{k}]" for k in range(arity)]

    def emitted_ops(table) -> int:
        return lut_statement("y", inputs, int(table), ternary=True).count("const lgn_vec t")

    def emitted_ops_without_ternary(table) -> int:  # what each named temporary costs
        text = lut_statement("y", inputs, int(table), ternary=False)
        costs, expressions = minimal_slices()
        named = re.findall(r"const lgn_vec t\d+ = (.*?);", text)
        return sum(MUX_OPS if e.startswith("LGN_MUX") else int(costs[expressions.index(e)]) for e in named)

    assert operation_counts(tables, arity).tolist() == [emitted_ops(t) for t in tables.tolist()]
    assert operation_counts(tables, arity, False).tolist() == [emitted_ops_without_ternary(t) for t in tables.tolist()]
    for ternary in (True, False):
        orders, best = best_orders(tables, arity, ternary)
        assert (operation_counts(best, arity, ternary) <= operation_counts(tables, arity, ternary)).all()
        for order, table, permuted in zip(orders.tolist(), tables.tolist(), best.tolist()):
            assert int(permute_tables(np.array([table], dtype=np.uint64), tuple(order), arity)[0]) == permuted


def test_minimal_slices_compute_their_tables():
    """Every one of the 256 expressions, evaluated on the 8 assignments of (x0, x1, x2), gives its own table."""
    costs, expressions = minimal_slices()
    env = {"x0": 0xAA, "x1": 0xCC, "x2": 0xF0, "LGN_ZERO": 0, "LGN_ONES": 0xFF}
    for table, expression in enumerate(expressions):
        assert eval(expression, {}, env) & 0xFF == table, expression  # noqa: S307 (our own generated text)
        assert costs[table] == sum(expression.count(op) for op in "&|^~") - expression.count("& ~")
    assert costs.max() <= 5 and costs[[0x00, 0xFF, 0xAA, 0xCC, 0xF0]].tolist() == [0] * 5
