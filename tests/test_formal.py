"""Formal equivalence with ABC cec: simplification and LUT merging proven, the emitted Verilog proven equal to
its graph, a flipped gate or output caught."""

import shutil

import numpy as np
import pytest
from hypothesis import given, settings

from lgn.compiler import pipeline
from lgn.compiler.formal import find_abc, prove_graphs, prove_verilog
from lgn.compiler.random_graph import random_layered

from .strategies import gate_graphs

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
    assert prove_graphs(g, simple)
    assert prove_graphs(g, luts)


def test_a_flipped_gate_is_caught():
    g = random_layered(48, 4, 200, classes=10, seed=5)
    luts = pipeline.simplify(g, lut=6)
    tables = luts.tables.copy()
    tables[len(tables) // 2] ^= np.uint64(1)  # one minterm of one LUT
    mutated = luts.replace(tables=tables)
    assert not prove_graphs(g, mutated)
    flipped = luts.replace(output_negated=~luts.output_negated)
    assert not prove_graphs(g, flipped)


def test_cli_verify_formal(tmp_path, capsys):
    from lgn.cli import main
    from lgn.compiler import formats

    g = random_layered(30, 3, 60, classes=3, pass_through=0.5, seed=9)
    formats.save_npz(g, tmp_path / "g.npz")
    formats.save_npz(pipeline.simplify(g, lut=6), tmp_path / "l.npz")
    assert main(["verify", str(tmp_path / "g.npz"), "--against", str(tmp_path / "l.npz"), "--formal"]) == 0
    out = capsys.readouterr().out
    assert "formal (ABC cec), the second graph vs the first: equivalent" in out
    assert out.strip().endswith(" 0 mismatches")


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed (bash .ci/bootstrap installs it)")
@settings(max_examples=6, deadline=None)
@given(gate_graphs(min_inputs=1, max_inputs=6, max_gates=12, with_encoder=False))
def test_the_emitted_verilog_is_proven_equal_to_its_graph(graph):
    """The one meaning of --formal on the Verilog: yosys' reading of our Verilog against the graph itself,
    port by port (single-bit ports and constant outputs included); a flipped output is caught."""
    assert prove_verilog(graph)
    assert not prove_verilog(graph, graph.replace(output_negated=~graph.output_negated))


def test_cli_verify_verilog_formal(tmp_path, capsys):
    from lgn.cli import main
    from lgn.compiler import formats

    g = random_layered(12, 3, 30, classes=3, pass_through=0.5, seed=9)
    formats.save_npz(g, tmp_path / "g.npz")
    code = main(["verify", str(tmp_path / "g.npz"), "--backend", "verilog", "--formal", "--vectors", "50"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "formal (ABC cec), the Verilog's gate network vs the graph" in out and ": equivalent in" in out
