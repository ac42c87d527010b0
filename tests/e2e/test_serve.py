"""`tuiwiz serve` as a user runs it: what it prints, bad input, a real session, and Ctrl+C.
(The browser itself: test_serve_browser.py.)"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

URL = re.compile(r"http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]+)")


def tuiwiz(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuiwiz", *args], capture_output=True, text=True, timeout=timeout
    )


def one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert expected in result.stderr, result.stderr
    assert "token=" not in result.stdout


def test_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = tuiwiz("serve", "--port", str(port))
    one_line_error(result, f"port {port} is in use")
    assert "--port" in result.stderr


def test_a_host_that_is_not_this_machine_is_one_line():
    one_line_error(tuiwiz("serve", "--host", "192.0.2.1"), "not an address of this machine")


def test_a_world_readable_token_file_is_one_line(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("x" * 43)
    token_file.chmod(0o644)
    one_line_error(tuiwiz("serve", "--token-file", str(token_file)), "chmod 600")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "70000"], "--port 70000"),
        (["--max-sessions", "0"], "at least 1 session"),
        (["--idle-timeout", "-1"], "minutes >= 0"),
        (["--preset", "no-such-preset"], "no-such-preset"),
        (["--attach", "no-such-run"], "no run 'no-such-run'"),
    ],
)
def test_other_bad_input_is_one_line(args, expected):
    one_line_error(tuiwiz("serve", *args), expected)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_serve_prints_how_to_reach_it_and_keeps_the_token_out_of_its_output(tmp_path):
    server = subprocess.Popen(
        [sys.executable, "-m", "tuiwiz", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    output: list[str] = []
    try:
        assert server.stdout is not None
        for line in server.stdout:
            output.append(line)
            if "Ctrl+C stops the server" in line:
                break
        banner = "".join(output)
        port, token = URL.search(banner).groups()  # type: ignore[union-attr]
        assert len(token) * 6 >= 128
        assert f"ssh -L {port}:127.0.0.1:{port} " in banner
        assert "warning" not in banner  # loopback: nothing to warn about

        async def visit() -> int:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                async with http.get(base + "/") as refused:
                    assert refused.status == 401
                cookie = {"Cookie": f"tuiwiz-token-{port}={token}"}
                async with http.ws_connect(base + "/ws?width=80&height=24", headers=cookie) as ws:
                    screen = b""
                    while len(screen) < 2000:  # the wizard's first frame
                        screen += await ws.receive_bytes(timeout=60)
                    [session] = children(server.pid)
                    return session

        session = asyncio.run(visit())
        deadline = time.monotonic() + 30
        while Path(f"/proc/{session}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the tab closed: its app ends
        assert not Path(f"/proc/{session}").exists()
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    everything = banner + rest
    assert server.returncode == 0, everything
    assert "session 1 opened" in rest and "session 1 closed: the tab was closed" in rest
    assert "stopped" in rest
    assert everything.count(token) == 1  # only in the URL it printed


def running(pid: int) -> bool:
    """Alive and not a zombie (a re-parented child may wait for its reaper)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_killing_the_server_outright_ends_its_sessions(tmp_path):
    server = subprocess.Popen(
        [sys.executable, "-m", "tuiwiz", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert server.stdout is not None
        port, token = next(URL.search(line) for line in server.stdout if URL.search(line)).groups()

        async def open_session_then_kill_the_server() -> int:
            async with aiohttp.ClientSession() as http:
                cookie = {"Cookie": f"tuiwiz-token-{port}={token}"}
                async with http.ws_connect(f"ws://127.0.0.1:{port}/ws", headers=cookie) as ws:
                    screen = b""
                    while len(screen) < 2000:
                        screen += await ws.receive_bytes(timeout=60)
                    [session] = children(server.pid)
                    server.kill()  # SIGKILL: no chance to close anything
                    server.wait()
                    return session

        session = asyncio.run(open_session_then_kill_the_server())
        deadline = time.monotonic() + 30
        while running(session) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(session)  # it noticed that its server is gone, and quit
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
