"""The dashboard's HTTP side (starlette): the static page, login and logout, the fleet as
JSON, a site's detail, the event stream (SSE), and operator commands.

Every /api route but login needs a session cookie; every POST but login also needs the
session's CSRF token in X-CSRF-Token. A wall screen's display session (accounts.py) may read
everything and POST nothing but logout: refused in `guarded`, before any handler, so a route
added later is covered too. Every POST must be JSON: a cross-site form cannot send
that content type without a CORS preflight, which this app never grants (that covers the
login form, which has no session yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.centre.settings import CentreSettings
from agent.centre.store.base import driver_errors, unavailable_errors
from agent.centre.web import live, metrics
from agent.centre.web.accounts import Accounts, Block, LoginLimiter, Role, Session, csrf_ok
from agent.centre.web.alerts import Desk, Refused, contact_from_form, parse_days
from agent.centre.web.commands import MAX_SITES, OFFERED, Commander, CommandRefused
from agent.i18n import LANGUAGES, Lang
from agent.messages import Message as Text
from agent.messages import catalogue, fields, message, render

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "ea_session"
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_THROTTLED = "page.login.throttled"
_THROTTLED_ADDRESS = "page.login.throttled_address"
_CSRF = "page.error.csrf"
_VIEWER = "page.error.viewer"
_DISPLAY = "page.error.display"
_DISPLAY_INVALID = "page.display.invalid"
# Browsers cap a cookie's life at 400 days; the display session itself ends only when revoked.
DISPLAY_COOKIE_S = 400 * 86400
_LOGIN_REQUIRED = "page.error.login_required"
_DATABASE_DOWN = "page.error.database_down"
_SEND_JSON = "page.error.send_json"
_NO_COMMANDS = "page.error.no_command_connection"
_COMMANDS_OFF = "page.commands.off"
_BAD_SITES = "page.error.bad_sites"
_UNKNOWN_SITE = "page.error.unknown_site"
_WRONG_LOGIN = "page.login.wrong"
_NO_REPORT = "page.error.no_report"
# The session report's downloads (/api/report/<session>.<kind>): kind -> media type.
_REPORT_TYPES = {
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
# The ids the page renders itself: its own, and the fleet's (conditions, statuses, problems).
# Anything else it shows arrives rendered per language (`*_by_lang`): only the server's
# renderer knows format specs, nested messages and lists, and the page needs no second one.
PAGE_AREAS = ("page.", "page_alerts.", "fleet.")
_OPERATOR_ONLY = "page_alerts.error.operator_only"
_STORE_FAILED = "page_alerts.error.store"
_NO_KEY = "page_alerts.error.no_key"


def page_catalogue() -> bytes:
    """The page's texts as JSON, {id: {"en": ..., "vi": ..., "en_one"?: ...}}, made from
    the one catalogue; refused at start if an entry uses more than plain {name} fields (the
    page's renderer fills only those)."""
    out: dict[str, dict[str, str]] = {}
    for msg_id, entry in catalogue().items():
        if not msg_id.startswith(PAGE_AREAS):
            continue
        for text in entry.values():
            if any(f"{{{name}}}" not in text for name in fields(text)):
                raise ValueError(f"{msg_id}: the page fills only plain {{name}} fields")
        out[msg_id] = {k: v for k, v in entry.items() if k in (*LANGUAGES, "en_one")}
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Services:
    settings: CentreSettings
    accounts: Accounts
    hub: live.Hub
    watch: live.FleetWatch
    commander: Commander | None = None
    limiter: LoginLimiter | None = None
    desk: Desk | None = None  # the alerts' stores; made by create_app when not given


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status, headers={"Cache-Control": "no-store"})


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def by_lang(msg: Text) -> dict[str, str]:
    return {lang: render(msg, lang) for lang in LANGUAGES}


def _error(status: int, msg: Text | str, **extra: Any) -> JSONResponse:
    """`error` in English (logs, scripts), `error_by_lang` for the page, and `code` (the
    message's id) with `extra` for scripts that branch on it. A plain string is the English
    of a refusal not yet said as a message: the page shows it as it is."""
    if isinstance(msg, str):
        return _json({"error": msg, **extra}, status)
    plain = {k: v for k, v in msg.params.items() if isinstance(v, str | int | float)}
    body = {"error": msg.text, "code": msg.id, "error_by_lang": by_lang(msg), **plain, **extra}
    return _json(body, status)


def _refused(exc: Refused) -> JSONResponse:
    extra = {"hint_by_lang": by_lang(exc.hint)} if exc.hint is not None else {}
    return _error(exc.status, exc.msg, **extra)


Handler = Callable[[Request], Awaitable[Response]]


