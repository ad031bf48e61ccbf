"""Loaded by Python at start-up when this folder is on PYTHONPATH: bench/scale.py puts it there
for the centre processes it starts, so that their garbage collector's pauses can be counted.

Each collection of the oldest generation (a full collection: it walks every object the process
holds, with every thread stopped) that takes 20 ms or more is appended to the file named by
BENCH_GC_LOG, one line per collection: `<wall-clock end> <milliseconds>`. Nothing happens when
BENCH_GC_LOG is not set.
"""

import gc
import os
import time

_PATH = os.environ.get("BENCH_GC_LOG")

if _PATH:
    _out = open(_PATH, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    _began = [0.0]

    def _watch(phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            _began[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - _began[0]) * 1000
        if ms >= 20:
            _out.write(f"{time.time():.3f} {ms:.1f}\n")

    gc.callbacks.append(_watch)
