"""The centre: the province's side.

- `ingest` takes every site's reports off the broker into the fleet database (`store`,
  SQLite), acknowledging each only once stored; `seqs` tracks each site's report numbers;
  `db` opens that database one way for every part that keeps tables in it.
- `fleet` judges each site's condition (pure); `report` sums attendance per session.
- `schedule_pub` publishes the retained schedule; `sender` signs commands and collects their
  replies; `keys` reads and writes the signing key pair.
- `alerts/` tells the right person: rules, incidents, contacts, notifications.
- `web/` is the dashboard (starlette; the `centre` extra).
- `settings` is centre.toml.

The centre never imports the site's device code (probes, self-test, attendance counting):
no OpenCV, numpy, sounddevice or pyserial in its process.
"""
