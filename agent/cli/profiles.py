"""`edge-agent profiles list|show NAME|test NAME --port P`: firmware profiles for technicians.

`profiles test` runs a profile's queries against a live device (a serial path, a socket://
URL, or nothing for cec) and exits with the monitoring-plugin codes: 0 ok, 1 warning,
2 failure, 3 could not run. None of these needs a settings file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.checks.model import ExitCode, Status
from agent.config import PathSettings, load_settings
from agent.errors import ConfigError, ProbeError, ProfileError
from agent.i18n import current_language, say, t
from agent.messages import Message, message, render_or
from agent.profiles.loader import list_profiles, load_profile, profile_path
from agent.profiles.model import Profile
from agent.runtime.status import STATUS_WORDS

if TYPE_CHECKING:
    from agent.profiles.verdict import Judgement

_EXIT = {
    Status.OK: ExitCode.OK,
    Status.WARN: ExitCode.WARNING,
    Status.FAIL: ExitCode.CRITICAL,
    Status.ERROR: ExitCode.CRITICAL,
    Status.SKIPPED: ExitCode.UNKNOWN,
}
PASSWORD_ENV = "EDGE_AGENT_PROFILE_PASSWORD"  # noqa: S105 - a variable name, not a secret


def _profiles_dir(args: argparse.Namespace) -> Path:
    if args.profiles_dir:
        return Path(args.profiles_dir)
    # Works before the settings file exists: that is when a technician needs it most.
    try:
        return load_settings(args.config).paths.profiles_dir
    except ConfigError:
        return PathSettings().profiles_dir


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")


def _word(status: Status) -> str:
    """A status as the technician's word (OK, KHÔNG ĐẠT...), as `edge-agent status` says it."""
    return say(STATUS_WORDS[status], current_language()).upper()


def _said(msg: Message | None, text: str) -> str:
    return render_or(msg, text, current_language())


def _columns(*cells: tuple[str, int]) -> str:
    """Cells padded to at least their width (a translated heading may be longer)."""
    return " ".join(f"{text:<{width}}" for text, width in cells).rstrip()


def _checks(profile: Profile) -> str:
    return ",".join(sorted({q.check for q in profile.queries.values()} - {"none"}))


def _list(args: argparse.Namespace) -> int:
    directory = _profiles_dir(args)
    rows: list[dict[str, Any]] = []
    for name in list_profiles(directory):
        try:
            p = load_profile(directory, name)
        except ProfileError as exc:
            error = _said(exc.msg, exc.message) if not args.json else exc.message
            rows.append({"name": name, "valid": False, "error": error})
            continue
        rows.append(
            {
                "name": name,
                "valid": True,
                "vendor": p.vendor,
                "family": p.family.kind,
                "transport": p.transport.describe(),
                "checks": _checks(p),
                "models": p.models,
            }
        )
    if args.json:
        _write(json.dumps({"profiles_dir": str(directory), "profiles": rows}, indent=2))
    elif not rows:
        _write(t("profilecli.none", directory=str(directory)))
    else:
        width = max(len(r["name"]) for r in rows) + 1
        _write(
            _columns(
                (t("profilecli.col.profile"), width),
                (t("profilecli.col.family"), 10),
                (t("profilecli.col.transport"), 20),
                (t("profilecli.col.checks"), 8),
                (t("profilecli.col.models"), 0),
            )
        )
        for r in rows:
            if not r["valid"]:
                invalid = t("profilecli.invalid", error=r["error"].splitlines()[0])
                _write(f"{r['name']:<{width}} {invalid}")
                continue
            more = [t("profilecli.more_models")] if len(r["models"]) > 3 else []
            models = ", ".join([*r["models"][:3], *more])
            _write(
                f"{r['name']:<{width}}  {r['family']:<10} {r['transport']:<20} "
                f"{r['checks']:<8} {models}"
            )
    return int(ExitCode.OK if all(r["valid"] for r in rows) else ExitCode.WARNING)


