"""The region_down alert with three real mosquittos (tests/test_bridges.py), the real ingest
and the alert engine running in its thread: a regional broker killed -9 → one alert for the
region, to the province desk only, and no site alert for the sites behind it; the broker
back → the alert recovers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agent.centre.alerts.contacts import ContactStore
from agent.centre.alerts.engine import AlertEngine
from agent.centre.alerts.model import AlertKind, NotificationEvent, Rule, Severity
from agent.centre.alerts.queue import NotificationQueue
from agent.centre.alerts.store import AlertStore
from agent.centre.settings import CentreSettings
from tests.fixtures.broker import wait_until
from tests.test_alert_engine import CONTACTS
from tests.test_alert_facts import HOP, schedule
from tests.test_bridges import born_ready, bridged, conditions, send  # noqa: F401 - a fixture

pytestmark = pytest.mark.broker

RULES = [
    Rule(id="down", kind=AlertKind.SITE_DOWN, lead_minutes=15, for_s=0),
    Rule(id="region-down", kind=AlertKind.REGION_DOWN, severity=Severity.CRITICAL, for_s=1),
]


def test_a_killed_regional_broker_raises_one_alert_for_its_region(bridged) -> None:  # noqa: F811
    store, ingest = bridged["store"], bridged["ingest"]
    r1 = bridged["regions"]["r001"]
    db = ingest.settings.db_path
    settings = CentreSettings.model_validate({
        "db_path": str(db),
        "alerts": {"evaluate_every_s": 0.2, "group_window_s": 0.0,
                   "rules": [r.model_dump() for r in RULES]},
    })  # fmt: skip
    contacts = ContactStore(db)
    for c in CONTACTS:
        contacts.put(c)
    contacts.close()
    schedule(store, "", HOP)  # a session running: a site judged down would page
    sites = born_ready(bridged)
    astore, queue = AlertStore(db), NotificationQueue(db)

    def firing() -> list[str]:
        return sorted(a.key for a in astore.firing())

    def told(event: NotificationEvent) -> list[tuple[str, list[str]]]:
        rows = queue._db.execute("SELECT id FROM notifications ORDER BY id").fetchall()
        got: list[Any] = [queue.get(r[0]) for r in rows]
        return [(n.contact_id, [a.site_id for a in n.alerts]) for n in got
                if n is not None and n.event is event]  # fmt: skip

    engine = AlertEngine(settings).start()
    try:
        time.sleep(0.5)
        assert firing() == []
        killed = time.monotonic()
        r1.broker.kill()
        assert wait_until(lambda: firing() == ["region-down:region:r001"], 15), firing()
        took = time.monotonic() - killed
        assert conditions(store) == {"a1": "unreachable", "a2": "unreachable", "b1": "ready"}
        assert told(NotificationEvent.RAISED) == [("desk", ["region:r001"])]
        (a,) = astore.firing()
        assert "2 sites of the roster unreachable" in a.reason.text
        time.sleep(1.0)  # more evaluations: still the one alert, no site's own
        assert firing() == ["region-down:region:r001"]
        print(f"region_down raised {took:.2f} s after the regional broker was killed")

        r1.broker.start()
        with r1.publisher() as p1:
            send(p1, sites["a1"].state(), sites["a2"].state())
            assert wait_until(lambda: firing() == [], 20), firing()
        assert told(NotificationEvent.RECOVERED) == [("desk", ["region:r001"])]
        assert set(conditions(store).values()) == {"ready"}
    finally:
        engine.stop()
        astore.close()
        queue.close()
