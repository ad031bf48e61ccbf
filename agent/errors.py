"""The typed error tree. Every message says what went wrong *and* what to do about it."""

from __future__ import annotations

from agent.messages import Message


class AgentError(Exception):
    """Base of every error the agent raises on purpose.

    The message and the hint are English text, or `Message`s (agent/messages.py) that a
    reader renders in its own language; `message` and `hint` are the English either way.
    """

    def __init__(self, message: str | Message, hint: str | Message = "") -> None:
        self.msg = message if isinstance(message, Message) else None
        self.hint_msg = hint if isinstance(hint, Message) else None
        self.message = message.text if isinstance(message, Message) else message
        self.hint = hint.text if isinstance(hint, Message) else hint
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class ConfigError(AgentError):
    """The configuration file or environment is wrong."""


class RosterError(AgentError):
    """A roster file of expected sites is invalid (`centre sites import`)."""


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
