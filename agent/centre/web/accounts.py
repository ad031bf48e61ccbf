"""Dashboard accounts, sessions and failed logins, in the centre's store (SQLite or PostgreSQL).

Passwords are hashed with argon2id (argon2-cffi). A session is a random token held by the
browser in an HttpOnly, SameSite=Strict cookie; the database keeps only its SHA-256, so a
copy of the database does not let anyone in. Each session has its own CSRF token, required
in the X-CSRF-Token header of every POST. A failed login costs the same whether the name
exists or not (a dummy hash is verified), and repeated failures for a name from an address, or
many from one address, are refused for a while (`LoginLimiter`).

A display (a wall screen nobody signs in at) is issued from the CLI: a one-time invitation,
traded once by the page for a display session. That session is read-only and does not expire
at the operators' limit: it lasts until the display is revoked. Both tokens are kept only as
SHA-256 digests, like the sessions'.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from agent.centre.store.base import Database, Migration, open_part
from agent.errors import AgentError
from agent.messages import message

_SCHEMA = """
CREATE TABLE IF NOT EXISTS web_users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS web_sessions (
    token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL,
    created REAL NOT NULL, expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS web_displays (
    name TEXT PRIMARY KEY, invite_hash TEXT, session_hash TEXT, csrf TEXT NOT NULL,
    created REAL NOT NULL, opened REAL
);
"""
# A user or display issued again with `replace`: the whole row is the new one.
_REPLACE_USER = (
    "DO UPDATE SET role = excluded.role, hash = excluded.hash, created = excluded.created"
)
_REPLACE_DISPLAY = (
    "DO UPDATE SET invite_hash = excluded.invite_hash, session_hash = NULL,"
    " csrf = excluded.csrf, created = excluded.created, opened = NULL"
)


def _v2_login_failures(db: Database) -> None:
    """The login limiter's failures, in the shared store since version 2 (each process's
    memory before: two processes let twice the guesses through)."""
    db.create(
        "CREATE TABLE IF NOT EXISTS web_login_failures ("
        " id INTEGER PRIMARY KEY, key TEXT NOT NULL, at REAL NOT NULL);"
        " CREATE INDEX IF NOT EXISTS web_login_failures_key ON web_login_failures (key, at);"
        " CREATE INDEX IF NOT EXISTS web_login_failures_at ON web_login_failures (at)"
    )


_MIGRATIONS: list[Migration] = [_v2_login_failures]
NAME_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"
MIN_PASSWORD = 8


class Role(StrEnum):
    OPERATOR = "operator"  # sees the fleet and sends commands
    VIEWER = "viewer"  # sees the fleet only
    DISPLAY = "display"  # a wall screen: sees the fleet, sends nothing, stays signed in


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created: float


@dataclass(frozen=True)
class Session:
    name: str
    role: Role
    csrf: str
    expires: float

    @property
    def can_command(self) -> bool:
        return self.role is Role.OPERATOR


class AccountError(AgentError, ValueError):
    """A name or password the accounts refuse; the message (`msg`) says why."""


class DisplayExists(AccountError):
    """A display of that name was issued already."""


@dataclass(frozen=True)
class Display:
    name: str
    created: float
    opened: float | None  # when its invitation was traded for a session
    invited: bool  # an invitation not yet used


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, db_path: Path | str, hasher: PasswordHasher | None = None) -> None:
        """`db_path`: the SQLite file or a PostgreSQL URL (settings.store_location): the
        accounts live in the shared store, so any centre process serves any operator."""
        self.db = open_part(db_path, "accounts", _SCHEMA, _MIGRATIONS)
        self.hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        # Verified when the name is unknown, so both failures take as long.
        self._dummy = self.hasher.hash(secrets.token_hex(16))

    def close(self) -> None:
        self.db.close()

    # ---- users -------------------------------------------------------------------------

    def add(self, name: str, password: str, role: Role, *, replace: bool = False) -> None:
        if not re.match(NAME_PATTERN, name):
            raise AccountError(message("account.bad_name", name=repr(name)))
        if len(password) < MIN_PASSWORD:
            raise AccountError(message("account.short_password", count=MIN_PASSWORD))
        hashed = self.hasher.hash(password)
        then = _REPLACE_USER if replace else "DO NOTHING"
        with self._lock:
            cur = self.db.execute(
                f"INSERT INTO web_users VALUES (?,?,?,?) ON CONFLICT (name) {then}",  # noqa: S608 - two fixed texts
                (name, role.value, hashed, time.time()),
            )
            if not cur.rowcount:
                raise AccountError(message("account.exists", name=name))
            if replace:
                # A changed password or role ends the user's open sessions.
                self.db.execute("DELETE FROM web_sessions WHERE name = ?", (name,))

    def remove(self, name: str) -> bool:
        with self._lock:
            n = self.db.execute("DELETE FROM web_users WHERE name = ?", (name,)).rowcount
            self.db.execute("DELETE FROM web_sessions WHERE name = ?", (name,))
        return n > 0

    def users(self) -> list[User]:
        with self._lock:
            rows = self.db.execute(
                "SELECT name, role, created FROM web_users ORDER BY name"
            ).fetchall()
        return [User(r[0], Role(r[1]), r[2]) for r in rows]

    def verify(self, name: str, password: str) -> Role | None:
        """The user's role if the password is right; None otherwise (same cost either way)."""
        with self._lock:
            row = self.db.execute(
                "SELECT role, hash FROM web_users WHERE name = ?", (name,)
            ).fetchone()
        stored = row[1] if row else self._dummy
        try:
            self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self.hasher.check_needs_rehash(stored):
            with self._lock:
                self.db.execute(
                    "UPDATE web_users SET hash = ? WHERE name = ?",
                    (self.hasher.hash(password), name),
                )
        return Role(row[0])

    # ---- sessions ----------------------------------------------------------------------

    def open_session(self, name: str, lifetime_s: float) -> tuple[str, Session]:
        """A new session: (the token for the cookie, the session)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            role = self.db.execute("SELECT role FROM web_users WHERE name = ?", (name,)).fetchone()
            if role is None:
                raise AccountError(message("account.not_found", name=name))
            self.db.execute("DELETE FROM web_sessions WHERE expires < ?", (now,))
            self.db.execute(
                "INSERT INTO web_sessions VALUES (?,?,?,?,?)",
                (_digest(token), name, csrf, now, now + lifetime_s),
            )
        return token, Session(name, Role(role[0]), csrf, now + lifetime_s)

    def session(self, token: str | None, now: float | None = None) -> Session | None:
        if not token:
            return None
        with self._lock:
            row = self.db.execute(
                "SELECT s.name, u.role, s.csrf, s.expires FROM web_sessions s "
                "JOIN web_users u ON u.name = s.name WHERE s.token_hash = ?",
                (_digest(token),),
            ).fetchone()
        if row is None:
            return self.display_session(token)
        if row[3] < (time.time() if now is None else now):
            return None
        return Session(row[0], Role(row[1]), row[2], row[3])

    # ---- displays (wall screens) ---------------------------------------------------------

    def issue_display(self, name: str, *, replace: bool = False) -> str:
        """A display's one-time invitation (the token to put in its URL). Issuing again
        with `replace` ends the screen's current session."""
        if not re.match(NAME_PATTERN, name):
            raise AccountError(message("account.bad_display_name", name=repr(name)))
        invite = secrets.token_urlsafe(32)
        then = _REPLACE_DISPLAY if replace else "DO NOTHING"
        with self._lock:
            cur = self.db.execute(
                f"INSERT INTO web_displays VALUES (?,?,NULL,?,?,NULL) ON CONFLICT (name) {then}",  # noqa: S608 - two fixed texts
                (name, _digest(invite), secrets.token_urlsafe(32), time.time()),
            )
            if not cur.rowcount:
                raise DisplayExists(name)
        return invite

    def open_display(self, invite: str) -> tuple[str, Session] | None:
        """Trade an invitation for the display's session token; None if it is unknown or
        already used (an invitation opens one screen, once)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            row = self.db.execute(
                "UPDATE web_displays SET invite_hash = NULL, session_hash = ?, opened = ? "
                "WHERE invite_hash = ? RETURNING name, csrf",
                (_digest(token), time.time(), _digest(invite)),
            ).fetchone()
        if row is None:
            return None
        return token, Session(row[0], Role.DISPLAY, row[1], math.inf)

    def display_session(self, token: str) -> Session | None:
        with self._lock:
            row = self.db.execute(
                "SELECT name, csrf FROM web_displays WHERE session_hash = ?", (_digest(token),)
            ).fetchone()
        return None if row is None else Session(row[0], Role.DISPLAY, row[1], math.inf)

    def displays(self) -> list[Display]:
        with self._lock:
            rows = self.db.execute(
                "SELECT name, created, opened, invite_hash IS NOT NULL FROM web_displays "
                "ORDER BY name"
            ).fetchall()
        return [Display(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def close_display(self, token: str | None) -> None:
        """The screen logged out: its session ends; the display stays, to be issued again."""
        if token:
            with self._lock:
                self.db.execute(
                    "UPDATE web_displays SET session_hash = NULL WHERE session_hash = ?",
                    (_digest(token),),
                )

    def revoke_display(self, name: str) -> bool:
        """Forget the display: its invitation and its session end at once."""
        with self._lock:
            n = self.db.execute("DELETE FROM web_displays WHERE name = ?", (name,)).rowcount
        return n > 0

    def close_session(self, token: str | None) -> None:
        if token:
            with self._lock:
                self.db.execute("DELETE FROM web_sessions WHERE token_hash = ?", (_digest(token),))


def csrf_ok(session: Session, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(session.csrf.encode(), header.encode())


@dataclass(frozen=True)
class Block:
    """Why a login is refused for now: "account" (this name from this address) or "address"
    (any name from this address), and when to try again."""

    scope: str
    retry_after_s: float


class LoginLimiter:
    """Failed logins counted per (name, address) and, with a higher cap, per address, so one
    person's typos do not lock out every operator behind the same address (one NAT, one
    proxy), while guessing many names from one address still stops.

    Counted in the shared store (`web_login_failures`), so every centre process behind a
    balancer enforces one limit: spreading guesses over them gains nothing. Times are the
    wall clock, the one the processes (and hosts) share."""

    def __init__(
        self,
        per_account: int = 5,
        per_address: int = 50,
        window_s: float = 300.0,
        where: Path | str = ":memory:",
    ) -> None:
        """`where`: the store (settings.store_location); by default a memory of its own."""
        self.per_account = per_account
        self.per_address = per_address
        self.window_s = window_s
        self.db = open_part(where, "accounts", _SCHEMA, _MIGRATIONS)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str]:
        # Names are at most 64 characters; a longer one cannot log in, and must not cost more.
        # The address (no spaces) first, so no name can forge another key.
        return f"account {address} {name[:65]}", f"address {address}"

    def _recent(self, key: str, now: float) -> list[float]:
        rows = self.db.execute(
            "SELECT at FROM web_login_failures WHERE key = ? AND at > ? ORDER BY at",
            (key, now - self.window_s),
        )
        return [float(r[0]) for r in rows]

    def blocked(
        self, name: str, address: str, now: float | None = None, *, locked: bool = False
    ) -> Block | None:
        at = time.time() if now is None else now
        if not locked:
            with self._lock:
                return self.blocked(name, address, at, locked=True)
        account, addr = self._keys(name, address)
        for key, cap in ((account, self.per_account), (addr, self.per_address)):
            seen = self._recent(key, at)
            if len(seen) >= cap:
                # Free again when the oldest failure that keeps it at the cap expires.
                oldest = seen[len(seen) - cap]
                return Block(key.split(" ", 1)[0], max(0.0, oldest + self.window_s - at))
        return None

    def begin(self, name: str, address: str, now: float | None = None) -> Block | float:
        """A login attempt starts: its Block, or the time it was counted at. The attempt
        counts as failed from now until `succeeded(..., began)`: checked only after the
        password hash (tens of ms, on a thread), concurrent attempts would all pass a check
        that none of them had yet failed. One write transaction, so attempts at two centre
        processes at once are counted one after the other too."""
        at = time.time() if now is None else now
        with self._lock, self.db.transaction():
            block = self.blocked(name, address, at, locked=True)
            if block is None:
                self._count(name, address, at)
        return at if block is None else block

    def failed(self, name: str, address: str, now: float | None = None) -> None:
        at = time.time() if now is None else now
        with self._lock, self.db.transaction():
            self._count(name, address, at)

    def _count(self, name: str, address: str, at: float) -> None:
        self.db.executemany(
            "INSERT INTO web_login_failures (key, at) VALUES (?, ?)",
            [(key, at) for key in self._keys(name, address)],
        )
        # What no window counts any more: a name-spraying client costs no lasting rows.
        self.db.execute("DELETE FROM web_login_failures WHERE at <= ?", (at - self.window_s,))

    def succeeded(self, name: str, address: str, began: float | None = None) -> None:
        # Only this name's count: a success must not reset the address's cap, or one valid
        # account would let its holder guess the others' passwords without limit. The
        # attempt itself (counted at `began`) was no failure after all.
        account, addr = self._keys(name, address)
        with self._lock, self.db.transaction():
            self.db.execute("DELETE FROM web_login_failures WHERE key = ?", (account,))
            if began is not None:
                self.db.execute(
                    "DELETE FROM web_login_failures WHERE id IN (SELECT id FROM"
                    " web_login_failures WHERE key = ? AND at = ? LIMIT 1)",
                    (addr, began),
                )
