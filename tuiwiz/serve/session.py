"""One browser session of `tuiwiz serve`: the wizard, or a run's dashboard, on Textual's web driver.

`tuiwiz serve` starts `python -m tuiwiz.serve.session [--preset FILE | --attach RUN_DIR]` once per
browser tab, with TEXTUAL_DRIVER naming the web driver. Its stdin and stdout carry that driver's
protocol, not a terminal: nothing here prints to stdout, and a problem is shown in the app.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from pathlib import Path

from tuiwiz.errors import TuiwizError

PARENT_CHECK_INTERVAL = 1.0  # seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuiwiz.serve.session")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--preset", help="open the wizard prefilled from this preset, at Review")
    what.add_argument("--attach", type=Path, help="show the dashboard of this run directory")
    args = parser.parse_args(argv)
    if not os.environ.get("TEXTUAL_DRIVER"):
        print("tuiwiz: this module runs one browser session of `tuiwiz serve`", file=sys.stderr)
        return 2
    app = _attach_app(args.attach) if args.attach else _wizard_app(args.preset)
    _exit_with_server(app)
    app.run()
    return 0


def _attach_app(run_dir: Path):
    from tuiwiz.ui.dashboard import AttachApp

    return AttachApp(run_dir)


def _wizard_app(preset: str | None):
    from tuiwiz.ui.app import TuiwizApp
    from tuiwiz.ui.draft import Draft

    draft, problem = None, None
    if preset:
        from tuiwiz import presets

        try:
            resolved, _ = presets.load(preset)
            draft = Draft(resolved)
        except TuiwizError as e:  # the file changed since the server started: say so, start over
            problem = str(e)

    class SessionApp(TuiwizApp):
        def on_mount(self) -> None:
            super().on_mount()
            if problem:
                self.notify(problem, title="Cannot open the preset", severity="error", timeout=30)

    return SessionApp(draft, start="review" if draft else "start")


def _exit_with_server(app) -> None:
    """Quit when the server goes away without saying so (killed): the app is re-parented."""
    server = os.getppid()

    def watch() -> None:
        while os.getppid() == server:
            time.sleep(PARENT_CHECK_INTERVAL)
        with contextlib.suppress(RuntimeError):  # the app has already ended
            app.call_from_thread(app.exit)

    threading.Thread(target=watch, name="tuiwiz-serve-parent", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
