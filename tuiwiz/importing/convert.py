"""What the axolotl and LLaMA-Factory importers share: the preset being built, the report of
everything that was translated, defaulted or left out, and the value conversions.

The rule that keeps an import honest: every source key is consumed by a handler that writes it
(and says so when its name or value changes) or drops it with a reason. Whatever no handler took
is offered to `[training]` when it is a `TrainingArguments` field, else reported as having no
equivalent. Nothing is lost in silence.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuiwiz import config as cfg
from tuiwiz.errors import ConfigError

# Report kinds, in the order the report shows them.
CHECK = "check"  # needs the user's attention before running
DROPPED = "not carried"
TRANSLATED = "translated"
DEFAULT = "default"  # not in the file: the other tool's default, written explicitly
KINDS = (CHECK, DROPPED, TRANSLATED, DEFAULT)

# Values of keys named like these are never echoed (a token pasted into a config stays there).
_SECRET = re.compile(r"token|secret|passw|api_?key|credential", re.IGNORECASE)
# [training] keys an import never writes: tuiwiz sets them itself, or they would fight its runs.
TRAINING_BLOCKED = {
    "output_dir": "tuiwiz chooses each run's directory (`tuiwiz run --output-dir DIR` to pick one)",
    "overwrite_output_dir": "tuiwiz never trains into an existing run directory",
    "resume_from_checkpoint": "continue a run with `tuiwiz resume RUN`",
    "hub_token": "tokens are never stored in presets; set HF_TOKEN in the environment",
    "push_to_hub": "a run does not upload: `tuiwiz export RUN --out DIR`, then upload the folder",
    "hub_model_id": "a run does not upload: `tuiwiz export RUN --out DIR`, then upload the folder",
    "hub_strategy": "a run does not upload: `tuiwiz export RUN --out DIR`, then upload the folder",
    "hub_private_repo": "a run does not upload: `tuiwiz export RUN --out DIR`, then upload it",
    "hub_revision": "a run does not upload: `tuiwiz export RUN --out DIR`, then upload the folder",
    "deepspeed": 'tuiwiz trains with DDP or FSDP, not DeepSpeed: [launch] strategy = "fsdp" '
    "shards a model too large for one GPU",
    "fsdp": 'set [launch] strategy = "fsdp"; tuiwiz writes the FSDP settings itself',
    "fsdp_config": "tuiwiz writes FSDP-QLoRA's settings itself ([launch] strategy)",
    "save_only_model": "tuiwiz saves the optimizer state in every checkpoint so runs can resume",
    "do_train": "not needed: a tuiwiz run always trains",
    "do_eval": "evaluation runs during training when [data] validation_split > 0",
    "do_predict": "not part of a run: `tuiwiz eval RUN` and `tuiwiz chat RUN` afterwards",
    "local_rank": "set by the launcher (torchrun), never in a preset",
    "use_cpu": "tuiwiz trains on the CPU by itself when there is no CUDA GPU",
    "remove_unused_columns": "tuiwiz prepares the columns TRL needs itself",
    "label_names": "tuiwiz prepares the labels itself (prompt tokens masked)",
    "disable_tqdm": "tuiwiz shows progress itself",
}


@dataclass(frozen=True)
class Note:
    kind: str  # one of KINDS
    key: str  # the source key, e.g. "micro_batch_size" or "datasets[0].type"
    text: str  # the rest of the line

    def line(self) -> str:
        """One printable line, whatever the file held (control characters are escaped)."""
        return printable(f"{self.key}: {self.text}")


def printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown(value: Any, limit: int = 60) -> str:
    """A source value as the report prints it: YAML-like, short."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, str):
        text = value if value and value.strip() == value and value.isprintable() else repr(value)
    elif isinstance(value, list):
        text = "[" + ", ".join(shown(v, limit) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {shown(v, limit)}" for k, v in value.items()) + "}"
    else:
        text = repr(value)
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def toml_shown(value: Any) -> str:
    """A written value as it reads in the preset."""
    from tuiwiz.presets import _value

    text = _value(value)
    return text if len(text) <= 60 else text[:57] + "..."


