"""The web server of `tuiwiz serve`: one app process per browser session, behind a token.

Built on aiohttp, textual-serve's AppService (it runs one Textual app on the web driver and relays
its screen through a websocket) and textual-serve's browser client (static/js/textual.js). What
this adds to textual-serve's own server:

- every request must carry the token: `?token=` on the first visit, then a cookie (the address
  bar is cleaned by a redirect); without it, 401 or 403 and no app process;
- the app is started from an argument list, never through a shell;
- a limit on sessions at once (a page says so when it is reached), and sessions without input
  for a while are closed;
- no access log: the first request's URL carries the token.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import shlex
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import textual_serve
from aiohttp import WSCloseCode, WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

from tuiwiz import packaged
from tuiwiz.serve import access

TEXTUAL_SERVE_STATIC = Path(textual_serve.__file__).parent / "static"
OUR_STATIC = packaged.folder("serve/static")
HEARTBEAT = 15.0  # seconds: a browser that vanished (a laptop asleep) is noticed within ~2x this
CLOSE_IDLE, CLOSE_BUSY, CLOSE_APP_FAILED = 4000, 4001, 4002  # websocket codes of our own
COOKIE_DAYS = 30
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    # The terminal client injects its own <style>; everything else comes from this server.
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}


@dataclass
class ServeConfig:
    app_argv: list[str]  # the command of one session: [python, -m, tuiwiz.serve.session, ...]
    token: str
    title: str = "tuiwiz"
    max_sessions: int = 4
    idle_timeout: float | None = 3600.0  # seconds without input before a session is closed
    stop_timeout: float = 10.0  # seconds an app gets to quit when asked before it is killed
    note: Callable[[str], None] = print  # where session events are reported (never the token)


@dataclass
class Session:
    number: int
    ws: web.WebSocketResponse
    app: AppProcess | None = None
    last_input: float = field(default_factory=time.monotonic)
    ended: str = "the tab was closed"  # why it ended, for the server's output
    stopping: bool = False  # the server is stopping its app: what the app does next is expected

    def touch(self) -> None:
        self.last_input = time.monotonic()


class AppProcess(AppService):
    """textual-serve's AppService, started from an argument list (no shell) in a session of its
    own, so that Ctrl+C in the server's terminal reaches the server, which closes each app."""

    def __init__(
        self, argv: list[str], on_exit: Callable[[int], object], stop_timeout: float, **kwargs
    ) -> None:
        super().__init__(shlex.join(argv), **kwargs)
        self.argv = argv
        self.on_exit = on_exit
        self.stop_timeout = stop_timeout

    async def _open_app_process(self, width: int = 80, height: int = 24):
        process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
            start_new_session=True,
        )
        self._process, self._stdin = process, process.stdin
        return process

    async def run(self) -> None:
        await super().run()
        assert self._process is not None
        self.on_exit(await self._process.wait())

    async def stop_or_kill(self) -> None:
        """Ask the app to quit; kill it when it has not within `stop_timeout` seconds."""
        process, task = self._process, self._task
        if process is None:
            return
        if process.returncode is None:
            await self.send_meta({"type": "quit"})
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), self.stop_timeout)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        if task is not None:
            await task  # it ends with the app's output
            self._task = None


