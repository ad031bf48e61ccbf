"""Worker children (the self-test, an attendance burst) that die with the daemon.

Python's subprocess has no PDEATHSIG, and a child stuck in a hung driver would otherwise
outlive a daemon killed with -9 and keep the camera. So each worker gets a pipe whose write
end only the daemon holds, and its own process group. When the daemon dies, however it dies,
the kernel closes that write end: the reading end sees EOF, which (O_ASYNC) sends SIGIO to
the worker's group, whose default action ends every process in it, without needing the
worker's interpreter to run. A thread reading the pipe does the same with SIGKILL, for a
library that changed SIGIO's action. A leftover that survived anyway (it ignored both, or was
inside an uninterruptible driver call) is killed by the next daemon at start.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

PARENT_FD_ENV = "EDGE_AGENT_PARENT_FD"
# Marks a worker (and whatever it starts) as belonging to the daemon of one state directory,
# so a daemon at start kills only its own predecessor's leftovers, never another agent's.
WORKER_OF_ENV = "EDGE_AGENT_WORKER_OF"

_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()


def _owner(state_dir: Path) -> str:
    return str(state_dir.resolve())


# PortAudio, when its server dies mid-recording, can write error lines to stderr in a tight
# loop until the process ends (63 GB in one test run). A worker's stderr is forwarded up to
# this much per run; the rest is counted and dropped.
STDERR_LIMIT_BYTES = 64 * 1024


def _forward_stderr(fd: int, limit: int, module: str) -> None:
    """Copy the child's stderr to ours up to `limit` bytes, then drain and count the rest."""
    passed = dropped = 0
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65536):
            room = max(0, limit - passed)
            if room:
                # Whatever stderr is now (a closed or replaced stream at shutdown, a test's
                # capture): a lost log line must not kill the drain, or the child blocks.
                with contextlib.suppress(Exception):
                    sys.stderr.write(chunk[:room].decode("utf-8", "replace"))
                    sys.stderr.flush()
                passed += min(room, len(chunk))
            dropped += max(0, len(chunk) - room)
    if dropped:
        log.warning("%s wrote %d more bytes to stderr; dropped", module, dropped)


def run_worker(
    module: str, request: bytes, deadline_s: float, state_dir: Path
) -> tuple[int, bytes]:
    """`python -m module` fed `request` on stdin: its exit code and stdout; its stderr (its
    log lines) forwarded to ours, bounded.

    Raises subprocess.TimeoutExpired after `deadline_s` (its whole process group killed), or
    OSError when it cannot start.
    """
    # An os.pipe of our own for stderr: communicate() would read a PIPE into memory unbounded.
    err_read, err_write = os.pipe()
    forwarder = threading.Thread(
        target=_forward_stderr, args=(err_read, STDERR_LIMIT_BYTES, module), daemon=True
    )
    forwarder.start()
    try:
        return _run(module, request, deadline_s, state_dir, err_write)
    finally:
        os.close(err_write)  # the forwarder then ends at EOF
        # A grandchild holding the pipe open must not hold us: the thread is a daemon.
        forwarder.join(1.0)


def _run(
    module: str, request: bytes, deadline_s: float, state_dir: Path, stderr: int
) -> tuple[int, bytes]:
    watch_read, watch_write = os.pipe()  # both ends close-on-exec: no other child gets them
    env = {**os.environ, PARENT_FD_ENV: str(watch_read), WORKER_OF_ENV: _owner(state_dir)}
    try:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", module],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                pass_fds=(watch_read,),
                start_new_session=True,  # its own group: it and its children end together
            )
        finally:
            os.close(watch_read)
        with _running_lock:
            _running.add(proc)
        try:
            stdout, _ = proc.communicate(request, timeout=deadline_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.communicate()
            raise
        finally:
            with _running_lock:
                _running.discard(proc)
        return proc.returncode, stdout
    finally:
        # Ends whatever the worker left running in its group that still holds the pipe.
        os.close(watch_write)


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    # Only while the worker is unreaped: its pid, the group's id, cannot have been reused.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)


def terminate_workers() -> None:
    """Stop every worker still running (the daemon is shutting down)."""
    with _running_lock:
        for proc in _running:
            _signal_group(proc, signal.SIGTERM)


def die_with_parent() -> None:
    """In a worker, first thing: end this process group when the daemon ends.

    A no-op when not started by run_worker (a technician running the module by hand).
    """
    raw = os.environ.pop(PARENT_FD_ENV, None)  # not for our own children
    if raw is None:
        return
    try:
        fd = int(raw)
        os.fstat(fd)
    except (ValueError, OSError):
        log.warning("%s=%r is not an open pipe; not watching the daemon", PARENT_FD_ENV, raw)
        return
    leader = os.getpgrp() == os.getpid()
    signal.signal(signal.SIGIO, signal.SIG_DFL)
    fcntl.fcntl(fd, fcntl.F_SETOWN, -os.getpid() if leader else os.getpid())
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)
    # The thread also covers a daemon that died before O_ASYNC was set (EOF at once).
    threading.Thread(
        target=_end_at_eof, args=(fd, leader), name="parent-watch", daemon=True
    ).start()


def _end_at_eof(fd: int, leader: bool) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 64):
            pass
    if leader:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)


def kill_leftovers(state_dir: Path) -> int:
    """Kill the process groups of workers a previous daemon of `state_dir` left behind; how
    many. Call only while holding the state directory's lock (agent.lockfile): then no live
    daemon owns them."""
    marker = f"{WORKER_OF_ENV}={_owner(state_dir)}".encode()
    groups: set[int] = set()
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                groups.add(os.getpgid(int(entry.name)))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    groups.discard(os.getpgrp())
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    if groups:
        log.warning("killed %d worker process group(s) left by a previous run", len(groups))
    return len(groups)
