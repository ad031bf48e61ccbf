"""The file side of the schedule: the local fallback file and the run record.

agent/schedule/model.py stays pure; this module reads and writes. The run record is written
atomically (temporary file, fsync, rename), so a power cut leaves the old or the new record,
never half of one: a lost record could run a pre-session check twice.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import tzinfo
from pathlib import Path

from pydantic import ValidationError

from agent.messages import message
from agent.schedule.model import RunRecord, ScheduleError, SchedulePayload, parse_schedule_file

log = logging.getLogger(__name__)

RECORD_NAME = "schedule-runs.json"


def read_local_schedule(path: Path, zone: tzinfo) -> SchedulePayload | None:
    """The fallback schedule file; None when there is none (not an error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ScheduleError(
            message("schedule.not_utf8", path=str(path), byte=exc.start),
            message("schedule.not_utf8_hint"),
        ) from None
    except OSError as exc:
        raise ScheduleError(
            message("schedule.cannot_read", path=str(path), error=str(exc.strerror or exc)),
            message("schedule.cannot_read_hint"),
        ) from None
    return parse_schedule_file(text, zone, message("schedule.file", path=str(path)))


def load_record(path: Path) -> RunRecord:
    """The run record; an empty one when missing. A damaged one is kept aside, not fatal:
    the worst outcome is one check run again, better than no checks at all."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RunRecord()
    try:
        return RunRecord.model_validate_json(text)
    except ValidationError as exc:
        aside = path.with_suffix(path.suffix + ".bad")
        os.replace(path, aside)
        log.warning(
            "schedule run record %s is damaged (%s); moved to %s, starting afresh",
            path,
            exc.errors()[0]["msg"] if exc.errors() else exc,
            aside,
        )
        return RunRecord()


def save_record(path: Path, record: RunRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(record.model_dump_json(indent=1))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def cache_payload(path: Path, payload: SchedulePayload) -> None:
    """Keep the centre's last schedule, so a site that boots without its link still knows
    its sessions (load it with parse_payload(path.read_bytes()))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(payload.model_dump_json(), encoding="utf-8")
    os.replace(tmp, path)
