"""`tuiwiz` with no command: the wizard; `tuiwiz --preset FILE`: the wizard prefilled, at Review.

Not a sub-command of its own: cli.py calls `open_wizard` when no command is given.
"""

from __future__ import annotations

import sys

from tuiwiz.errors import TuiwizError


def open_wizard(preset: str | None) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise TuiwizError(
            "the wizard needs a terminal; without one, train headless: tuiwiz run PRESET"
        )
    draft = None
    if preset:
        from tuiwiz import presets
        from tuiwiz.ui.draft import Draft

        resolved, _ = presets.load(preset)  # errors here are one line, before the screen opens
        draft = Draft(resolved)
    from tuiwiz.ui.app import TuiwizApp

    app = TuiwizApp(draft, start="review" if draft else "start")
    app.run()
    return app.return_code or 0
