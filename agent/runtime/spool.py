"""Reports into the outbox, and what the daemon does when the outbox cannot store them."""

from __future__ import annotations

import logging
import threading
from typing import TypeVar

from agent.contract.payloads import Envelope
from agent.errors import TransportError
from agent.transport.outbox import Outbox

log = logging.getLogger(__name__)
_E = TypeVar("_E", bound=Envelope)


class Spool:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._lock = threading.Lock()
        self._unstored = 0  # reports the outbox could not store since the last success

    def put(self, payload: _E) -> _E | None:
        """Queue a report; None when the outbox cannot store it (state_dir full, I/O error).
        The agent goes on without it rather than dying: a crash would not free the disk, and
        systemd would only restart it into the same failure."""
        try:
            stamped = self.outbox.put(payload)
        except TransportError as exc:
            with self._lock:
                self._unstored += 1
                first = self._unstored == 1
            if first:
                log.error("cannot store reports, they are not sent: %s (%s)", exc, exc.hint)
            return None
        with self._lock:
            unstored, self._unstored = self._unstored, 0
        if unstored:
            log.warning("reports are stored again; %d could not be stored before", unstored)
        return stamped
