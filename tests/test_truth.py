"""Truth-table algebra against the bit-by-bit definition."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lgn.compiler import truth


def brute(table: int, arity: int, f) -> int:
    """The table of g(x) = table evaluated at f(x), built one assignment at a time."""
    out = 0
    for m in range(1 << arity):
        x = [(m >> k) & 1 for k in range(arity)]
        out |= truth.evaluate_table(table, f(x)) << m
    return out


tables_and_arity = st.integers(1, 6).flatmap(lambda k: st.tuples(st.integers(0, int(truth.table_mask(k))), st.just(k)))


@given(tables_and_arity, st.data())
def test_cofactor_negate_swap_merge_match_definition(ta, data):
    table, k = ta
    t = np.array([table], dtype=np.uint64)
    i = data.draw(st.integers(0, k - 1))
    for value in (0, 1):
        expect = brute(table, k, lambda x, v=value: x[:i] + [v] + x[i + 1 :])
        assert int(truth.cofactor(t, i, value, k)[0]) == expect
    assert int(truth.negate_var(t, i, k)[0]) == brute(table, k, lambda x: x[:i] + [1 - x[i]] + x[i + 1 :])
    assert bool(truth.depends_on(t, i, k)[0]) == (
        brute(table, k, lambda x: x[:i] + [0] + x[i + 1 :]) != brute(table, k, lambda x: x[:i] + [1] + x[i + 1 :])
    )
    if k >= 2:
        j = data.draw(st.integers(0, k - 1).filter(lambda v: v != i))

        def swapped(x):
            y = list(x)
            y[i], y[j] = x[j], x[i]
            return y

        assert int(truth.swap_vars(t, i, j, k)[0]) == brute(table, k, swapped)

        def merged(x):
            y = list(x)
            y[j] = x[i]
            return y

        assert int(truth.merge_vars(t, i, j, k)[0]) == brute(table, k, merged)


def test_projection_is_the_variable():
    for k in range(1, 7):
        for i in range(k):
            p = int(truth.projection(i, k))
            for m in range(1 << k):
                assert (p >> m) & 1 == (m >> i) & 1


# The 16 difflogic gates as functions of (a, b), fan-in 0 = a.
DIFFLOGIC = {
    0: lambda a, b: 0, 1: lambda a, b: a & b, 2: lambda a, b: a & (1 - b), 3: lambda a, b: a,
    4: lambda a, b: (1 - a) & b, 5: lambda a, b: b, 6: lambda a, b: a ^ b, 7: lambda a, b: a | b,
    8: lambda a, b: 1 - (a | b), 9: lambda a, b: 1 - (a ^ b), 10: lambda a, b: 1 - b,
    11: lambda a, b: a | (1 - b), 12: lambda a, b: 1 - a, 13: lambda a, b: (1 - a) | b,
    14: lambda a, b: 1 - (a & b), 15: lambda a, b: 1,
}  # fmt: skip


@pytest.mark.parametrize("gate_id", range(16))
def test_difflogic_table(gate_id):
    table = truth.difflogic_id_to_table(gate_id)
    for a, b in itertools.product((0, 1), repeat=2):
        assert truth.evaluate_table(table, [a, b]) == DIFFLOGIC[gate_id](a, b)
    assert truth.table_to_difflogic_id(table) == gate_id
    # Negation of gate i is gate 15 - i.
    assert truth.difflogic_id_to_table(15 - gate_id) == (~table & 0xF)
    assert int(truth.DIFFLOGIC_TABLES[gate_id]) == table


def test_difflogic_known_values():
    assert truth.difflogic_id_to_table(1) == 0x8  # AND: only f(1,1)
    assert truth.difflogic_id_to_table(3) == 0xA  # A: the projection of fan-in 0
    assert truth.difflogic_id_to_table(5) == 0xC  # B
    assert truth.difflogic_id_to_table(6) == 0x6  # XOR
    assert truth.gate_name(0x8, 2) == "AND"


@pytest.mark.parametrize("bad", [-1, 16])
def test_difflogic_rejects_bad_ids(bad):
    with pytest.raises(ValueError):
        truth.difflogic_id_to_table(bad)
    with pytest.raises(ValueError):
        truth.table_to_difflogic_id(bad)
