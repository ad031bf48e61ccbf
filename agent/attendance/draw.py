"""Debug snapshots for technicians: the frame with the faces found and the regions drawn.

Writing one is the only way a picture from the counter ever reaches a disk, and only on a
technician's explicit request (`edge-agent attendance snapshot --out FILE`); it is never
sent anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from agent.attendance.counter import Frame
from agent.attendance.detector import FrameFaces
from agent.attendance.settings import AttendanceSettings
from agent.errors import AgentError
from agent.messages import message

COUNTED = (60, 200, 60)  # BGR
EXCLUDED = (40, 40, 230)
INCLUDE_EDGE = (230, 200, 40)


def _polygon(corners: list[tuple[float, float]], width: int, height: int) -> npt.NDArray[np.int32]:
    return np.array([[round(x * width), round(y * height)] for x, y in corners], dtype=np.int32)


def annotate(frame: Frame, faces: FrameFaces, settings: AttendanceSettings) -> Frame:
    """A copy of the frame with counted faces in green, faces outside the region of interest
    in red, excluded regions shaded red and include regions outlined."""
    out = frame.copy()
    h, w = out.shape[:2]
    thick = max(1, round(w / 640))
    if settings.exclude:
        shade = out.copy()
        for region in settings.exclude:
            cv2.fillPoly(shade, [_polygon(region.corners(), w, h)], EXCLUDED)
        out = np.asarray(cv2.addWeighted(shade, 0.25, out, 0.75, 0), dtype=np.uint8)
    for region in settings.include:
        cv2.polylines(out, [_polygon(region.corners(), w, h)], True, INCLUDE_EDGE, thick)
    for boxes, colour in ((faces.excluded, EXCLUDED), (faces.counted, COUNTED)):
        for x1, y1, x2, y2, _ in boxes:
            cv2.rectangle(out, (round(x1), round(y1)), (round(x2), round(y2)), colour, thick)
    label = f"{faces.count} counted" + (
        f", {len(faces.excluded)} excluded" if len(faces.excluded) else ""
    )
    scale = max(0.5, w / 1280)
    org = (10, round(30 * scale) + 4)
    cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2)
    cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick)
    return np.asarray(out, dtype=np.uint8)


def write_snapshot(path: Path, image: Frame) -> None:
    """Write the annotated picture, readable by its owner only (it shows faces)."""
    ext = path.suffix.lower()
    if ext not in (".jpg", ".jpeg", ".png"):
        raise AgentError(
            message("attendance.snapshot.bad_type", path=str(path), ext=ext),
            message("attendance.snapshot.bad_type_hint"),
        )
    if not path.parent.is_dir():
        raise AgentError(
            message("attendance.snapshot.no_folder", path=str(path), folder=str(path.parent)),
            message("attendance.snapshot.no_folder_hint"),
        )
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise AgentError(
            message("attendance.snapshot.encode", path=str(path)),
            message("attendance.snapshot.encode_hint"),
        )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)  # also when an older file of that name existed
        fh.write(buf.tobytes())