def _show(args: argparse.Namespace) -> int:
    directory = _profiles_dir(args)
    p = load_profile(directory, args.name)
    if args.json:
        _write(json.dumps(p.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return int(ExitCode.OK)
    fields = [
        (t("profilecli.show.vendor"), p.vendor),
        (t("profilecli.show.models"), ", ".join(p.models)),
        (t("profilecli.show.source"), p.source),
        (t("profilecli.show.family"), p.family.kind),
        (t("profilecli.show.transport"), p.transport.describe()),
    ]
    if p.login is not None:
        after = ", ".join(p.login.after) or t("profilecli.show.nothing")
        prompts = t(
            "profilecli.show.prompts",
            user=repr(p.login.user_prompt),
            password=repr(p.login.password_prompt),
            after=after,
        )
        fields.append((t("profilecli.show.login"), prompts))
    if p.notes:
        fields.append((t("profilecli.show.notes"), p.notes))
    label = max(len(k) for k, _ in fields) + 1
    lines = [f"{p.name}  ({profile_path(directory, p.name)})"]
    lines += [f"  {k + ':':<{label}} {v}" for k, v in fields]
    if p.min_firmware:
        lines.append("  " + t("profilecli.show.min_firmware", version=p.min_firmware))
    lines.append("")
    heads = (t("profilecli.col.query"), t("profilecli.col.check"), t("profilecli.col.required"))
    widths = (
        max(len(heads[0]), *(len(n) for n in p.queries)),
        max(7, len(heads[1])),
        max(3, len(heads[2])),
    )
    yes, no = t("profilecli.yes"), t("profilecli.no")
    lines.append("  " + _columns(*zip(heads, widths, strict=True), (t("profilecli.col.sends"), 0)))
    for name, q in p.queries.items():
        sends = q.send if q.send is not None else q.send_hex
        row = ((name, widths[0]), (q.check, widths[1]), (yes if q.required else no, widths[2]))
        lines.append("  " + _columns(*row, (str(sends), 0)))
        if q.unverified:
            unverified = t("profilecli.show.unverified", what=q.unverified)
            lines.append("  " + _columns(*(("", w) for w in widths), (unverified, 0)))
    _write("\n".join(lines))
    return int(ExitCode.OK)


def _test(args: argparse.Namespace) -> int:
    # Here, not at the top: every command builds this parser, and the session loads pyserial,
    # which neither the centre nor the idle daemon needs.
    from agent.profiles.session import Target, run_queries, target_message  # noqa: PLC0415
    from agent.profiles.verdict import judge  # noqa: PLC0415

    directory = _profiles_dir(args)
    p = load_profile(directory, args.name)
    names = args.query or p.health_queries()
    unknown = [n for n in names if n not in p.queries]
    if unknown:
        raise ProfileError(
            message("cli.profiles.no_query", profile=p.name, names=", ".join(unknown)),
            message("cli.profiles.its_queries", names=", ".join(p.queries)),
        )
    if args.port is None and p.transport.kind != "process":
        raise ProfileError(
            message("cli.profiles.give_port", profile=p.name, transport=p.transport.describe()),
            message("cli.profiles.port_examples"),
        )
    target = Target(
        port=args.port,
        device_id=args.id,
        username=args.username,
        password=args.password or os.environ.get(PASSWORD_ENV),
    )
    label = target_message(p, args.port)
    try:
        results = run_queries(p, target, names, deadline_s=args.timeout)
        judgement = judge(p, results, label)
    except ProbeError as exc:
        return _report_failure(args, p, exc)
    except ValueError as exc:  # e.g. a VISCA address outside 1..7
        raise ProfileError(
            message("cli.profiles.cannot_run", profile=p.name, error=str(exc)),
            message("cli.profiles.check_id"),
        ) from None
    _report(args, p, judgement, results_time={r.name: r.elapsed_s for r in results})
    return int(_EXIT[judgement.outcome.status])


def _header(p: Profile, args: argparse.Namespace) -> str:
    return t(
        "profilecli.test.header",
        profile=p.name,
        family=p.family.kind,
        transport=p.transport.describe(),
        port=args.port or t("profilecli.test.auto_port"),
    )


def _result(status: Status, reason: str, hint: str) -> None:
    _write(t("profilecli.test.result", status=_word(status), reason=reason))
    if hint:
        _write(t("profilecli.test.hint", hint=hint))


def _report(
    args: argparse.Namespace, p: Profile, judgement: Judgement, results_time: dict[str, float]
) -> None:
    outcome = judgement.outcome
    if args.json:
        _write(
            json.dumps(
                {
                    "profile": p.name,
                    "port": args.port,
                    "status": outcome.status.value,
                    "reason": outcome.reason,
                    "hint": outcome.hint,
                    "metrics": dict(outcome.metrics),
                    "queries": [
                        {
                            "name": v.name,
                            "status": v.status.value,
                            "text": v.text,
                            "hint": v.hint,
                            "fields": v.fields,
                            "elapsed_s": round(results_time.get(v.name, 0.0), 4),
                        }
                        for v in judgement.queries
                    ],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    _write(_header(p, args))
    query, status = t("profilecli.col.query"), t("profilecli.col.status")
    elapsed = t("profilecli.col.time")
    width = max([len(query), *(len(v.name) for v in judgement.queries)])
    words = {v.name: _word(v.status) for v in judgement.queries}
    status_width = max([6, len(status), *(len(w) for w in words.values())])
    time_width = max(6, len(elapsed))
    answer = t("profilecli.col.answer")
    _write(f"{query:<{width}}  {status:<{status_width}} {elapsed:>{time_width}}  {answer}")
    for v in judgement.queries:
        fields = " ".join(f"{k}={val}" for k, val in v.fields.items())
        # The query's own words are the device's answer or the profile's verdict on it.
        said = _said(getattr(v, "text_msg", None), v.text)
        text = said or t("profilecli.test.not_asked")
        group = p.queries[v.name].group
        if group and judgement.groups.get(group) not in (None, v.status):
            best = _word(judgement.groups[group])
            text += " (" + t("profilecli.test.alternatives", group=group, status=best) + ")"
        seconds = f"{results_time.get(v.name, 0.0):.2f}s"
        _write(
            f"{v.name:<{width}}  {words[v.name]:<{status_width}} {seconds:>{time_width}}  {text}"
            + (f"  [{fields}]" if fields and fields not in text else "")
        )
    _write("")
    hint = _said(outcome.hint_msg, outcome.hint) if outcome.hint else ""
    _result(outcome.status, _said(outcome.reason_msg, outcome.reason), hint)


def _report_failure(args: argparse.Namespace, p: Profile, exc: ProbeError) -> int:
    if args.json:
        _write(
            json.dumps(
                {
                    "profile": p.name,
                    "port": args.port,
                    "status": Status.FAIL.value,
                    "reason": exc.message,
                    "hint": exc.hint,
                    "metrics": {"profile": p.name, "reachable": False},
                    "queries": [],
                },
                indent=2,
            )
        )
    else:
        _write(_header(p, args))
        hint = _said(exc.hint_msg, exc.hint) if exc.hint else ""
        _result(Status.FAIL, _said(exc.msg, exc.message), hint)
    return int(ExitCode.CRITICAL)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    profiles = sub.add_parser(
        "profiles", help=t("cli.profiles.help"), description=t("cli.profiles.description")
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--profiles-dir", metavar=t("cli.metavar.dir"), help=t("cli.profiles.dir_help")
    )
    psub = profiles.add_subparsers(
        dest="profiles_command", required=True, metavar=t("cli.metavar.action")
    )
    json_help = t("cli.json_help")
    name, name_help = t("cli.metavar.name"), t("cli.profiles.name_help")

    lst = psub.add_parser("list", help=t("cli.profiles.list_help"), parents=[common])
    lst.add_argument("--json", action="store_true", help=json_help)
    lst.set_defaults(func=_list)

    show = psub.add_parser("show", help=t("cli.profiles.show_help"), parents=[common])
    show.add_argument("name", metavar=name, help=name_help)
    show.add_argument("--json", action="store_true", help=json_help)
    show.set_defaults(func=_show)

    test = psub.add_parser(
        "test",
        help=t("cli.profiles.test_help"),
        description=t("cli.profiles.test_description"),
        parents=[common],
    )
    test.add_argument("name", metavar=name, help=name_help)
    test.add_argument("--port", metavar=t("cli.metavar.port"), help=t("cli.profiles.port_help"))
    test.add_argument(
        "--id", type=int, default=1, metavar=t("cli.metavar.number"), help=t("cli.profiles.id_help")
    )
    test.add_argument(
        "--query",
        action="append",
        metavar=t("cli.metavar.query"),
        help=t("cli.profiles.query_help"),
    )
    test.add_argument(
        "--username", metavar=t("cli.metavar.user"), help=t("cli.profiles.username_help")
    )
    test.add_argument(
        "--password",
        metavar=t("cli.metavar.password"),
        help=t("cli.profiles.password_help", variable=PASSWORD_ENV),
    )
    test.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar=t("cli.metavar.seconds"),
        help=t("cli.profiles.timeout_help"),
    )
    test.add_argument("--json", action="store_true", help=json_help)
    test.set_defaults(func=_test)