def secret(key: str) -> bool:
    return bool(_SECRET.search(key))


class Keys:
    """The keys of one source mapping not handled yet; `prefix` names them in the report."""

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        # A key given with no value (`wandb_project:`) means "not set" in both tools.
        self.left = {k: v for k, v in data.items() if v is not None}
        self.empty = [k for k, v in data.items() if v is None]
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def take(self, key: str, default: Any = None) -> Any:
        return self.left.pop(key, default)

    def has(self, key: str) -> bool:
        return key in self.left


class Conversion:
    """The preset being built from one source file, and the report of how."""

    def __init__(self, data: dict[str, Any], path: Path, tool: str) -> None:
        self.keys = Keys(data)
        self.path = path
        self.tool = tool  # "axolotl" or "LLaMA-Factory", as the report names it
        self.raw: dict[str, Any] = {s: {} for s in ("model", "quantization", "lora", "data")}
        self.raw["training"] = {}
        self.notes: list[Note] = []
        self.carried: list[str] = []  # source keys written with the same name and value

    # --- reading the source -------------------------------------------------------------

    def take(self, key: str, default: Any = None) -> Any:
        return self.keys.take(key, default)

    def has(self, key: str) -> bool:
        return self.keys.has(key)

    # --- writing the preset -------------------------------------------------------------

    def check_value(self, dotted: str, value: Any) -> str | None:
        """Why `value` cannot be written at `dotted` on its own, or None."""
        from tuiwiz.presets import _value

        try:
            _value(value)  # a value YAML can hold but TOML cannot (null, a number as a key)
        except (TypeError, AttributeError):
            return "a preset cannot hold it (null, or a table whose keys are not text)"
        section, name = dotted.split(".", 1)
        # The one key on its own: cross-key rules (4-bit and 8-bit both on) are checked when
        # the whole preset is validated, so neutral values stand in for the keys they pair with.
        probe: dict[str, Any] = {
            "model": {"name_or_path": "x"},
            "data": {"path": "x"},
            "quantization": {"load_in_4bit": False},
        }
        probe.setdefault(section, {})[name] = value
        try:
            cfg.validate(probe, source="import")
        except ConfigError as e:
            message = str(e)
            for prefix in (f"import: [{section}] {name} ", "import: "):
                if message.startswith(prefix):
                    return message[len(prefix) :]
            return message
        return None

    def write(self, dotted: str, value: Any) -> None:
        section, name = dotted.split(".", 1)
        self.raw.setdefault(section, {})[name] = value

    def _put(self, src: str, targets: dict[str, Any]) -> bool:
        """Write every target, or none (and report why) when one is not valid."""
        for dotted, value in targets.items():
            reason = self.check_value(dotted, value)
            if reason:
                self.dropped(src, f"{shown(value)} is not valid for {dotted} ({reason})")
                return False
        for dotted, value in targets.items():
            self.write(dotted, value)
        return True

    def same(self, src: str, dotted: str, value: Any) -> bool:
        """Carried unchanged: the same name and value (only counted, not listed)."""
        if self._put(src, {dotted: value}):
            self.carried.append(src)
            return True
        return False

    def translated(
        self, src: str, value: Any, targets: dict[str, Any], why: str = "", show: bool = True
    ) -> bool:
        """Carried under another name or as another value; reported with what was written."""
        if not self._put(src, targets):
            return False
        before = "" if not show or secret(src) else f"{shown(value)} "
        if len(targets) == 1 and _equal(value, next(iter(targets.values()))):
            written = next(iter(targets))  # renamed only: the value reads the same
        else:
            written = ", ".join(f"{k} = {toml_shown(v)}" for k, v in targets.items())
        self.note(TRANSLATED, src, f"{before}-> {written}" + (f" ({why})" if why else ""))
        return True

    def default(self, src: str, dotted: str, value: Any, why: str) -> None:
        """A key the file leaves out: the other tool's default, written when it is not ours."""
        if self.check_value(dotted, value) is None:
            self.write(dotted, value)
            if value != ours(dotted):
                self.note(DEFAULT, src, f"not in the file; {why} -> {dotted} = {toml_shown(value)}")

    def dropped(self, src: str, why: str) -> None:
        self.note(DROPPED, src, why)

    def check(self, src: str, why: str) -> None:
        self.note(CHECK, src, why)

    def note(self, kind: str, src: str, text: str) -> None:
        self.notes.append(Note(kind, src, text))

    def placeholder(self, dotted: str, src: str, why: str) -> None:
        """A required key the file does not give usably: a value that says what to put there."""
        self.write(dotted, f"SET-ME: {why}")
        self.check(src, f"{why}; set {dotted} before running")

    # --- common value conversions -------------------------------------------------------

    def number(self, value: Any, kind: type = float) -> float | int | None:
        """A number, also from YAML text such as "2e-4" (YAML 1.1 reads it as a string)."""
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return kind(value) if kind is float or float(value).is_integer() else None
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                return None
            if kind is int and not number.is_integer():
                return None
            return kind(number)
        return None

    def number_to(self, src: str, dotted: str, kind: type = float, rename: bool = True) -> None:
        """Carry a numeric key, converting text such as "2e-4"; report a rename or conversion."""
        value = self.take(src)
        if value is None:
            return
        number = self.number(value, kind)
        if number is None:
            self.dropped(src, f"{shown(value)} is not a number")
            return
        name = dotted.split(".", 1)[1]
        if isinstance(value, str):
            self.translated(src, value, {dotted: number}, "text in the YAML, read as a number")
        elif rename and name != src:
            self.translated(src, value, {dotted: number})
        else:
            self.same(src, dotted, number)

    def flag_to(self, src: str, dotted: str) -> None:
        """Carry a true/false key (renamed when the names differ)."""
        value = self.take(src)
        if value is None:
            return
        if not isinstance(value, bool):
            self.dropped(src, f"{shown(value)} is not true or false")
        elif dotted.split(".", 1)[1] == src:
            self.same(src, dotted, value)
        else:
            self.translated(src, value, {dotted: value})

    def drop_known(self, reasons: dict[str, str]) -> None:
        """Report each present key of `reasons` as not carried, with its reason."""
        for key, why in reasons.items():
            if self.has(key):
                self.take(key)
                self.dropped(key, why)

    def drop_prefixed(self, reasons: dict[str, str]) -> None:
        """Report each present key starting with a prefix of `reasons` as not carried."""
        for key in list(self.keys.left):
            why = next((w for prefix, w in reasons.items() if key.startswith(prefix)), None)
            if why is not None:
                self.take(key)
                self.dropped(key, why)

    def finish(self) -> None:
        """What no handler took: a TrainingArguments field goes to [training], anything else is
        reported as having no equivalent."""
        from tuiwiz.training_fields import training_fields

        fields = training_fields()
        for key in list(self.keys.left):
            value = self.take(key)
            if key == "save_only_model" and value is False:
                self.carried.append(key)  # what tuiwiz does anyway
            elif key in TRAINING_BLOCKED:
                self.dropped(key, TRAINING_BLOCKED[key])
            elif key in fields:
                if isinstance(value, str) and fields[key].annotation in ("float", "int"):
                    number = self.number(value, float if fields[key].annotation == "float" else int)
                    if number is not None:
                        self.translated(key, value, {f"training.{key}": number}, "read as a number")
                        continue
                self.same(key, f"training.{key}", value)
            else:
                self.dropped(key, f"{self.tool} setting with no tuiwiz equivalent")


def _equal(a: Any, b: Any) -> bool:
    """Whether a source value and the value written read the same (16 and 16.0 do)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def ours(dotted: str) -> Any:
    """tuiwiz's own default for a key (what the preset would hold had the import said nothing)."""
    section, name = dotted.split(".", 1)
    if section == "training":
        return cfg.TRAINING_DEFAULTS.get(name)
    key = cfg.SCHEMA.get(section, {}).get(name)
    return copy.deepcopy(key.default) if key else None


def split_names(value: Any) -> list[str] | None:
    """Module or dataset names: a YAML list, or text separated by commas."""
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value]
    else:
        return None
    names = [n for n in names if n]
    return names or None
