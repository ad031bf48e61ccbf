"""What this centre process counts for /metrics as it happens: reports stored and refused, and
how late each live report was stored after its site made it (publish -> stored). The store
cannot tell these afterwards; everything it can tell is read at scrape time instead
(centre/web/metrics.py, the one place that imports prometheus_client).

Counts are per process, as Prometheus expects of counters: several centre processes sharing
the load are several scrape targets, and `sum()` over them is the centre's."""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from agent.centre.store import Incoming, PublishedSchedule, RegionState

# Seconds. A report normally takes well under a second; a site catching up after an outage
# or a centre behind a slow disk, minutes. Replayed history (`historical`) and retained
# copies are not counted: their age says when they were made, not how late the centre is.
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


@dataclass(frozen=True)
class IngestFigures:
    stored: dict[str, int]  # by report kind ("schedule", "region_state" for what is not a report)
    rejected: int
    lag_counts: tuple[int, ...]  # per bucket of LAG_BUCKETS, then above the last; not cumulative
    lag_sum: float


class IngestStats:
    """Thread-safe: the ingest's writer adds, a scrape reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stored: Counter[str] = Counter()
        self._rejected = 0
        self._lag = [0] * (len(LAG_BUCKETS) + 1)
        self._lag_sum = 0.0

    def stored(
        self, items: Iterable[Incoming | PublishedSchedule | RegionState], at: float
    ) -> None:
        with self._lock:
            for item in items:
                if isinstance(item, PublishedSchedule):
                    self._stored["schedule"] += 1
                    continue
                if isinstance(item, RegionState):
                    self._stored["region_state"] += 1
                    continue
                p = item.payload
                self._stored[p.kind] += 1
                if item.retained or p.historical:
                    continue
                # A site's clock a little ahead would give a negative lag: none, then.
                lag = max(0.0, at - p.ts.timestamp())
                self._lag[bisect.bisect_left(LAG_BUCKETS, lag)] += 1
                self._lag_sum += lag

    def rejected(self, n: int = 1) -> None:
        with self._lock:
            self._rejected += n

    def figures(self) -> IngestFigures:
        with self._lock:
            lag = tuple(self._lag)
            return IngestFigures(dict(self._stored), self._rejected, lag, self._lag_sum)


# The process's own: one ingest per process (`centre serve`), and the dashboard next to it
# serves what it counted.
INGEST = IngestStats()
