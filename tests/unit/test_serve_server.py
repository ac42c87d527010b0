"""The server of `tuiwiz serve`, with a small stand-in app that speaks the web driver's protocol:
the token check, sessions and their limits, idle and stuck apps, and stopping."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tuiwiz.serve import access
from tuiwiz.serve.server import CLOSE_APP_FAILED, CLOSE_BUSY, CLOSE_IDLE, ServeConfig, TuiwizServer

pytestmark = pytest.mark.anyio

TOKEN = access.new_token()
COOKIE = {"Cookie": f"{access.cookie_name(0)}={TOKEN}"}

# Speaks textual-serve's protocol: "__GANGLION__", then packets (kind, 4-byte size, payload).
# mode: "normal" echoes keys and quits when asked, "stubborn" ignores the request to quit,
# "crash" fails at once.
FAKE_APP = r"""
import json, os, sys, time
marker, mode = sys.argv[1], sys.argv[2]
open(os.path.join(marker, f"started-{os.getpid()}"), "w").close()
out, inp = sys.stdout.buffer, sys.stdin.buffer
def packet(kind, payload):
    out.write(kind + len(payload).to_bytes(4, "big") + payload)
    out.flush()
out.write(b"__GANGLION__\n")
packet(b"D", b"hello from the app")
if mode == "crash":
    sys.exit(3)
while True:
    kind = inp.read(1)
    if not kind:
        break
    payload = inp.read(int.from_bytes(inp.read(4), "big"))
    if kind == b"D":
        packet(b"D", b"echo:" + payload)
    elif json.loads(payload)["type"] == "quit" and mode != "stubborn":
        packet(b"M", json.dumps({"type": "exit"}).encode())
        break
if mode == "stubborn":
    time.sleep(120)
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiohttp runs on asyncio


@pytest.fixture
def fake_app(tmp_path: Path) -> Callable[[str], list[str]]:
    script = tmp_path / "fake_app.py"
    script.write_text(FAKE_APP)
    (tmp_path / "started").mkdir()
    return lambda mode: [sys.executable, str(script), str(tmp_path / "started"), mode]


def started(tmp_path: Path) -> list[int]:
    return [int(p.name.split("-")[1]) for p in (tmp_path / "started").iterdir()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.02)


class Served:
    def __init__(self, config: ServeConfig) -> None:
        self.notes: list[str] = []
        config.note = self.notes.append
        self.server = TuiwizServer(config, port=0)
        self.client = TestClient(TestServer(self.server.make_app()))

    async def __aenter__(self) -> Served:
        await self.client.start_server()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.close()

    async def session(self, headers: dict[str, str] | None = None):
        ws = await self.client.ws_connect("/ws?width=90&height=30", headers=headers or COOKIE)
        message = await ws.receive(timeout=20)
        assert message.data == b"hello from the app"
        return ws


def config(argv: list[str], **kw) -> ServeConfig:
    return ServeConfig(app_argv=argv, token=TOKEN, **kw)


async def test_requests_without_the_token_are_refused_and_start_no_app(fake_app, tmp_path):
    wrong = {"Cookie": f"{access.cookie_name(0)}={access.new_token()}"}
    async with Served(config(fake_app("normal"))) as served:
        client = served.client
        for path in ("/", "/ws", "/static/js/textual.js", "/tuiwiz/page.js"):
            response = await client.get(path)
            assert response.status == 401, path
            assert "needs its token" in await response.text()
            assert (await client.get(path, headers=wrong)).status == 403, path
            response = await client.get(path + "?token=" + TOKEN[:-1], allow_redirects=False)
            assert response.status == 403, path
        for headers in (None, wrong):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect("/ws", headers=headers)
            assert refused.value.status in (401, 403)
        assert started(tmp_path) == []
        assert served.notes == []


