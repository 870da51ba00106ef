"""Names: what a graph's numbers mean to people (:class:`Names`, carried by the IR, printed and emitted, never
changing what a graph computes), and the names lgn writes into emitted code (a C prefix, a Verilog module),
refused when a compiler or simulator would reject them or when they would overwrite another emitted file."""

from __future__ import annotations

import dataclasses
import json
import math
import re

from .errors import GraphError, ParameterError

MAX_NAME_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclasses.dataclass(frozen=True)
class Names:
    """The names of a graph's raw features and classes, from the data it was trained on.

    ``features``: one name per raw feature of the encoder, in order: the numeric columns, then one feature
    per (categorical column, category) pair, named ``column=category``. ``classes``: one per class, the
    original label values as text. ``label``: the label column's name. ``categorical``: the categorical
    columns with their categories, in the order of their one-hot features. ``ignored``: columns the training
    data had and the model does not read (dropped), so that predicting from the same kind of file accepts
    them. ``fill``: the value a missing numeric cell takes, one per numeric column (empty: a missing cell is an
    error). ``most_frequent``: one per categorical column, its most frequent category in the training data
    (ties: the first in sorted order), what ``lgn predict --unknown default`` puts in place of a category
    unseen in training (empty: not recorded, as in models from before it was). ``tau``: the GroupSum
    temperature the network was trained with (class probabilities are softmax(scores / tau)); 0: unknown.
    Every name is at most 200 characters with no control characters; features and classes are unique.

    The two later fields are optional in files: absent, they take their defaults, and at their defaults
    :meth:`to_json` leaves them out, so names without them are written as before.
    """

    features: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    label: str = ""
    categorical: tuple[tuple[str, tuple[str, ...]], ...] = ()
    ignored: tuple[str, ...] = ()
    fill: tuple[float, ...] = ()
    most_frequent: tuple[str, ...] = ()
    tau: float = 0.0

    @property
    def numeric(self) -> tuple[str, ...]:
        """The numeric columns: the features before the one-hot ones."""
        return self.features[: len(self.features) - sum(len(c) for _, c in self.categorical)]

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        for field in _OPTIONAL:
            if data[field] == _OPTIONAL[field]:
                del data[field]
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> Names:
        """Parse and check; raise :class:`GraphError` naming what is wrong."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or set(data) - {f.name for f in dataclasses.fields(Names)}:
                raise ValueError("names must be an object with the fields of Names")
            names = Names(
                features=_strings(data.get("features", []), "features"),
                classes=_strings(data.get("classes", []), "classes"),
                label=_string(data.get("label", ""), "label"),
                categorical=tuple(
                    (_string(column, "categorical column"), _strings(categories, "categories"))
                    for column, categories in data.get("categorical", [])
                ),
                ignored=_strings(data.get("ignored", []), "ignored"),
                fill=tuple(_number(v) for v in data.get("fill", [])),
                most_frequent=_strings(data.get("most_frequent", []), "most_frequent"),
                tau=_number(data.get("tau", 0.0), "tau must be a finite number"),
            )
        except (ValueError, TypeError, RecursionError) as exc:
            raise GraphError(f"malformed names: {exc}") from None
        names.check()
        return names

    def check(self, n_features: int | None = None, n_classes: int | None = None) -> None:
        """Raise :class:`GraphError` unless the names are well formed and, where given, as many as the
        features and classes they name."""
        every = [*self.features, *self.classes, self.label, *self.ignored]
        every += [name for column, categories in self.categorical for name in (column, *categories)]
        bad = next((n for n in every if not isinstance(n, str) or len(n) > MAX_NAME_LENGTH or _CONTROL.search(n)), None)
        if bad is not None:
            raise GraphError(f"name {str(bad)[:40]!r} is longer than {MAX_NAME_LENGTH} or holds control characters")
        for what, values in (("feature", self.features), ("class", self.classes)):
            if len(set(values)) != len(values):
                raise GraphError(f"{what} names must be unique")
        if sum(len(c) for _, c in self.categorical) > len(self.features):
            raise GraphError("names: more one-hot categories than features")
        if self.fill and len(self.fill) != len(self.numeric):
            raise GraphError(f"names: {len(self.fill)} fill values for {len(self.numeric)} numeric columns")
        if self.most_frequent and (
            len(self.most_frequent) != len(self.categorical)
            or any(m not in categories for m, (_, categories) in zip(self.most_frequent, self.categorical))
        ):
            raise GraphError("names: most_frequent must name one of its categories for each categorical column")
        if isinstance(self.tau, bool) or not isinstance(self.tau, (int, float)) or not 0 <= self.tau < math.inf:
            raise GraphError(f"names: tau must be a finite number, positive or 0 (unknown), got {self.tau!r}")
        if n_features is not None and self.features and len(self.features) != n_features:
            raise GraphError(f"names: {len(self.features)} feature names for {n_features} raw features")
        if n_classes is not None and self.classes and len(self.classes) != n_classes:
            raise GraphError(f"names: {len(self.classes)} class names for {n_classes} classes")


def _string(value, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {type(value).__name__}")
    return value


# Fields a file may lack, with the value they then take (and that to_json leaves out).
_OPTIONAL = {"most_frequent": (), "tau": 0.0}


def _number(value, rule: str = "fill values must be finite numbers") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{rule}, got {value!r}")
    return float(value)


def _strings(values, what: str) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise ValueError(f"{what} must be a list of text")
    return tuple(_string(v, what) for v in values)


def c_string(text: str) -> str:
    """``text`` as a C string literal: printable ASCII as is, everything else (UTF-8 bytes, quotes,
    backslashes, ``?`` against trigraphs) as octal escapes."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

