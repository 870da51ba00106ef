"""Formal equivalence with ABC cec: simplification and LUT merging proven, a flipped gate caught."""

import numpy as np
import pytest

from compiler import pipeline
from compiler.formal import abc_equivalent, find_abc
from compiler.random_graph import random_layered

pytestmark = [
    pytest.mark.hdl,
    pytest.mark.skipif(find_abc() is None, reason="berkeley-abc not installed (bash .ci/bootstrap installs it)"),
]


@pytest.mark.parametrize("arity", [2, 3])
def test_simplify_and_lut_merge_are_proven_equivalent(arity):
    g = random_layered(48, 6, 300, arity=arity, classes=10, pass_through=0.5, seed=arity)
    simple = pipeline.simplify(g)
    luts = pipeline.simplify(g, lut=6)
    assert simple.n_gates < g.n_gates and luts.n_gates < simple.n_gates
    assert abc_equivalent(g, simple)
    assert abc_equivalent(g, luts)


def test_a_flipped_gate_is_caught():
    g = random_layered(48, 4, 200, classes=10, seed=5)
    luts = pipeline.simplify(g, lut=6)
    tables = luts.tables.copy()
    tables[len(tables) // 2] ^= np.uint64(1)  # one minterm of one LUT
    mutated = luts.replace(tables=tables)
    assert not abc_equivalent(g, mutated)
    flipped = luts.replace(output_negated=~luts.output_negated)
    assert not abc_equivalent(g, flipped)


def test_cli_verify_formal(tmp_path, capsys):
    from compiler import formats
    from compiler.cli import main

    g = random_layered(30, 3, 60, classes=3, pass_through=0.5, seed=9)
    formats.save_npz(g, tmp_path / "g.npz")
    formats.save_npz(pipeline.simplify(g, lut=6), tmp_path / "l.npz")
    assert main(["verify", str(tmp_path / "g.npz"), "--against", str(tmp_path / "l.npz"), "--formal"]) == 0
    out = capsys.readouterr().out
    assert "formal (ABC cec): equivalent" in out and out.strip().endswith(" 0 mismatches")
