"""Pure check logic: no device, file, socket or thread is touched here.

- `model`: Status, Outcome, CheckResult, the check run (`CheckRun`, `Trigger`) and the
  site verdict.
- `camera_metrics`, `audio_metrics`, `network_metrics`: measurements in, verdict out.
- `display_connector`: a DRM connector's state in, the display verdict out.
- `edid`: the EDID decoder (bytes in, fields out).
- `report`: rendering results as a table or JSON.

The probes (agent.probes) do the I/O and call these; the runner that runs the probes in
threads is agent.selftest.runner.
"""
