"""One writer per output: a lock file beside it (``PATH.lock``) that names the writing process, so that two
trainings to one model refuse each other instead of interleaving their checkpoints and metrics
(docs/reliability.md, "Outputs")."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from .errors import ParameterError

_SETTLE_SECONDS = 10.0  # a lock file still empty after this long was left by a writer that died creating it


def _process_start(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (Linux), which tells a reused process id from the
    original; None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(holder: dict) -> bool:
    """Whether the lock's holder still runs: on another machine, assumed; here, by its process id (and
    its start time, where both are known)."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = _process_start(pid)
    return holder.get("started") is None or started is None or started == holder["started"]


class OutputLock:
    """``PATH.lock`` (or ``lock``), created exclusively (``O_CREAT | O_EXCL``) and holding the writer's process id, host
    and start: a second writer to ``path`` is refused naming the first; a lock whose process no longer runs
    (killed) is taken over with a line to ``say``. Released (removed) on leaving the ``with`` block, however
    it is left (an error, Ctrl-C, SIGTERM raised as SystemExit). Folders made for it are removed again when
    nothing else was written in them."""

    def __init__(
        self, path: str | Path, name: str = "out", say: Callable[[str], None] | None = None, lock: Path | None = None
    ):
        self.path, self.name, self.say = Path(path), name, say or (lambda line: None)
        self.lock = Path(f"{path}.lock") if lock is None else lock
        self.token = f"{os.getpid()}-{os.urandom(6).hex()}"
        self.made: list[Path] = []

    def _content(self) -> bytes:
        started = _process_start(os.getpid())
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": started, "since": time.time()}
        return json.dumps({**record, "token": self.token}).encode()

    def _holder(self) -> dict | None:
        """The lock's record; None when it vanished; ``{}`` when it is unreadable."""
        try:
            text = self.lock.read_bytes()
            age = time.time() - self.lock.stat().st_mtime
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):  # being written this instant, or left empty by a writer killed then
            return {"pid": -1, "host": socket.gethostname()} if age > _SETTLE_SECONDS else {"pending": True}
        return record

    def _take_over(self, holder: dict) -> bool:
        """Move a stale lock aside, unless someone replaced it meanwhile (then put that one back)."""
        aside = Path(f"{self.lock}.stale-{self.token}")
        try:
            os.rename(self.lock, aside)
        except FileNotFoundError:
            return False
        try:
            if json.loads(aside.read_bytes() or b"null") not in (holder, None):
                os.link(aside, self.lock)
                return False
        except (OSError, ValueError):
            pass
        finally:
            aside.unlink(missing_ok=True)
        pid = holder.get("pid")
        who = f"process {pid}" if isinstance(pid, int) and pid > 0 else "a writer"
        self.say(f"lgn: {self.lock} was left by {who}, which no longer runs: taken over")
        return True

    def _make_folders(self) -> None:
        missing = []
        place = self.lock.parent
        while not os.path.lexists(place) and place != place.parent:
            missing.append(place)
            place = place.parent
        for folder in reversed(missing):
            folder.mkdir()
            self.made.append(folder)

    def acquire(self) -> None:
        try:
            self._make_folders()
            for _ in range(5):
                try:
                    fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    holder = self._holder()
                    if holder is None or (not holder.get("pending") and not _alive(holder) and self._take_over(holder)):
                        continue
                    raise self._busy(holder or {}) from None
                with os.fdopen(fd, "wb") as handle:
                    handle.write(self._content())
                return
        except OSError as exc:
            self._remove_folders()
            why = f"{self.name} {self.path}: cannot write {self.lock}: {exc.strerror or exc}"
            raise ParameterError(why, self.name) from None
        except BaseException:
            self._remove_folders()
            raise
        self._remove_folders()
        raise ParameterError(f"{self.name} {self.path}: cannot take {self.lock} (others keep taking it)", self.name)

    def _busy(self, holder: dict) -> ParameterError:
        pid, host = holder.get("pid", "?"), holder.get("host")
        where = f" on {host}" if host and host != socket.gethostname() else ""
        since = holder.get("since")
        when = ""
        if isinstance(since, (int, float)):
            when = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}"
        return ParameterError(
            f"{self.name} {self.path} is being written by another run (process {pid}{where}{when}; its lock "
            f"{self.lock}): wait for it to finish, or give another path",
            self.name,
        )

    def _remove_folders(self) -> None:
        for folder in reversed(self.made):
            try:
                folder.rmdir()
            except OSError:
                break
        self.made = []

    def release(self) -> None:
        try:
            if json.loads(self.lock.read_bytes()).get("token") == self.token:
                self.lock.unlink()
        except (OSError, ValueError, AttributeError):
            pass
        self._remove_folders()

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