async def test_first_visit_moves_the_token_into_a_cookie(fake_app):
    async with Served(config(fake_app("normal"))) as served:
        response = await served.client.get(f"/?token={TOKEN}&fontsize=20", allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == "/?fontsize=20"  # out of the address bar
        cookie = response.headers["Set-Cookie"]
        assert f"{access.cookie_name(0)}={TOKEN}" in cookie
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie

        page = await served.client.get("/", headers=COOKIE)
        assert page.status == 200
        text = await page.text()
        assert "/static/js/textual.js" in text and TOKEN not in text
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        script = await served.client.get("/static/js/textual.js", headers=COOKIE)
        assert script.status == 200


async def test_a_page_elsewhere_cannot_open_a_session_with_the_cookie(fake_app, tmp_path):
    async with Served(config(fake_app("normal"))) as served:
        headers = {**COOKIE, "Origin": "http://attacker.example"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await served.client.ws_connect("/ws", headers=headers)
        assert refused.value.status == 403
        assert started(tmp_path) == []


async def test_a_session_relays_keys_and_its_app_ends_with_the_tab(fake_app, tmp_path):
    async with Served(config(fake_app("normal"))) as served:
        ws = await served.session()
        await ws.send_json(["stdin", "q"])
        assert (await ws.receive(timeout=20)).data == b"echo:q"
        await ws.send_json(["ping", "42"])
        assert (await ws.receive_json(timeout=20)) == ["pong", "42"]
        [pid] = started(tmp_path)
        await ws.close()
        await until(lambda: not served.server.sessions, "the session to end")
        assert not alive(pid)
        assert served.notes == [
            "session 1 opened (1 of 4 in use)",
            "session 1 closed: the tab was closed",
        ]


async def test_sessions_beyond_the_limit_get_a_page_that_says_so(fake_app, tmp_path):
    async with Served(config(fake_app("normal"), max_sessions=1)) as served:
        first = await served.session()
        response = await served.client.get("/", headers=COOKIE)
        assert response.status == 503
        assert "All sessions are in use" in await response.text()
        second = await served.client.ws_connect("/ws", headers=COOKIE)
        message = await second.receive(timeout=20)
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == CLOSE_BUSY
        assert "in use" in message.extra
        assert len(started(tmp_path)) == 1  # no app for the refused one
        await first.close()
        await until(lambda: not served.server.sessions, "the first session to end")
        assert (await served.client.get("/", headers=COOKIE)).status == 200


async def test_a_session_without_input_is_closed(fake_app, tmp_path):
    async with Served(config(fake_app("normal"), idle_timeout=0.4)) as served:
        ws = await served.session()
        message = await ws.receive(timeout=20)
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == CLOSE_IDLE
        assert "without input" in message.extra
        await until(lambda: not served.server.sessions, "the session to end")
        assert not alive(started(tmp_path)[0])
        assert served.notes[-1] == "session 1 closed: no input for 0.4 seconds"


async def test_an_app_that_does_not_quit_is_killed(fake_app, tmp_path):
    async with Served(config(fake_app("stubborn"), stop_timeout=0.3)) as served:
        ws = await served.session()
        await ws.close()
        await until(lambda: not served.server.sessions, "the session to end")
        assert not alive(started(tmp_path)[0])


async def test_an_app_that_fails_ends_its_session_with_the_reason(fake_app):
    async with Served(config(fake_app("crash"))) as served:
        ws = await served.session()
        message = await ws.receive(timeout=20)
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == CLOSE_APP_FAILED
        assert "exit code 3" in message.extra
        await until(lambda: not served.server.sessions, "the session to end")
        assert "the app failed (exit code 3" in served.notes[-1]


async def test_stopping_the_server_ends_every_session(fake_app, tmp_path):
    served = Served(config(fake_app("normal")))
    async with served:
        await served.session()
        await served.session()
        assert len(served.server.sessions) == 2
        await served.client.server.close()  # the server stops while both tabs are open
    pids = started(tmp_path)
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)
    assert sorted(n for n in served.notes if "closed" in n) == [
        "session 1 closed: the server stopped",
        "session 2 closed: the server stopped",
    ]
