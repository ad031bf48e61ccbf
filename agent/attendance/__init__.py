"""Attendance counting on the device: how many people the site camera sees in a session.

    models.py      the detector model: pinned source, checksum, install command (stdlib)
    settings.py    AttendanceSettings, the `[attendance]` section (pydantic only)
    geometry.py    boxes, non-maximum suppression, tiles, regions of interest (pure)
    detector.py    CenterFace on cv2.dnn, whole-frame and tiled passes, region filter
    burst.py       a burst of per-frame counts to one count, or unknown (pure, stdlib)
    smoothing.py   hysteresis across bursts, session peak and median (pure, stdlib)
    report.py      AttendanceReport (one burst, made a payload by runtime/reports.py)
                   and AttendanceSession (pure)
    counter.py     Counter: grab a burst from the camera, count it
    draw.py        debug snapshots for technicians (the only picture ever written)

Only detector.py, counter.py and draw.py import OpenCV; importing this package, the
settings or the report model costs nothing heavy. No image, crop or embedding leaves the
device: reports carry numbers only.
"""
