"""Verilog backend, the raw-feature port: the encoder's comparators for each format of raw features
(:class:`~.raw_input.RawFormat`: ``u8`` bytes compared unsigned, ``int:W`` and ``fixed:W.F`` words compared
signed against ``floor(threshold * 2^F)``, a threshold beyond the format's range a constant bit), the encoder
alone as a module (a part of its own in synthesis reports), and what the templates say about the port."""

from __future__ import annotations

from .errors import LgnError
from .ir import Encoder, GateGraph
from .names import check_module_name
from .raw_input import U8, RawFormat, plain_number


def _encoder(graph: GateGraph) -> Encoder:
    if graph.encoder is None:
        raise LgnError("raw-feature input needs a graph with encoder thresholds")
    return graph.encoder


def encoder_assigns(graph: GateGraph, fmt: RawFormat = U8) -> list[str]:
    """One comparator per input bit: x[i] = word > floor(threshold * 2^frac) (exact for every value of the
    format ``fmt``); a threshold outside the format's range is a constant bit. Signed words compare signed."""
    e = _encoder(graph)
    w = fmt.width
    lines = []
    for i, (feature, t, real) in enumerate(zip(e.feature.tolist(), fmt.threshold_words(e.threshold).tolist(),
                                               e.threshold.tolist())):  # fmt: skip
        if t < fmt.lo:
            rhs = "1'b1"
        elif t >= fmt.hi:
            rhs = "1'b0"
        elif not fmt.signed:
            rhs = f"features[{w * feature} +: {w}] > {w}'d{t}"
        else:
            rhs = f"$signed(features[{w * feature} +: {w}]) > {_signed_literal(t, w)}"
        comment = f"  // feature {feature} > {plain_number(real)}" if fmt != U8 else ""
        lines.append(f"    assign x[{i}] = {rhs};{comment}")
    return lines


def _signed_literal(value: int, width: int) -> str:
    """A signed ``width``-bit constant: decimal, or for the most negative word its bit pattern (its magnitude
    does not fit the width)."""
    if value == -(1 << (width - 1)):
        return f"{width}'sh{1 << (width - 1):x}"
    return f"-{width}'sd{-value}" if value < 0 else f"{width}'sd{value}"


def _kind(fmt: RawFormat | None) -> str:
    """The raw words' kind, briefly, for a port comment."""
    if fmt is None or not fmt.signed:
        return "unsigned"
    return "signed" if fmt.frac == 0 else f"signed, value = word / {1 << fmt.frac}"


def port_context(fmt: RawFormat | None) -> dict:
    """What the templates say about the raw-feature port."""
    return dict(
        raw_input=fmt is not None,
        raw_width=fmt.width if fmt is not None else 8,
        raw_name=fmt.name if fmt is not None else "",
        raw_frac=fmt.frac if fmt is not None else 0,
        raw_kind=_kind(fmt),
        raw_range=f"unsigned {U8.lo}..{U8.hi}" if fmt is None else fmt.describe(),
    )


def emit_encoder(graph: GateGraph, module: str, fmt: RawFormat = U8) -> str:
    """The encoder alone (raw features of format ``fmt`` in, input bits out), for per-part synthesis reports."""
    check_module_name(module)
    e = _encoder(graph)
    width = fmt.width * e.n_features
    lines = [f"module {module} (input wire [{width - 1}:0] features, output wire [{graph.n_inputs - 1}:0] x);"]
    lines += encoder_assigns(graph, fmt)
    return "\n".join(lines + ["endmodule", ""])
