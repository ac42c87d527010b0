"""The TOML reader: the standard library's `tomllib` (Python 3.11+), or `tomli` on Python 3.10.

`tomli` is the same code under another name (tomllib was added to the standard library from it),
so errors, types and messages are identical. Import it from here: `from tuiwiz.toml import
tomllib`.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the Python 3.10 check in CI
    import tomli as tomllib

__all__ = ["tomllib"]
