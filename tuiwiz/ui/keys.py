"""F-key twins of the wizard's Ctrl keys, for browsers (`tuiwiz serve`).

A browser keeps some Ctrl keys for itself before a page sees them: Ctrl+N opens a window,
Ctrl+Q quits Firefox on Linux, Ctrl+L may focus the address bar. Each Ctrl key the wizard uses
is bound together with an F-key that every browser passes through; both work everywhere, the help
lists both, and in a browser the footer and the hints name the F-key.
"""

from __future__ import annotations

TWINS = {
    "ctrl+b": "f2",  # previous step
    "ctrl+n": "f3",  # next step
    "ctrl+g": "f4",  # go to a step
    "ctrl+r": "f6",  # review
    "ctrl+s": "f7",  # save the preset
    "ctrl+l": "f9",  # launch
    "ctrl+q": "f10",  # quit
}


def both(key: str) -> str:
    """The binding string for a Ctrl key and its twin: "ctrl+n,f3"."""
    return f"{key},{TWINS[key]}"


def name(key: str, web: bool) -> str:
    """How a hint names the key: "F3" in a browser, "Ctrl+N" in a terminal."""
    if web:
        return TWINS[key].upper()
    modifier, _, letter = key.partition("+")
    return f"{modifier.capitalize()}+{letter.upper()}"


def footer_display(key: str, web: bool) -> str | None:
    """The footer's label for a bound key in a browser (its twin), or None: Textual's own."""
    return TWINS[key] if web and key in TWINS else None
