"""The daemon's local control socket: the technician's CLI asks the running agent instead
of fighting it for the camera and the serial ports.

One JSON object per line in each direction; one request per connection. The socket lives
in the state directory with mode 0660, so root and the edge-agent group may use it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config import CONTROL_SOCKET
from agent.errors import AgentError
from agent.messages import message

log = logging.getLogger(__name__)

SOCKET_NAME = CONTROL_SOCKET
Handler = Callable[[dict[str, Any]], dict[str, Any]]
_MAX_REQUEST = 64 * 1024


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


class ControlServer:
    def __init__(self, path: Path, handlers: dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ControlServer:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a killed daemon
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o660)
        sock.listen(8)
        self._sock = sock
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="control", daemon=True
        )
        self._thread.start()
        return self

    def _serve(self, sock: socket.socket) -> None:
        # Its own reference: stop() may clear self._sock before this thread first runs.
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # closed by stop()
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                raw = conn.makefile("rb").readline(_MAX_REQUEST)
                reply = self.handle(raw)
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(reply).encode() + b"\n")

    def handle(self, raw: bytes) -> dict[str, Any]:
        """One request line -> one reply; malformed requests get an error, never a crash."""
        try:
            request = json.loads(raw)
            op = request["op"]
            handler = self.handlers[op]
        except (ValueError, TypeError, KeyError):
            return {"ok": False, "error": f"bad request; ops: {', '.join(sorted(self.handlers))}"}
        try:
            return {"ok": True, "result": handler(request)}
        except AgentError as exc:
            log.warning("control request %s refused: %s", op, exc)
            # The CLI renders the messages in the technician's language; `error` is for
            # older readers.
            return {"ok": False, "error": str(exc), **_messages(exc)}
        except Exception as exc:
            log.exception("control request %s failed", op)
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _messages(exc: AgentError) -> dict[str, Any]:
    found = {"error_msg": exc.msg, "hint_msg": exc.hint_msg}
    return {k: m.model_dump(mode="json") for k, m in found.items() if m is not None}


def ask(path: Path, request: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The daemon's answer, or None when no daemon listens there."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            line = sock.makefile("rb").readline()
    except (FileNotFoundError, ConnectionRefusedError):
        return None
    except TimeoutError as exc:
        raise AgentError(
            message("status.slow_answer", seconds=timeout_s, path=str(path)),
            message("status.slow_answer_hint"),
        ) from exc
    except PermissionError as exc:
        raise AgentError(
            message("status.socket_denied", path=str(path)), message("status.socket_denied_hint")
        ) from exc
    reply: dict[str, Any] = json.loads(line)
    return reply
