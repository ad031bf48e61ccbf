"""The contract: what the site agent and the centre share, and nothing else.

- `topics`: the one table of MQTT topics (name, QoS, retained, direction, queued).
- `payloads`: one pydantic model per payload; writers strict, readers lenient (docs/mqtt.md).
- `schemas`: the JSON Schemas in schemas/ generated from the models (`python -m
  agent.contract.schemas`); a test fails when they drift.
- `envelope`: the signed command envelope (Ed25519), its validation rules and refusal reasons.

Pure: no paho, no sockets, no files. Both products import it; it imports neither.
"""
