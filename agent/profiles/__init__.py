"""Firmware profiles: a device model is a TOML file (firmware_profiles/), a protocol family
is a small module (families/). model.py says what a profile may contain, loader.py reads and
validates it, session.py talks to the device, verdict.py judges the answers."""
