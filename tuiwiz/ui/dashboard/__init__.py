"""The live run dashboard: `DashboardScreen(run_dir)` for any Textual app, `AttachApp(run_dir)`
for `tuiwiz attach`. It reads the run directory (events, status, log) in thread workers and never
writes to it, except to stop the run or start a new one from a suggestion."""

from tuiwiz.ui.dashboard.app import AttachApp
from tuiwiz.ui.dashboard.screen import DashboardScreen

__all__ = ["AttachApp", "DashboardScreen"]
