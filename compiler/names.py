"""Names that lgn writes into emitted code: a C prefix and a Verilog module name, refused when a compiler or
simulator would reject them or when they would overwrite another emitted file."""

from __future__ import annotations

import re

from .errors import ParameterError

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
    """A plain C identifier (letters, digits, _; at most 64 characters), not a keyword, not reserved to the
    implementation (``__x``, ``_X``), not ``main``."""
    if (
        not isinstance(prefix, str)
        or not _IDENTIFIER.fullmatch(prefix)
        or prefix in C_RESERVED
        or prefix.startswith("__")
        or re.match(r"_[A-Z]", prefix)
    ):
        raise ParameterError(
            f"prefix must be a plain C identifier (letters, digits and _, at most 64 characters, not a keyword, "
            f"not reserved, not main), got {prefix!r}",
            "prefix",
        )
    return prefix
