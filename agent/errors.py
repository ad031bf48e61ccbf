"""The typed error tree. Every message says what went wrong *and* what to do about it."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class ConfigError(AgentError):
    """The configuration file or environment is wrong."""


class ProfileError(AgentError):
    """A firmware profile file is invalid."""


class ProbeError(AgentError):
    """A probe could not talk to its device."""


class DeviceNotFound(ProbeError):
    """The configured device does not exist."""


class DeviceTimeout(ProbeError):
    """The device did not answer within its timeout."""


class BadReply(ProbeError):
    """The device answered something we cannot parse."""


class TransportError(AgentError):
    """The broker connection or outbox failed."""


class ProtocolRefused(TransportError):
    """The broker does not speak the MQTT version asked for (CONNACK: unsupported version)."""


class CommandRejected(AgentError):
    """A remote command was refused; the reason is sent back to the centre."""


class AlreadyRunning(AgentError):
    """Another process already holds the lock of this state directory or database."""
