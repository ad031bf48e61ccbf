"""The one shape of every simulated service (broker, camera stream, audio server, tone,
serial device, the whole site): `start()` returns the started service, `stop()` is safe to
call twice, and `with` does both."""

from __future__ import annotations

from typing import Self


class Service:
    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
