"""The site agent's running process (`edge-agent run`).

- `daemon`: the agent: wiring, the loop, the self-test and attendance runs, the state.
- `jobs`: what the loop runs (checks, attendance bursts, heartbeat, LED), one shape each.
- `watchdog`: systemd's watchdog, fed by the loop alone, and the bounded waits for workers.
- `inbound`: each topic the site hears from the centre and its handler.
- `spool`: reports into the outbox, and going on when the disk refuses them.
- `reports`: the report payloads it builds (meta, state, the saved last check).
- `control` and `control_handlers`: the local control socket and what it answers.
- `status`: the snapshot that crosses that socket and its rendering for the technician.
"""
