"""The site agent's running process (`edge-agent run`).

- `daemon`: the loop: checks, attendance bursts, heartbeat, LED, watchdog.
- `reports`: every report payload, built here (meta, state, checks, attendance), and the
  saved last check's file.
- `control` and `control_handlers`: the local control socket and what it answers.
- `status`: the snapshot that crosses that socket and its rendering for the technician.
"""
