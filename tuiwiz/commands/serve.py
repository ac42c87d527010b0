"""`tuiwiz serve`: the wizard (or one run's dashboard) in a browser, private by default.

Listens on 127.0.0.1 unless --host says otherwise; every request needs the token of the URL it
prints. Each browser tab is its own app process; closing one never touches training.
The server lives in tuiwiz/serve/ and is imported only here, when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import getpass
import ipaddress
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from tuiwiz.errors import TuiwizError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_SESSIONS = 4
DEFAULT_IDLE_MINUTES = 60.0


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="the wizard (or a run's dashboard) in a browser, behind a token",
        description="Serve the wizard, or one run's dashboard, to a browser. Each tab is its "
        "own session; closing it never stops training. Every request needs the token in the "
        "printed URL.",
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; "
        "reach it from a laptop through an SSH tunnel)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--preset", metavar="PRESET", help="open the wizard prefilled, at Review")
    what.add_argument("--attach", metavar="RUN", help="serve the live dashboard of this run")
    p.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="keep the token in FILE (created owner-only when missing) so the URL stays the "
        "same across restarts",
    )
    p.add_argument(
        "--max-sessions",
        type=int,
        default=DEFAULT_SESSIONS,
        metavar="N",
        help=f"browser sessions at once (default {DEFAULT_SESSIONS}); more get a page saying so",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_MINUTES,
        metavar="MINUTES",
        help=f"close a session after this long without input (default "
        f"{DEFAULT_IDLE_MINUTES:g}; 0 never)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    _check_numbers(args)
    from tuiwiz.serve import access

    token = access.token_from_file(args.token_file) if args.token_file else access.new_token()
    plan = _session(args)

    from tuiwiz.serve.server import CannotListen, ServeConfig, serve

    config = ServeConfig(
        app_argv=plan.argv,
        token=token,
        title=plan.title,
        max_sessions=args.max_sessions,
        idle_timeout=args.idle_timeout * 60 or None,
        note=_note,
    )

    def ready(port: int) -> None:
        if plan.needs_demo_model:
            _build_demo_model()
        _announce(args.host, port, token, plan.what, config)

    import asyncio

    try:
        open_sessions = asyncio.run(serve(config, args.host, args.port, ready))
    except CannotListen as e:
        raise TuiwizError(_bind_problem(e.error, args.host, args.port)) from None
    closed = f"; {open_sessions} open session(s) closed" if open_sessions else ""
    print(f"tuiwiz serve: stopped{closed}. Runs keep training.", flush=True)
    return 0


def _note(line: str) -> None:
    """A session event on the server's output; a closed output (a pipe whose reader left)
    must not take the server down."""
    with contextlib.suppress(OSError):
        print(f"tuiwiz serve: {line}", flush=True)


def _check_numbers(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise TuiwizError(f"--port {args.port}: give a port from 1 to 65535 (0 picks a free one)")
    if args.max_sessions < 1:
        raise TuiwizError(f"--max-sessions {args.max_sessions}: allow at least 1 session")
    if not args.idle_timeout >= 0:  # also refuses nan
        raise TuiwizError(f"--idle-timeout {args.idle_timeout}: give minutes >= 0 (0: never)")


@dataclass
class SessionPlan:
    argv: list[str]  # the command of one browser session
    what: str  # what the browser shows, in words
    title: str  # the page's title
    needs_demo_model: bool = False


def _session(args: argparse.Namespace) -> SessionPlan:
    """What each browser session runs. Bad input (a preset or run that does not exist) is one
    line here, before anything listens."""
    argv = [sys.executable, "-m", "tuiwiz.serve.session"]
    if args.attach:
        from tuiwiz.train.registry import resolve

        run_dir = resolve(args.attach).path
        return SessionPlan(
            argv + ["--attach", str(run_dir)],
            f"the dashboard of run {run_dir.name}",
            f"tuiwiz: {run_dir.name}",
        )
    if args.preset:
        from tuiwiz import presets
        from tuiwiz.bundled import DEMO_MODEL

        resolved, path = presets.load(args.preset)
        return SessionPlan(
            argv + ["--preset", str(path)],
            f"the wizard on preset {path.stem}",
            f"tuiwiz: {path.stem}",
            needs_demo_model=resolved["model"]["name_or_path"] == DEMO_MODEL,
        )
    return SessionPlan(argv, "the wizard", "tuiwiz")


def _build_demo_model() -> None:
    from tuiwiz.demo import ensure_demo_model, is_demo_model_built

    if not is_demo_model_built():
        ensure_demo_model(lambda message: print(f"tuiwiz serve: {message}", flush=True))


def _announce(host: str, port: int, token: str, what: str, config) -> None:
    """What to open, and how to reach it from a laptop. The URL is the only place the token is
    ever printed."""
    from tuiwiz.serve.server import minutes

    local = _is_loopback(host)
    wildcard = host in ("0.0.0.0", "::", "")
    if not local:
        print(
            f"tuiwiz serve: warning: listening on {host} lets other machines reach this server, "
            "and its traffic (the token, your keys, the screen) is not encrypted. Prefer the "
            "default --host 127.0.0.1 with an SSH tunnel, or put it behind HTTPS.",
            file=sys.stderr,
            flush=True,
        )
    url_host = "127.0.0.1" if wildcard else host
    if ":" in url_host:
        url_host = f"[{url_host}]"
    user, machine = getpass.getuser(), socket.gethostname()
    print(
        f"tuiwiz serve: {what}, in a browser (each tab is its own session)\n"
        f"\n  open   http://{url_host}:{port}/?token={token}\n"
        f"\n  From a laptop, forward the port first, then open that URL there:"
        f"\n         ssh -L {port}:{url_host}:{port} {user}@{machine}",
        flush=True,
    )
    if wildcard:
        print(
            f"  From the network: the same URL with {machine} (or this machine's address) in "
            "place of 127.0.0.1.",
            flush=True,
        )
    timeout = config.idle_timeout
    idle = f"; one without input for {minutes(timeout)} is closed" if timeout else ""
    print(
        f"\n  Up to {config.max_sessions} sessions at once{idle}. "
        "Ctrl+C stops the server; runs keep training.\n",
        flush=True,
    )


def _is_loopback(host: str) -> bool:
    """Whether every address `host` stands for is this machine's loopback."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0].split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def _bind_problem(e: OSError, host: str, port: int) -> str:
    if isinstance(e, socket.gaierror):
        return (
            f"--host {host}: no such address here; use 127.0.0.1 (the default, this machine "
            "only) or 0.0.0.0 (every interface)"
        )
    if e.errno == errno.EADDRINUSE:
        return (
            f"port {port} is in use (another tuiwiz serve?); pick another with --port, "
            f"or stop what listens there (ss -ltnp 'sport = :{port}')"
        )
    if e.errno == errno.EADDRNOTAVAIL:
        return (
            f"--host {host}: not an address of this machine; use 127.0.0.1 (the default) "
            "or 0.0.0.0 (every interface)"
        )
    if e.errno == errno.EACCES:
        return f"port {port} needs administrator rights; use one above 1023 (e.g. --port 8000)"
    return f"cannot listen on {host}:{port}: {e.strerror or e}"
