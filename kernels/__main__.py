"""``python -m lgn.kernels --check``: compile every CUDA source with nvcc for the target GPUs (no GPU needed);
``python -m lgn.kernels --build``: build and load the extension on this machine (needs a GPU toolchain)."""

from __future__ import annotations

import argparse
import sys

from .build import TARGET_ARCHES, load_extension, main_check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lgn.kernels", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compile every source with nvcc; exit 1 on any error")
    parser.add_argument("--arch", action="append", help=f"compute capability digits (default: {TARGET_ARCHES})")
    parser.add_argument("--build", action="store_true", help="build and import the PyTorch extension")
    args = parser.parse_args(argv)
    if not (args.check or args.build):
        parser.error("choose --check or --build")
    status = 0
    if args.check:
        status = main_check(tuple(args.arch) if args.arch else TARGET_ARCHES)
    if args.build and status == 0:
        try:
            load_extension(verbose=True)
        except Exception as exc:  # the build tool's own message says what failed
            print(f"error: building the extension failed: {exc}", file=sys.stderr)
            return 1
        print("extension built and loaded")
    return status


if __name__ == "__main__":
    sys.exit(main())
