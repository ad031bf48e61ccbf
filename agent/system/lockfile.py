"""One process per resource: an exclusive flock on a file holding the holder's pid.

The kernel drops the lock when the process ends, however it ends, so a file left behind by a
`kill -9` never blocks the next start. The file itself is never removed: unlinking a lock
file lets two processes each lock a different inode under the same name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from agent import messages
from agent.errors import AlreadyRunning, ConfigError
from agent.messages import message


def hold(path: Path, msg_id: str, hint_id: str, **fields: str) -> int:
    """Lock `path` for the rest of this process's life; the open descriptor.

    When another process holds it, raises AlreadyRunning with the messages `msg_id` and
    `hint_id` (ids of the catalogue) filled with `fields`, the holder's `pid` and the lock's
    `path`.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # close-on-exec: children lack it
    except OSError as exc:
        raise ConfigError(
            message("run.lock_unusable", path=str(path), error=str(exc.strerror or exc)),
            message("run.lock_unusable_hint"),
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(fd)
        os.close(fd)
        values = {**fields, "pid": pid, "path": str(path)}
        # The ids are the caller's literals (the catalogue test finds them there).
        hint = messages.message(hint_id, **values) if hint_id else ""
        raise AlreadyRunning(messages.message(msg_id, **values), hint) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _holder(fd: int) -> str:
    """The pid the holder wrote; it writes right after locking, so wait for it briefly."""
    for _ in range(20):
        with contextlib.suppress(OSError, ValueError):
            return str(int(os.pread(fd, 32, 0).decode("ascii", "replace").strip()))
        time.sleep(0.01)
    return "?"
