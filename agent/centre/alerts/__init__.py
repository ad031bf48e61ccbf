"""Alerts, incidents and notifications: the centre telling the right person.

- `model.py`: the shapes that cross between the parts (an alert, an incident, a contact, a
  notification) and the rules' settings (`[alerts]` in centre.toml);
- `rules.py`: pure: from what the store knows of each site, which alerts fire and recover,
  with hold times;
- `engine.py`: the loop that runs the rules over the store, opens and closes incidents and
  queues the notifications;
- `store.py`: the alerts', incidents' and silences' tables;
- `contacts.py`: the directory of who is told, and `routing.py` (pure): who gets what,
  grouped;
- `queue.py`: the durable notification queue; `delivery.py`: the worker that empties it
  through `channels/` (webhook, e-mail, Telegram); `deadman.py`: the centre's own heartbeat.
"""
