"""The access token of `tuiwiz serve`: who has it can drive the wizard (and start training).

A new random token per start (256 bits from `secrets`), or a stable one kept in a file that only
its owner can read. The token is compared in constant time and never logged.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

from tuiwiz.errors import TuiwizError
from tuiwiz.fileio import write_atomic

TOKEN_BYTES = 32  # 256 bits
MIN_TOKEN_CHARS = 22  # 22 URL-safe base64 characters carry 132 bits; the issue asks for >= 128
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def matches(given: str | None, token: str) -> bool:
    """Whether `given` is the token; constant time, so timing tells nothing about it."""
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


def cookie_name(port: int) -> str:
    """Cookies are shared by every port of a host: two servers on one machine need two names."""
    return f"tuiwiz-token-{port}"


def token_from_file(path: Path) -> str:
    """The token kept in `path`, created (owner-only) when the file does not exist yet."""
    path = path.expanduser()
    if not path.exists():
        if not path.parent.is_dir():
            raise TuiwizError(
                f"--token-file {path}: its folder does not exist; create it or pick another path"
            )
        token = new_token()
        try:
            write_atomic(path, token + "\n", mode=0o600)
        except OSError as e:
            raise TuiwizError(f"--token-file {path}: cannot write it ({e.strerror or e})") from e
        return token
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise TuiwizError(f"--token-file {path}: not a regular file")
        if info.st_uid != os.getuid():
            raise TuiwizError(
                f"--token-file {path} belongs to another user; use a file of your own"
            )
        if info.st_mode & 0o077:
            mode = stat.filemode(info.st_mode)
            raise TuiwizError(
                f"--token-file {path} can be read by other users ({mode}); "
                f"make it private with: chmod 600 {path}"
            )
        token = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise TuiwizError(f"--token-file {path}: cannot read it ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise TuiwizError(f"--token-file {path}: not a text file") from e
    if len(token) < MIN_TOKEN_CHARS or not _TOKEN_CHARS.fullmatch(token):
        raise TuiwizError(
            f"--token-file {path}: the token must be at least {MIN_TOKEN_CHARS} characters of "
            f"A-Z a-z 0-9 _ -; delete the file and tuiwiz writes a new random one"
        )
    return token
