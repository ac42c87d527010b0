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

        # Errors here are one line, before the screen opens. A preset without a dataset opens
        # too: Review estimates the memory and says launch needs [data] path.
        resolved, _ = presets.load(preset, require_data=False)
        draft = Draft(resolved)
        _build_demo_model_if_needed(resolved["model"]["name_or_path"])
    from tuiwiz.ui.app import TuiwizApp

    app = TuiwizApp(draft, start="review" if draft else "start")
    app.run()
    return app.return_code or 0


def _build_demo_model_if_needed(model: str) -> None:
    """The bundled demo model is built on first use (about a minute on a laptop CPU): do it
    here, with progress on the terminal, rather than behind a wizard step that seems stuck."""
    from tuiwiz.bundled import DEMO_MODEL

    if model != DEMO_MODEL:
        return
    from tuiwiz.demo import ensure_demo_model, is_demo_model_built

    if not is_demo_model_built():
        ensure_demo_model(lambda message: print(f"tuiwiz: {message}", flush=True))
