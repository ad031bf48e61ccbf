"""Probes: the I/O edge. Each talks to one kind of device and returns an `Outcome`.

Probe modules (named per component in agent.components) are imported only when their
component is checked (agent.selftest.runner.build_probes), so the idle daemon never loads
OpenCV, numpy or PortAudio. `frames` is the one camera frame grabber, for the camera check and
attendance counting.
"""
