"""Raw features in hardware: the formats a design takes them in (:class:`RawFormat`: ``u8`` bytes, ``int:W``
signed integers, ``fixed:W.F`` signed fixed point), the words of thresholds and of values in a format, and what
``--input`` means for a model (:func:`resolve_input`).

Thresholds are real numbers; a format's comparison ``word > floor(threshold * 2^F)`` is exact for every value
the format holds, and a threshold beyond its range is a constant bit, exact too. What must never happen is a
value clipped or rounded into a format: :meth:`RawFormat.words` refuses it, and ``--input u8`` refuses a model
whose thresholds say its features are not bytes, naming the narrowest format that holds them.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from .errors import InputError, LgnError, ParameterError
from .ir import Encoder, GateGraph

U8_MAX = 255


def takes_bytes(graph: GateGraph) -> bool:
    """Whether hardware takes this graph's raw features as bytes by default: an encoder over unnamed features
    (images: pixels 0..255). A model of named table columns takes its input bits, encoded by the caller, since
    its features are real numbers."""
    return graph.encoder is not None and not (graph.names is not None and graph.names.features)


MAX_RAW_WIDTH = 32  # bits of one raw feature in hardware
MAX_SUGGESTED_FRAC = 16  # fractional bits tried when looking for a format that holds every threshold exactly


@dataclasses.dataclass(frozen=True)
class RawFormat:
    """How hardware takes each raw feature: a word of ``width`` bits, two's complement when ``signed``, whose
    last ``frac`` bits are fractional: word w stands for the value w / 2^frac. Spelled ``u8`` (the unsigned
    byte), ``int:W`` (signed) and ``fixed:W.F`` (signed, F fractional bits); see :func:`parse_raw_format`.

    A threshold bit ``value > t`` is ``word > floor(t * 2^frac)`` for every value the format holds, exactly;
    a threshold below the format's range gives a constant 1 and one at or above its top a constant 0, which
    is exact too, since no value of the format lies beyond them. Values are never clipped: :meth:`words`
    refuses one the format does not hold."""

    width: int
    frac: int = 0
    signed: bool = True

    @property
    def name(self) -> str:
        if not self.signed:
            return f"u{self.width}"
        return f"int:{self.width}" if self.frac == 0 else f"fixed:{self.width}.{self.frac}"

    @property
    def lo(self) -> int:
        """The smallest word."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        """The largest word."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def describe(self) -> str:
        """The format in words, with its range of values."""
        if not self.signed:
            return f"unsigned {self.lo}..{self.hi}"
        if self.frac == 0:
            return f"signed two's complement {self.lo}..{self.hi}"
        scale = 1 << self.frac
        return (
            f"signed fixed point, {self.frac} fractional bits: the value is the word / {scale}, "
            f"{plain_number(self.lo / scale)}..{plain_number(self.hi / scale)} in steps of {plain_number(1 / scale)}"
        )

    def threshold_words(self, thresholds) -> np.ndarray:
        """``int64``: the word w of each threshold t with ``value > t`` exactly when ``word > w``, that is
        floor(t * 2^frac), held to ``lo - 1`` (the bit is always 1) .. ``hi`` (never 1)."""
        scaled = np.floor(np.asarray(thresholds, dtype=np.float64) * float(1 << self.frac))
        return np.clip(scaled, self.lo - 1, self.hi).astype(np.int64)

    def words(self, values, what: str = "raw feature") -> np.ndarray:
        """``int64``: the words of raw feature ``values`` (any shape; rows are samples, columns features).
        Raises :class:`InputError` naming the first value the format does not hold: not a number, not finite,
        not a multiple of 2^-frac, or outside the range; nothing is clipped or rounded."""
        x = np.asarray(values)
        if x.dtype == bool:
            x = x.astype(np.int64)
        if x.dtype.kind not in "iuf":
            raise InputError(f"{what} values must be numbers, got dtype {x.dtype}")
        scale = 1 << self.frac
        if x.dtype.kind == "f":
            scaled = x.astype(np.float64) * float(scale)
            bad = ~np.isfinite(scaled) | (scaled != np.floor(scaled)) | (scaled < self.lo) | (scaled > self.hi)
            if bad.any():
                self._refuse(x, bad, what)
            return scaled.astype(np.int64)
        low, high = -((-self.lo) // scale), self.hi // scale  # the whole numbers the format holds
        bad = (x < low) | (x > high)
        if bad.any():
            self._refuse(x, bad, what)
        return x.astype(np.int64) * scale

    def _refuse(self, x: np.ndarray, bad: np.ndarray, what: str) -> None:
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = x[where].item()
        place = f"row {where[0]}, feature {where[1]}" if len(where) == 2 else f"index {', '.join(map(str, where))}"
        if isinstance(value, float) and not np.isfinite(value):
            why = "is not a finite number"
        elif self.lo <= value * (1 << self.frac) <= self.hi:
            why = f"is not a multiple of {plain_number(1 / (1 << self.frac))}"
        else:
            why = "is out of range"
        raise InputError(
            f"{what} {plain_number(value)} ({place}) {why}: input {self.name} holds {self.describe()}, and nothing "
            "is clipped or rounded"
        )


U8 = RawFormat(8, 0, signed=False)


def plain_number(value) -> str:
    """A number as people write it: 178425, -3.5, 0.0625."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def parse_raw_format(spec: str) -> RawFormat:
    """``u8``, ``int:W`` (signed W-bit integers) or ``fixed:W.F`` (signed W-bit fixed point with F fractional
    bits), W in 2..MAX_RAW_WIDTH and F in 0..W-1; a :class:`ParameterError` (parameter ``input``) otherwise."""
    if spec == "u8":
        return U8
    match = re.fullmatch(r"int:(\d+)|fixed:(\d+)\.(\d+)", spec)
    if match is None:
        raise ParameterError(
            f"input {spec!r} is not a raw-feature format: u8, int:W (signed W-bit integers) or fixed:W.F "
            "(signed W bits, F of them fractional)",
            "input",
        )
    width = int(match[1] or match[2])
    frac = int(match[3] or 0)
    if not 2 <= width <= MAX_RAW_WIDTH or frac >= width:
        raise ParameterError(
            f"input {spec}: the width must be 2..{MAX_RAW_WIDTH} bits and the fractional bits fewer than it",
            "input",
        )
    return RawFormat(width, frac)


def narrowest_format(encoder: Encoder) -> tuple[RawFormat, bool]:
    """(the narrowest signed format in which every threshold is a word that both a value at it and one above
    it are, so that no threshold bit is a constant; whether every threshold is a multiple of 2^-frac in it,
    that is held exactly). Fractional bits: the fewest (up to MAX_SUGGESTED_FRAC) that hold every threshold
    exactly; if none do, 0 (an integer format: exact for whole-number features)."""
    t = np.asarray(encoder.threshold, dtype=np.float64)
    frac, exact = 0, True
    for f in range(MAX_SUGGESTED_FRAC + 1):
        scaled = t * float(1 << f)
        if np.all(scaled == np.floor(scaled)):
            frac = f
            break
    else:
        exact = False
    words = np.floor(t * float(1 << frac))
    low, high = (float(words.min()), float(words.max()) + 1) if len(words) else (0.0, 1.0)
    width = max(2, frac + 1)
    while width < MAX_RAW_WIDTH and not (-(2.0 ** (width - 1)) <= low and high <= 2.0 ** (width - 1) - 1):
        width += 1
    return RawFormat(width, frac), exact


def byte_misfit(graph: GateGraph) -> str | None:
    """Why ``graph``'s raw features cannot be bytes (``u8``), or None when every threshold lies in 0..255: a
    threshold outside it (the one of largest magnitude is named) says the features take values no byte holds."""
    e = graph.encoder
    if e is None:
        return None
    t = e.threshold
    outside = np.flatnonzero((t < 0) | (t > U8_MAX))
    if not len(outside):
        return None
    worst = int(outside[np.argmax(np.abs(t[outside]))])
    feature = int(e.feature[worst])
    named = graph.names.features[feature] if graph.names is not None and graph.names.features else ""
    where = f"feature {feature}" + (f" ({named})" if named else "")
    return f"threshold {plain_number(float(t[worst]))} of {where} is outside 0..255"


def suggested_input(encoder: Encoder) -> str:
    """``--input FORMAT (why)``: the narrowest format for ``encoder``'s thresholds (:func:`narrowest_format`)."""
    fmt, exact = narrowest_format(encoder)
    why = (
        "the narrowest that holds every threshold exactly"
        if exact
        else f"the thresholds are not multiples of 2^-{MAX_SUGGESTED_FRAC}: give F your data's fractional bits"
    )
    return f"--input {fmt.name} ({why}; widen it to hold your data's range)"


def check_bytes(graph: GateGraph) -> None:
    """Raise a one-line :class:`ParameterError` (parameter ``input``) when ``graph``'s features cannot be bytes
    (:func:`byte_misfit`), naming the format to use instead: a byte interface would take them as 0..255, which
    is not what they are."""
    why = byte_misfit(graph)
    if why is not None:
        assert graph.encoder is not None
        raise ParameterError(
            f"input u8: {why}, so the features are not bytes: use {suggested_input(graph.encoder)}", "input"
        )


def raw_format(graph: GateGraph, raw_input: bool | RawFormat | None) -> RawFormat | None:
    """The raw-feature format of hardware for ``graph``, or None for the encoded input bits. ``raw_input``:
    a :class:`RawFormat`; True (bytes: ``U8``); False (bits); None (bytes for an image model, :func:`takes_bytes`,
    else bits). A format needs the graph's encoder."""
    if raw_input is None:
        raw_input = takes_bytes(graph)
    fmt = U8 if raw_input is True else raw_input or None
    if fmt is not None and graph.encoder is None:
        raise LgnError("raw-feature input needs a graph with encoder thresholds")
    return fmt


def encoder_format(graph: GateGraph, raw_input: bool | RawFormat | None = None) -> RawFormat:
    """The raw-feature format of ``graph``'s encoder reported as a part of its own (``lgn synth``): that of the
    design (``raw_input`` as :func:`raw_format`) when it takes raw features; else bytes when every threshold is
    in 0..255, else the narrowest format that holds them."""
    fmt = raw_format(graph, raw_input)
    if fmt is not None:
        return fmt
    if graph.encoder is None:
        raise LgnError("the encoder part needs a graph with encoder thresholds")
    return U8 if byte_misfit(graph) is None else narrowest_format(graph.encoder)[0]


def resolve_input(graph: GateGraph, spec: str) -> RawFormat | None:
    """What ``--input spec`` means for ``graph``: None (the encoded bits) or a :class:`RawFormat`. ``auto``:
    bits for a table model (its features are named), else bytes when every threshold is in 0..255, else the
    narrowest format that holds them (:func:`narrowest_format`). ``u8`` on a model whose thresholds are not
    all in 0..255 is refused (:func:`check_bytes`)."""
    if spec == "bits":
        return None
    if spec == "auto":
        if graph.encoder is None or not takes_bytes(graph):
            return None
        return U8 if byte_misfit(graph) is None else narrowest_format(graph.encoder)[0]
    fmt = parse_raw_format(spec)
    if graph.encoder is None:
        raise ParameterError(f"input {spec} takes raw features: this graph has no encoder thresholds", "input")
    if fmt == U8:
        check_bytes(graph)
    return fmt
