"""The token of `tuiwiz serve` and the F-key twins that browsers need."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from tuiwiz.errors import TuiwizError
from tuiwiz.serve import access
from tuiwiz.ui import keys


def test_a_new_token_is_random_and_carries_at_least_128_bits():
    tokens = {access.new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) * 6 >= 128 and len(token) >= access.MIN_TOKEN_CHARS
        assert access.matches(token, token)
        assert not access.matches(token[:-1], token) and not access.matches(None, token)


def test_a_token_file_is_created_owner_only_and_read_back(tmp_path):
    path = tmp_path / "serve.token"
    token = access.token_from_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == token
    assert access.token_from_file(path) == token  # the same URL after a restart


def test_a_token_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "serve.token"
    access.token_from_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(TuiwizError, match=r"can be read by other users .*chmod 600"):
        access.token_from_file(path)


@pytest.mark.parametrize("content", ["short", "a" * 30 + " spaces inside", ""])
def test_a_token_file_with_a_weak_token_is_refused(tmp_path, content):
    path = tmp_path / "serve.token"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(TuiwizError, match="at least 22 characters"):
        access.token_from_file(path)


def test_a_token_file_in_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(TuiwizError, match="folder does not exist"):
        access.token_from_file(tmp_path / "nowhere" / "serve.token")


def test_cookie_names_differ_by_port():
    assert access.cookie_name(8000) != access.cookie_name(8001)


def test_every_ctrl_key_has_a_distinct_f_key_twin():
    assert len(set(keys.TWINS.values())) == len(keys.TWINS)
    assert "f1" not in keys.TWINS.values() and "f5" not in keys.TWINS.values()  # help, GPUs
    assert keys.both("ctrl+n") == "ctrl+n,f3"
    assert keys.name("ctrl+l", web=False) == "Ctrl+L" and keys.name("ctrl+l", web=True) == "F9"
    assert keys.footer_display("ctrl+q", web=True) == "f10"
    assert keys.footer_display("ctrl+q", web=False) is None


def test_the_wizard_and_the_command_line_do_not_load_the_web_server():
    code = (
        "import sys, tuiwiz.cli, tuiwiz.ui.app, tuiwiz.commands.serve\n"
        "tuiwiz.cli.build_parser()\n"
        "print(' '.join(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not {"aiohttp", "textual_serve"} & set(loaded)
    assert "tuiwiz.serve.server" not in loaded


def test_the_session_module_refuses_to_run_outside_the_server():
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_DRIVER"}
    result = subprocess.run(
        [sys.executable, "-m", "tuiwiz.serve.session"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2 and "tuiwiz serve" in result.stderr
