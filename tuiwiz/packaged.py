"""Files that ship inside the tuiwiz package (presets, the demo data, the browser page).

Everything a command reads at run time lives under `tuiwiz/` and is found through
`importlib.resources`, so an installed wheel (pipx, uv tool, pip) has it wherever the command runs.
pip, pipx and uv always unpack a wheel onto the disk, so a packaged folder is a real directory;
tuiwiz hands its files to libraries that want paths (datasets, aiohttp), so it insists on one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tuiwiz.errors import TuiwizError


def folder(name: str) -> Path:
    """The packaged folder `tuiwiz/NAME` as a directory on disk."""
    found = resources.files("tuiwiz").joinpath(name)
    if not isinstance(found, Path) or not found.is_dir():
        raise TuiwizError(
            f"tuiwiz's packaged folder {name}/ is missing from this installation ({found}); "
            "reinstall tuiwiz (pip install --force-reinstall tuiwiz)"
        )
    return found
