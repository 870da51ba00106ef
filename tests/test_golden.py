"""Golden files for every emitted text: the graph text form, the C library (each ISA and code shape, bits and
raw features) and the Verilog (combinational, pipelined, raw features). ``pytest --update-golden`` rewrites
them after an intended change; review the diff before committing it."""

import pytest

from conftest import check_golden
from lgn.compiler import c_emit, formats, verilog_emit

from .strategies import tiny_encoder_graph, tiny_graph, tiny_lut_graph
from .test_formats import golden_graph


def test_text_form(golden):
    text = formats.to_text(golden_graph())
    golden("tiny_graph.txt", text)
    assert formats.from_text(text).same_as(golden_graph())


@pytest.mark.parametrize(
    "isa, shape, raw",
    [
        ("portable", "straight", False),
        ("avx2", "table", False),
        ("avx512", "table", False),
        ("avx2", "straight", True),  # raw uint8 features: the direct comparison path
        ("portable", "table", True),
    ],
)
def test_c_library(golden, isa, shape, raw):
    graph = tiny_encoder_graph() if raw else tiny_graph()
    emitted = c_emit.emit_c(graph, isa=isa, shape=shape)
    tag = f"c_{isa}_{shape}{'_raw' if raw else ''}"
    for name, text in emitted.files.items():
        golden(f"{tag}_{name}", text)
    assert c_emit.emit_c(graph, isa=isa, shape=shape) == emitted  # deterministic


@pytest.mark.parametrize("pipeline, raw", [(None, False), (2, False), (None, True), (3, True)])
def test_verilog(golden, pipeline, raw):
    graph = tiny_encoder_graph() if raw else tiny_graph()
    emitted = verilog_emit.emit_verilog(graph, pipeline=pipeline, raw_input=raw)
    golden(f"verilog_tiny_{pipeline or 'comb'}{'_raw' if raw else ''}.v", emitted["lgn_net.v"])
    assert verilog_emit.emit_verilog(graph, pipeline=pipeline, raw_input=raw) == emitted


def test_a_changed_emitter_fails_the_golden_check():
    """The check is not vacuous: one changed character is caught (never in update mode, which would write it)."""
    text = formats.to_text(golden_graph())
    with pytest.raises(AssertionError, match="differs"):
        check_golden("tiny_graph.txt", text.replace("inputs 3", "inputs 4"))


def test_verilog_k_input_luts(golden):
    """k-input LUTs: one `always @*` block per gate that reads a signal, a wire for one that reads only
    constants."""
    emitted = verilog_emit.emit_verilog(tiny_lut_graph())["lgn_net.v"]
    golden("verilog_tiny_lut3.v", emitted)
    assert "always @* n5 = T5[" in emitted and "assign n6 = T6[" in emitted
