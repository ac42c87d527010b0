"""`AttachApp`: a small app that shows only the dashboard of one run (`tuiwiz attach RUN`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App

from tuiwiz.ui.dashboard.screen import DashboardScreen


class AttachApp(App[None]):
    TITLE = "tuiwiz attach"

    def __init__(self, run_dir: str | Path, **dashboard: Any) -> None:
        """`dashboard` goes to DashboardScreen (clock, poll_interval, gpu_interval)."""
        super().__init__()
        self.run_dir = Path(run_dir)
        self._dashboard = dashboard

    def get_default_screen(self) -> DashboardScreen:
        return DashboardScreen(self.run_dir, **self._dashboard)

    @property
    def dashboard(self) -> DashboardScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, DashboardScreen)
        return screen