def create_app(svc: Services) -> Starlette:  # noqa: PLR0915 - routes close over svc
    s = svc.settings
    unavailable = unavailable_errors()
    database_errors = driver_errors()
    limiter = svc.limiter or LoginLimiter(
        s.web_login_failures,
        s.web_login_failures_per_address,
        s.web_login_window_s,
        s.store_location,
    )

    def session_of(request: Request) -> Session | None:
        return svc.accounts.session(request.cookies.get(COOKIE))

    async def read_json(request: Request) -> dict[str, Any] | None:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return None
        try:
            data = await request.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def guarded(handler: Callable[[Request, Session], Awaitable[Response]],
                post: bool = False) -> Handler:  # fmt: skip
        async def wrapped(request: Request) -> Response:
            session = await asyncio.to_thread(session_of, request)
            if session is None:
                return _error(401, message(_LOGIN_REQUIRED))
            if read_only_refused(request, session):
                return _error(403, message(_DISPLAY))
            if post and not csrf_ok(session, request.headers.get("x-csrf-token")):
                return _error(403, message(_CSRF))
            return await handler(request, session)

        return wrapped

    # ---- pages and login ----------------------------------------------------------------

    def read_only_refused(request: Request, session: Session) -> bool:
        return (
            session.role is Role.DISPLAY
            and request.method not in {"GET", "HEAD"}
            and request.url.path != "/api/logout"
        )

    async def index(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    texts = page_catalogue()

    async def page_texts(_request: Request) -> Response:
        return Response(texts, media_type="application/json")

    def me_json(session: Session) -> dict[str, Any]:
        commander = svc.commander
        off = "no command connection" if commander is None else commander.unavailable
        off_msg = message(_NO_COMMANDS) if commander is None else None
        if commander is not None and commander.unavailable_msg is not None:
            off_msg = message(_COMMANDS_OFF, why=commander.unavailable_msg)
        return {
            "name": session.name,
            "role": session.role.value,
            "csrf": session.csrf,
            "can_command": session.can_command and not off,
            "commands_off": off,
            # in the page's language
            "commands_off_by_lang": by_lang(off_msg) if off_msg else None,
            "actions": list(OFFERED),
            "max_sites": MAX_SITES,  # "select all shown" stops there
            "expires": None if math.isinf(session.expires) else session.expires,
        }

    async def login(request: Request) -> Response:
        data = await read_json(request)
        if data is None:
            return _error(415, message(_SEND_JSON))
        name, password = str(data.get("name", "")), str(data.get("password", ""))
        # The connection's peer, or what a trusted proxy says it is (web_trusted_proxies).
        addr = request.client.host if request.client else "?"
        block = limiter.begin(name, addr)  # counted as failed until the password is right
        if isinstance(block, Block):
            minutes = max(1, math.ceil(block.retry_after_s / 60))
            said = (
                message(_THROTTLED, count=minutes)
                if block.scope == "account"
                else message(_THROTTLED_ADDRESS, count=minutes)
            )
            response = _error(429, said)
            response.headers["Retry-After"] = str(math.ceil(block.retry_after_s))
            return response
        role = await asyncio.to_thread(svc.accounts.verify, name, password)
        if role is None:
            log.warning("dashboard: failed login for %r from %s", name[:64], addr)
            return _error(401, message(_WRONG_LOGIN))
        limiter.succeeded(name, addr, block)
        lifetime = svc.settings.web_session_hours * 3600
        token, session = await asyncio.to_thread(svc.accounts.open_session, name, lifetime)
        log.info("dashboard: %s (%s) logged in from %s", name, role.value, addr)
        response = _json(me_json(session))
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(lifetime),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def display_login(request: Request) -> Response:
        """A wall screen trades its one-time invitation (`centre display issue`) for its
        display session's cookie."""
        data = await read_json(request)
        if data is None:
            return _error(415, message(_SEND_JSON))
        addr = request.client.host if request.client else "?"
        block = limiter.begin("(display)", addr)
        if isinstance(block, Block):
            minutes = max(1, math.ceil(block.retry_after_s / 60))
            response = _error(429, message(_THROTTLED_ADDRESS, count=minutes))
            response.headers["Retry-After"] = str(math.ceil(block.retry_after_s))
            return response
        opened = await asyncio.to_thread(svc.accounts.open_display, str(data.get("token", "")))
        if opened is None:
            log.warning("dashboard: an unknown or used display invitation from %s", addr)
            return _error(401, message(_DISPLAY_INVALID))
        limiter.succeeded("(display)", addr, block)
        token, session = opened
        log.info("dashboard: display %s opened from %s", session.name, addr)
        response = _json(me_json(session))
        response.set_cookie(
            COOKIE,
            token,
            max_age=DISPLAY_COOKIE_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def logout(request: Request, session: Session) -> Response:
        token = request.cookies.get(COOKIE)
        if session.role is Role.DISPLAY:
            await asyncio.to_thread(svc.accounts.close_display, token)
        else:
            await asyncio.to_thread(svc.accounts.close_session, token)
        response = _json({"ok": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    async def me(_request: Request, session: Session) -> Response:
        return _json(me_json(session))

    # ---- the fleet ----------------------------------------------------------------------

    async def fleet_json(_request: Request, _session: Session) -> Response:
        if not svc.watch.ticks:
            await asyncio.to_thread(svc.watch.refresh)
        return _json(svc.watch.snapshot())

    async def site_json(request: Request, _session: Session) -> Response:
        site_id = request.path_params["site_id"]
        replies = svc.commander.log.recent(site_id) if svc.commander else []
        detail = await asyncio.to_thread(svc.watch.detail, site_id, replies)
        if detail is None:
            return _error(404, message(_UNKNOWN_SITE, site=site_id))
        return _json(detail)

    async def events(request: Request, session: Session) -> Response:
        token = request.cookies.get(COOKIE)
        hello = live.sse("hello", {"name": session.name, "ticks": svc.watch.ticks})

        def still_allowed() -> bool:
            try:
                return svc.accounts.session(token) is not None
            except unavailable:
                # The store cannot say now: the open page keeps its stream (and with it the
                # banner saying the database is away) rather than turn into "disconnected".
                return True

        return StreamingResponse(
            svc.hub.stream([hello], still_allowed),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # ---- the session report -------------------------------------------------------------

    async def report_file(request: Request, _session: Session) -> Response:
        from agent.centre.report import document, export, read  # noqa: PLC0415 - on demand

        session_id, _, kind = request.path_params["name"].rpartition(".")
        if kind not in _REPORT_TYPES or not session_id:
            return _error(404, message(_NO_REPORT, session=request.path_params["name"]))
        lang: Lang = "en" if request.query_params.get("lang") == "en" else "vi"
        rep = await asyncio.to_thread(read.read_report, s.store_location, session_id, time.time())
        if not rep.known:
            return _error(404, message(_NO_REPORT, session=session_id))
        if kind == "csv":
            body = export.to_csv(rep, lang)
        else:
            page = document.to_html(rep, "vi")  # the printable document is for the province
            try:
                body = page.encode() if kind == "html" else await asyncio.to_thread(
                    document.to_pdf, page)  # fmt: skip
            except document.ReportError as exc:
                hint = by_lang(exc.hint_msg) if exc.hint_msg else None
                return _error(503, exc.msg or exc.message, hint_by_lang=hint)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", session_id)
        return Response(body, media_type=_REPORT_TYPES[kind], headers={
            "Content-Disposition": f'attachment; filename="report-{name}.{kind}"',
            "Cache-Control": "no-store"})  # fmt: skip

    # ---- commands -----------------------------------------------------------------------

    async def command(request: Request, session: Session) -> Response:
        if not session.can_command:
            return _error(403, message(_VIEWER))
        if svc.commander is None:
            return _error(503, message(_NO_COMMANDS))
        data = await read_json(request)
        if data is None:
            return _error(415, message(_SEND_JSON))
        sites = data.get("sites")
        # Ids are text that SQLite can store: a lone surrogate ("\ud800" in the JSON) or a
        # non-string would raise deep in the store, a 500 after the command was queued.
        if not isinstance(sites, list) or not all(
            isinstance(s, str) and s.isprintable() and _utf8(s) for s in sites
        ):
            return _error(400, message(_BAD_SITES))
        action = str(data.get("action", ""))
        try:
            command_id = await asyncio.to_thread(
                svc.commander.submit, session.name, action, sites, svc.watch.known
            )
        except CommandRefused as exc:  # always a message: said in the page's language
            return _error(400, exc.msg, **exc.extra)
        return _json({"command_id": command_id, "sites": len(set(sites) - {""})}, 202)

    # ---- alerts, incidents, contacts -----------------------------------------------------

    if svc.desk is None:
        svc.desk = Desk(s.store_location, lambda: svc.watch.labels.full)
    desk = svc.desk

    async def at_desk(work: Callable[[Any], Any], status: int = 200) -> Response:
        """Run `work` on the desk's thread; its refusal, or a database that cannot be
        read just now, said in the reader's language (never a traceback)."""
        try:
            return _json(await desk.run(work), status)
        except Refused as exc:
            return _refused(exc)
        except database_errors as exc:  # either engine's, not SQLite's alone
            log.warning("dashboard: the alerts' tables: %s", exc)
            return _error(503, message(_STORE_FAILED))
        except Exception:  # a row this release cannot read (a newer one's, damaged by hand)
            log.exception("dashboard: reading the alerts' tables failed")
            return _error(500, message(_STORE_FAILED))

    def operator(handler: Callable[[Request, Session], Awaitable[Response]]) -> Callable[
            [Request, Session], Awaitable[Response]]:  # fmt: skip
        async def wrapped(request: Request, session: Session) -> Response:
            if session.role is not Role.OPERATOR:
                return _error(403, message(_OPERATOR_ONLY))
            return await handler(request, session)

        return wrapped

    async def alerts_json(_request: Request, _session: Session) -> Response:
        return await at_desk(desk.alerts)

    async def ack(request: Request, session: Session) -> Response:
        data = await read_json(request)
        if data is None:
            return _error(415, message(_SEND_JSON))
        key = data.get("key")
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        if not isinstance(key, str) or not key.strip() or not _utf8(key):
            return _error(400, message(_NO_KEY))
        log.info("dashboard: %s acknowledged %s", session.name, key[:200])
        return await at_desk(lambda st: desk.ack(st, key, session.name))

    async def incidents_json(request: Request, _session: Session) -> Response:
        try:
            days = parse_days(request.query_params.get("days"))
        except Refused as exc:
            return _refused(exc)
        return await at_desk(lambda st: desk.incidents(st, days))

    async def contacts_json(_request: Request, _session: Session) -> Response:
        return await at_desk(desk.contacts)

    async def contact_put(request: Request, session: Session) -> Response:
        data = await read_json(request)
        if data is None:
            return _error(415, message(_SEND_JSON))
        try:
            contact = contact_from_form(data)
        except Refused as exc:
            return _refused(exc)
        replace = data.get("replace") is True
        log.info("dashboard: %s %s contact %s", session.name,
                 "replaced" if replace else "added", contact.id)  # fmt: skip
        return await at_desk(lambda st: desk.put_contact(st, contact, replace), 201)

    async def contact_enabled(request: Request, session: Session) -> Response:
        data = await read_json(request)
        if data is None:
            return _error(415, message(_SEND_JSON))
        contact_id, enabled = request.path_params["contact_id"], data.get("enabled") is True
        log.info("dashboard: %s %s contact %s", session.name,
                 "enabled" if enabled else "disabled", contact_id[:200])  # fmt: skip
        return await at_desk(
            lambda st: desk.set_enabled(st, contact_id, enabled).model_dump(mode="json")
        )

    async def contact_remove(request: Request, session: Session) -> Response:
        contact_id = request.path_params["contact_id"]
        log.info("dashboard: %s removed contact %s", session.name, contact_id[:200])
        return await at_desk(lambda st: desk.remove_contact(st, contact_id))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        svc.hub.attach(asyncio.get_running_loop())
        stop = asyncio.Event()
        task = asyncio.create_task(svc.watch.run(stop))
        try:
            yield
        finally:
            stop.set()
            await task

    routes = [
        Route("/", index),
        Route("/wall", index),
        Route("/texts.json", page_texts),
        Route("/api/login", login, methods=["POST"]),
        Route("/api/display", display_login, methods=["POST"]),
        Route("/api/logout", guarded(logout, post=True), methods=["POST"]),
        Route("/api/me", guarded(me)),
        Route("/api/fleet", guarded(fleet_json)),
        Route("/api/site/{site_id}", guarded(site_json)),
        Route("/api/events", guarded(events)),
        Route("/api/report/{name}", guarded(report_file)),
        Route("/api/command", guarded(command, post=True), methods=["POST"]),
        # No session: a scrape brings the bearer token of web_metrics_token, if one is set.
        Route("/metrics", metrics.endpoint(s.web_metrics_token, svc.watch, s.store_location)),
        Route("/api/alerts", guarded(alerts_json)),
        Route("/api/alerts/ack", guarded(operator(ack), post=True), methods=["POST"]),
        Route("/api/incidents", guarded(incidents_json)),
        # Addresses and phone chats are personal: the directory is for operators only.
        Route("/api/contacts", guarded(operator(contacts_json))),
        Route("/api/contacts", guarded(operator(contact_put), post=True), methods=["POST"]),
        Route(
            "/api/contacts/{contact_id}/enabled",
            guarded(operator(contact_enabled), post=True),
            methods=["POST"],
        ),
        Route(
            "/api/contacts/{contact_id}",
            guarded(operator(contact_remove), post=True),
            methods=["DELETE"],
        ),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(_Hardened)],
        exception_handlers=dict.fromkeys(unavailable, _database_down),
    )


async def _database_down(_request: Request, exc: Exception) -> Response:
    """The store is away (the server stopped, the disk full): a clear answer, not a 500 and
    its traceback; the page's banner says it too (FleetWatch.centre_json)."""
    log.warning("dashboard: the database is unavailable: %s", str(exc).strip().split("\n")[0])
    return _error(503, message(_DATABASE_DOWN))


class _Hardened:
    """Headers on every response (the page, its static files, the API)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
