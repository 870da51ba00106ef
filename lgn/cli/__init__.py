"""The ``lgn`` command line. Exit codes: 0 success, 1 a check failed, 2 bad usage or bad input (one line on
stderr, ``lgn: error: ...``), 130 interrupted.

One module per command group, each holding its commands' arguments next to their handlers; the libraries
below speak parameters and raise :class:`~lgn.compiler.errors.LgnError`, which this module prints with the
parameters named by their flags.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from lgn.compiler.errors import LgnError

from . import bench, board, demo, graphs, predict, synth, train, verify
from . import compile as compile_group
from .common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Parser, missing_extra, user_message

COMMAND_GROUPS = (graphs, verify, train, predict, compile_group, synth, board, bench, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lgn", description="Logic gate networks: train, compile, verify.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def _exit_on_terminate(signum, frame) -> None:
    """SIGTERM and SIGHUP end the run through the normal exit path, so that temporary folders are removed and
    no private file is left behind (a SIGKILL leaves them; the next build removes those)."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _exit_on_terminate)
    try:
        return args.func(args)
    except LgnError as exc:
        print(f"lgn: error: {user_message(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        print(
            f"lgn: error: lgn {args.command} needs the [{extra}] extra ({exc.name} is not installed): "
            f"pip install 'lgn[{extra}]'",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except MemoryError:
        print("lgn: error: out of memory (try a smaller network or fewer vectors)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `lgn predict ... | head`: the reader is gone, as after SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        print("lgn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
