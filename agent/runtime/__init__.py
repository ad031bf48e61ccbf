"""The site agent's running process (`edge-agent run`).

- `daemon`: the Agent: wiring, lifecycle, the loop, the self-test and attendance runs.
- `jobs`: what the loop runs, in priority order, each with the same `due`/`run`/`next_in`.
- `watchdog`: only the loop's thread pings systemd, with bounded waits for workers.
- `inbound`: the one table from an inbound topic (commands, schedules) to its handler.
- `reports`: every report payload, built here (meta, state, checks, attendance), and the
  saved last check's file.
- `spool`: reports into the outbox, carrying on when the disk refuses them.
- `control` and `control_handlers`: the local control socket and what it answers.
- `status`: the snapshot that crosses that socket and its rendering for the technician.
"""
