"""A chat session's state and its slash commands, shared by `tuiwiz chat` and the Try it screen.

Pure: no model here. A line that starts with `/` is a command (`//` sends a prompt that starts
with a slash); anything else is a prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tuiwiz.after.generate import (
    SETTING_HELP,
    GenerationSettings,
    Messages,
    as_messages,
    describe,
    update,
)

SIDES = ("tuned", "base")

HELP = """\
Type a prompt, Enter sends it. \\n is a line break (\\\\n: a backslash and n).
Commands:
  /set NAME VALUE    change a setting, e.g. /set temperature 0.7
  /settings          show the settings
  /compare [on|off]  also answer as the base model (the adapter off)
  /history [on|off]  keep the conversation (off: each prompt on its own)
  /clear             forget the conversation
  /system [TEXT]     a system prompt for the next answers (none: no TEXT)
  /help              this help
  /quit              leave (Ctrl-D too)
Settings:
""" + "\n".join(f"  {name:<18} {text}" for name, text in SETTING_HELP.items())


@dataclass
class CommandResult:
    message: str = ""
    quit: bool = False
    error: bool = False  # the command was not understood or its value was refused


@dataclass
class ChatSession:
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    compare: bool = False
    history: bool = False
    system: str | None = None
    turns: dict[str, Messages] = field(default_factory=lambda: {side: [] for side in SIDES})

    @staticmethod
    def is_command(line: str) -> bool:
        return line.startswith("/") and not line.startswith("//")

    @staticmethod
    def prompt_text(line: str) -> str:
        """The prompt a non-command line stands for (a leading `//` is one slash)."""
        from tuiwiz.after.generate import unescape

        return unescape(line[1:] if line.startswith("//") else line)

    def messages(self, side: str, prompt: str) -> Messages:
        """What the model of `side` answers: the conversation so far (with history on) and the
        new prompt."""
        earlier = self.turns[side] if self.history else []
        return as_messages([*earlier, {"role": "user", "content": prompt}], self.system)

    def record(self, side: str, prompt: str, answer: str) -> None:
        if self.history:
            self.turns[side] += [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": answer},
            ]

    def clear(self) -> None:
        self.turns = {side: [] for side in SIDES}

    def command(self, line: str) -> CommandResult:
        name, _, rest = line.strip()[1:].partition(" ")
        name, rest = name.lower(), rest.strip()
        if name in ("quit", "exit", "q"):
            return CommandResult(quit=True)
        if name in ("help", "?", "h"):
            return CommandResult(HELP)
        if name == "settings":
            return CommandResult(describe(self.settings))
        if name == "set":
            key, sep, value = rest.partition("=") if "=" in rest else rest.partition(" ")
            if not sep or not key.strip() or not value.strip():
                return CommandResult(
                    "usage: /set NAME VALUE, e.g. /set temperature 0.7", error=True
                )
            try:
                self.settings = update(self.settings, key, value)
            except ValueError as e:
                return CommandResult(str(e), error=True)
            return CommandResult(describe(self.settings))
        if name in ("compare", "history"):
            flag = _flag(rest, not getattr(self, name))
            if flag is None:
                return CommandResult(f"usage: /{name} on|off", error=True)
            setattr(self, name, flag)
            if name == "history" and not flag:
                self.clear()
            return CommandResult(f"{name} {'on' if flag else 'off'}")
        if name == "clear":
            self.clear()
            return CommandResult("the conversation is forgotten")
        if name == "system":
            self.system = rest or None
            return CommandResult(f"system prompt: {rest}" if rest else "no system prompt")
        return CommandResult(f"unknown command /{name}; /help lists the commands", error=True)


def _flag(text: str, toggled: bool) -> bool | None:
    """on/off (and the usual spellings), or the toggled value when nothing is given."""
    text = text.lower()
    if not text:
        return toggled
    if text in ("on", "yes", "true", "1"):
        return True
    if text in ("off", "no", "false", "0"):
        return False
    return None