# IEEE 1364-2005 and IEEE 1800-2017 reserved words: a module named after one of them fails in Verilator,
# `iverilog -g2012` or `yosys -sv`, so every one is refused.
VERILOG_KEYWORDS = frozenset(
    """
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign default defparam
design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive endspecify endtable
endtask event for force forever fork function generate genvar highz0 highz1 if ifnone incdir include initial inout
input instance integer join large liblist library localparam macromodule medium module nand negedge nmos nor
noshowcancelled not notif0 notif1 or output parameter pmos posedge primitive pull0 pull1 pulldown pullup
pulsestyle_onevent pulsestyle_ondetect rcmos real realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1
scalared showcancelled signed small specify specparam strong0 strong1 supply0 supply1 table task time tran
tranif0 tranif1 tri tri0 tri1 triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor
xnor xor
accept_on alias always_comb always_ff always_latch assert assume before bind bins binsof bit break byte chandle
checker class clocking const constraint context continue cover covergroup coverpoint cross dist do endchecker
endclass endclocking endgroup endinterface endpackage endprogram endproperty endsequence enum eventually expect
export extends extern final first_match foreach forkjoin global iff ignore_bins illegal_bins implements implies
import inside int interconnect interface intersect join_any join_none let local logic longint matches modport
nettype new nexttime null package packed priority program property protected pure rand randc randcase
randsequence ref reject_on restrict return s_always s_eventually s_nexttime s_until s_until_with sequence shortint
shortreal soft solve static string strong struct super sync_accept_on sync_reject_on tagged this throughout
timeprecision timeunit type typedef union unique unique0 until until_with untyped var virtual void wait_order weak
wildcard with within
""".split()
)


def check_module_name(name: str) -> str:
    """A legal, plain Verilog identifier (letters, digits, _; at most 64 characters; not a keyword)."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or name in VERILOG_KEYWORDS:
        raise ParameterError(
            f"module {name!r} is not a plain Verilog identifier (letters, digits and _, not "
            "starting with a digit, at most 64 characters, not a keyword)",
            "module",
        )
    return name


# C11 and C23 keywords, and ``main``: the standalone library ships an example ``main.c`` that a prefix
# ``main`` would overwrite with the library source.
C_RESERVED = frozenset(
    """
auto break case char const continue default do double else enum extern float for goto if inline int long
register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual main
""".split()
)


def check_c_prefix(prefix: str) -> str:
    """A plain C identifier (letters, digits, _; at most 64 characters), not a keyword, not ``main``, and not
    beginning with an underscore: C reserves ``__x`` and ``_X`` everywhere and every ``_x`` at file scope (where
    the library's functions live) to the compiler and its library, and the macros are the prefix in capitals
    (``_stdio`` made glibc's own ``_STDIO_...`` names). The header's include guard is ``LGN_<PREFIX>_H_``, so
    a prefix such as ``stdio`` or ``features`` cannot meet a system header's."""
    if isinstance(prefix, str) and _IDENTIFIER.fullmatch(prefix) and prefix.startswith("_"):
        raise ParameterError(
            f"prefix {prefix!r} is not a C identifier a library may use: C reserves names beginning with an "
            f"underscore at file scope to the compiler and its library (its macros would be {prefix.upper()}_...)",
            "prefix",
        )
    if not isinstance(prefix, str) or not _IDENTIFIER.fullmatch(prefix) or prefix in C_RESERVED:
        raise ParameterError(
            f"prefix must be a plain C identifier (letters, digits and _, at most 64 characters, not a keyword, "
            f"not reserved, not main), got {prefix!r}",
            "prefix",
        )
    return prefix