class TuiwizServer:
    def __init__(self, config: ServeConfig, port: int) -> None:
        self.config = config
        self.cookie = access.cookie_name(port)
        self.sessions: dict[int, Session] = {}
        self.numbers = itertools.count(1)
        self.downloads = DownloadManager()
        self._tasks: set[asyncio.Task] = set()
        self._idle_watch: asyncio.Task | None = None
        self.page = (OUR_STATIC / "index.html").read_text(encoding="utf-8")
        self.page = self.page.replace("$title", html.escape(config.title))

    # --- the application -------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.require_token])
        app.add_routes(
            [
                web.get("/", self.index),
                web.get("/ws", self.websocket),
                web.static("/static", TEXTUAL_SERVE_STATIC),
                web.static("/tuiwiz", OUR_STATIC),
            ]
        )
        app.on_response_prepare.append(self._headers)
        app.on_startup.append(self._start_idle_watch)
        app.on_shutdown.append(self._close_all)
        return app

    @property
    def full(self) -> bool:
        return len(self.sessions) >= self.config.max_sessions

    @web.middleware
    async def require_token(self, request: web.Request, handler) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None:
            if not access.matches(given, self.config.token):
                return refused(403)
            if not _is_websocket(request):
                return self._remember(request)
        else:
            cookie = request.cookies.get(self.cookie)
            if cookie is None:
                return refused(401)
            if not access.matches(cookie, self.config.token):
                return refused(403)
        if _is_websocket(request) and not _same_origin(request):
            return refused(403)
        return await handler(request)

    def _remember(self, request: web.Request) -> web.Response:
        """First visit: keep the token in a cookie and take it out of the address bar."""
        rest = [(k, v) for k, v in request.query.items() if k != "token"]
        location = request.path + ("?" + urlencode(rest) if rest else "")
        response = web.Response(status=303, headers={"Location": location})
        response.set_cookie(
            self.cookie,
            self.config.token,
            max_age=COOKIE_DAYS * 86400,
            path="/",
            httponly=True,
            samesite="Strict",
        )
        return response

    @staticmethod
    async def _headers(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)

    # --- pages -----------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        if self.full:
            return web.Response(status=503, text=self.busy_page(), content_type="text/html")
        return web.Response(text=self.page, content_type="text/html")

    def busy_page(self) -> str:
        return page(
            "All sessions are in use",
            f"{self._allows()} Close a tab that shows tuiwiz (training keeps running)"
            f"{self._idle()}, then reload this page. (`tuiwiz serve --max-sessions N` allows "
            "more.)",
        )

    def _allows(self) -> str:
        n = self.config.max_sessions
        if n == 1:
            return "This server allows one browser session at a time, and it is open."
        return f"This server allows {n} browser sessions at once, and all of them are open."

    def _idle(self) -> str:
        timeout = self.config.idle_timeout
        return (
            f", or wait: a session without input for {minutes(timeout)} closes" if timeout else ""
        )

    # --- sessions --------------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT)
        if self.full:  # a tab that loaded its page before the last free session was taken
            await ws.prepare(request)
            busy = f"All {self.config.max_sessions} sessions are in use; close one, then reload."
            await ws.close(code=CLOSE_BUSY, message=busy.encode())
            return ws
        session = Session(next(self.numbers), ws)
        self.sessions[session.number] = session  # counted before the first await
        try:
            await ws.prepare(request)
            session.app = AppProcess(
                self.config.app_argv,
                on_exit=lambda code: self._app_ended(session, code),
                stop_timeout=self.config.stop_timeout,
                write_bytes=ws.send_bytes,
                write_str=ws.send_str,
                close=lambda: self._app_quit(session),
                download_manager=self.downloads,
            )
            width = _query_int(request, "width", 80)
            height = _query_int(request, "height", 24)
            await session.app.start(width, height)
            self.config.note(
                f"session {session.number} opened "
                f"({len(self.sessions)} of {self.config.max_sessions} in use)"
            )
            await self._relay(session)
        finally:
            session.stopping = True
            # aiohttp may cancel this handler once the browser is gone: the app is stopped anyway.
            await asyncio.shield(self._keep(self._end(session)))
        return ws

    async def _end(self, session: Session) -> None:
        try:
            if session.app is not None:
                await session.app.stop_or_kill()
                self.config.note(f"session {session.number} closed: {session.ended}")
        finally:  # it counts against the limit until its app has ended
            del self.sessions[session.number]

    def _keep(self, coroutine) -> asyncio.Task:
        """A task of its own, referenced until done (asyncio keeps only weak references)."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _relay(self, session: Session) -> None:
        """The browser's keys, mouse and size, to the app (textual-serve's message format)."""
        app = session.app
        assert app is not None
        async for message in session.ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                kind, *payload = json.loads(message.data)
            except (ValueError, TypeError):
                continue  # not one of the client's messages
            if kind == "stdin" and payload and isinstance(payload[0], str):
                session.touch()
                await app.send_bytes(payload[0].encode("utf-8"))
            elif kind == "resize" and payload and isinstance(payload[0], dict):
                session.touch()
                size = payload[0]
                await app.set_terminal_size(
                    _clamp(size.get("width"), 80), _clamp(size.get("height"), 24)
                )
            elif kind == "ping" and payload:
                await session.ws.send_json(["pong", payload[0]])
            elif kind == "blur":
                await app.blur()
            elif kind == "focus":
                await app.focus()

    async def _app_quit(self, session: Session) -> None:
        """The app said it quits (Ctrl+Q, q on the dashboard): end its browser session."""
        if not session.stopping:
            session.ended = "the app quit"
        await session.ws.close()

    def _app_ended(self, session: Session, code: int) -> None:
        """The app process ended without being asked to: it failed, most likely."""
        if session.stopping or session.ws.closed:
            return
        if code == 0:
            session.ended = "the app quit"
            closing = session.ws.close()
        else:
            session.ended = f"the app failed (exit code {code}; its output is above)"
            reason = f"tuiwiz stopped with an error (exit code {code}); see the server's output."
            closing = session.ws.close(code=CLOSE_APP_FAILED, message=reason.encode())
        self._keep(closing)

    async def _start_idle_watch(self, app: web.Application) -> None:
        timeout = self.config.idle_timeout
        if timeout:
            self._idle_watch = self._keep(self._close_idle(timeout))

    async def _close_idle(self, timeout: float) -> None:
        while True:
            await asyncio.sleep(min(30.0, timeout / 4))
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if now - session.last_input > timeout and not session.ws.closed:
                    session.ended = f"no input for {minutes(timeout)}"
                    reason = f"Closed after {minutes(timeout)} without input. Runs keep training."
                    await session.ws.close(code=CLOSE_IDLE, message=reason.encode())

    async def _close_all(self, app: web.Application) -> None:
        if self._idle_watch is not None:
            self._idle_watch.cancel()
        for session in list(self.sessions.values()):
            if session.stopping or session.ws.closed:
                continue  # already ending, for its own reason
            session.ended = "the server stopped"
            message = b"The server stopped. Runs keep training."
            await session.ws.close(code=WSCloseCode.GOING_AWAY, message=message)
        # The handlers stop their apps once their socket is closed: wait for them.
        deadline = time.monotonic() + self.config.stop_timeout + 5
        while self.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


# --- running it -----------------------------------------------------------------------------
class CannotListen(Exception):
    """The address could not be bound (a port in use, a host that is not this machine's)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


async def serve(config: ServeConfig, host: str, port: int, ready: Callable[[int], None]) -> int:
    """Listen on host:port until SIGINT or SIGTERM. `ready(port)` runs once the socket is
    bound (port 0 picks a free one) and before any session can start. Raises OSError when the
    address cannot be bound. Returns how many sessions were open when it stopped."""
    server = TuiwizServer(config, port)
    runner = web.AppRunner(server.make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as e:
            raise CannotListen(e) from e
        bound = runner.addresses[0][1] if runner.addresses else port
        if bound != port:  # the cookie is named after the port the browser sees
            server.cookie = access.cookie_name(bound)
        ready(bound)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        return len(server.sessions)
    finally:
        await runner.cleanup()


# --- small helpers --------------------------------------------------------------------------
def minutes(seconds: float | None) -> str:
    if not seconds:
        return "never"
    if seconds < 60:
        return f"{seconds:g} seconds"
    value = seconds / 60
    return f"{value:g} minute" + ("" if value == 1 else "s")


def page(title: str, text: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>tuiwiz: {html.escape(title)}</title>"
        "<style>body{background:#0c181f;color:#eee;font:16px monospace;max-width:44em;"
        "margin:10vh auto;padding:0 1em;line-height:1.5}h1{font-size:1.2em}</style></head>"
        f"<body><h1>tuiwiz: {html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )


REFUSALS = {
    401: (
        "this address needs its token",
        "Open the whole URL that `tuiwiz serve` printed: it ends in ?token=... . Once opened, "
        "this browser remembers it.",
    ),
    403: (
        "this token is not the server's",
        "Open the URL that `tuiwiz serve` printed when it started: a restarted server has a new "
        "token, unless it keeps one with --token-file.",
    ),
}


def refused(status: int) -> web.Response:
    title, text = REFUSALS[status]
    return web.Response(status=status, text=page(title, text), content_type="text/html")


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _same_origin(request: web.Request) -> bool:
    """A page from elsewhere must not open sessions with this browser's cookie."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _query_int(request: web.Request, name: str, default: int) -> int:
    return _clamp(request.query.get(name), default)


def _clamp(value: object, default: int) -> int:
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return max(10, min(number, 1000))
