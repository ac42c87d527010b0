"""What tuiwiz relies on in the libraries it drives, checked when a command starts.

Two kinds of reliance, each checked before a command does any work, so that an unsupported
library fails in one line at start-up rather than deep inside a run:

- **Versions.** The supported range of each dependency is the one in tuiwiz's own package
  metadata (pyproject.toml's `dependencies`, read back with importlib.metadata: one source of
  truth); CI runs the exact versions of `constraints.txt`. A version outside its range stops the
  commands that use that package (`USES`).
- **Internals.** Private parts of transformers and textual-serve that tuiwiz patches or reads:
  the Trainer's checkpoint loader and loss window (exact resume, tuiwiz/train/resume.py), its
  quantizer helpers (tuiwiz/inspect/arch.py), `TrainingArguments` in its source
  (tuiwiz/training_fields.py), and textual-serve's AppService (tuiwiz/serve/server.py). Each is
  checked for presence and signature: from the source with `ast` where importing would cost
  seconds (the CLI's start-up, `tuiwiz doctor`), by introspection where the library is loaded
  anyway (the training process, `tuiwiz serve`).

TUIWIZ_ALLOW_UNTESTED=1 turns these refusals into warnings, to try a newer release anyway; the
run-time guards in resume.py still fail a run loudly rather than let exact resume silently stop
holding.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuiwiz.errors import TuiwizError

ALLOW_ENV = "TUIWIZ_ALLOW_UNTESTED"
PYTHON_TESTED = ((3, 10), (3, 13))  # the oldest and newest Python CI runs (README, classifiers)

# Libraries each command imports, by the name of their distribution: a version outside its
# supported range stops the command. `REQUIRED` ones must also be installed; the others (the
# Python 3.10 light install, for instance, has no torch) are checked only when present.
TRAINING_PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "bitsandbytes",
    "datasets",
    "accelerate",
    "huggingface-hub",
)
# What a finished run is loaded with (eval, chat, export): the training stack but TRL.
_AFTER = tuple(name for name in TRAINING_PACKAGES if name != "trl")
USES: dict[str, tuple[str, ...]] = {
    "run": TRAINING_PACKAGES,
    "resume": TRAINING_PACKAGES,
    "demo": TRAINING_PACKAGES,
    "launch-script": TRAINING_PACKAGES,
    "eval": _AFTER,
    "chat": _AFTER,
    "export": (*_AFTER, "gguf"),
    "data": ("transformers", "datasets", "huggingface-hub"),
    "inspect": ("transformers", "huggingface-hub"),
    "estimate": ("transformers", "huggingface-hub"),
    "import": ("transformers", "pyyaml"),
    "serve": ("textual", "textual-serve"),
    "attach": ("textual",),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    **{name: TRAINING_PACKAGES for name in ("run", "resume", "demo")},
    **{name: _AFTER for name in ("eval", "chat", "export")},
    "data": ("transformers", "datasets"),
    "serve": ("textual", "textual-serve"),
    "attach": ("textual",),
}
# Commands that drive the Trainer: its internals are checked (from source) at their start.
TRAINER_COMMANDS = {"run", "resume", "demo", "launch-script"}

# The Trainer's loss window, carried across a resume (tuiwiz/train/resume.py LossWindow).
LOSS_WINDOW_ATTRS = ("_tr_loss", "_globalstep_last_logged", "_total_loss_scalar")
# Trainer._load_from_checkpoint(self, resume_from_checkpoint, model=None), patched on resume.
LOAD_HOOK = "_load_from_checkpoint"
LOAD_HOOK_PARAMS = [("self", None), ("resume_from_checkpoint", None), ("model", "None")]


class IncompatibleError(TuiwizError):
    """A library version or internal that tuiwiz does not support."""


# --- versions ---------------------------------------------------------------------------------


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (Text-Serve, text_serve -> text-serve)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def release(version: str) -> tuple[int, ...]:
    """The numeric release of a version ("2.13.0+cu128" -> (2, 13, 0), "5.0.0rc1" -> (5, 0, 0))."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def _padded(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))


_COMPARE: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": lambda v, s: v >= s,
    ">": lambda v, s: v > s,
    "<=": lambda v, s: v <= s,
    "<": lambda v, s: v < s,
    "==": lambda v, s: v == s,
    "!=": lambda v, s: v != s,
}


def satisfies(version: str, spec: str) -> bool:
    """Whether `version` meets a specifier such as ">=5.0,<6" (compared by release numbers)."""
    have = release(version)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = re.fullmatch(r"(>=|<=|==|!=|<|>)\s*([\w.+!-]+)", clause)
        if not match:
            continue  # an operator tuiwiz's pyproject does not use (~=, ===, wildcards)
        op, wanted = match.groups()
        want = release(wanted)
        if not _COMPARE[op](*_padded(have, want)):
            return False
    return True


def _marker_holds(marker: str) -> bool:
    """A requirement's environment marker, for the only kind tuiwiz writes (python_version)."""
    if "extra" in marker:
        return False  # an optional extra (dev, gguf-test): not a run-time dependency
    match = re.fullmatch(r'\s*python_version\s*(<=|>=|<|>|==|!=)\s*["\']([\d.]+)["\']\s*', marker)
    if not match:
        return True
    op, version = match.groups()
    return _COMPARE[op](*_padded(sys.version_info[:2], release(version)))


def supported_ranges() -> dict[str, str]:
    """Each run-time dependency's supported range, from tuiwiz's installed metadata
    ({} when tuiwiz runs from a source tree that was never installed)."""
    try:
        lines = importlib.metadata.requires("tuiwiz") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    ranges: dict[str, str] = {}
    for line in lines:
        requirement, _, marker = line.partition(";")
        if marker and not _marker_holds(marker):
            continue
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)", requirement)
        if match:
            ranges[normalize(match.group(1))] = _ordered(match.group(2).strip())
    return ranges


def _ordered(spec: str) -> str:
    """Lower bounds first, as people write them (metadata may store "<2,>=1.1")."""
    clauses = [c.strip() for c in spec.split(",") if c.strip()]
    return ",".join(sorted(clauses, key=lambda c: not c.startswith(">")))


def installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class PackageState:
    name: str
    version: str | None  # None: not installed
    spec: str  # the supported range, "" when tuiwiz's metadata names none

    @property
    def in_range(self) -> bool:
        return self.version is not None and satisfies(self.version, self.spec)

    def problem(self, required: bool = True) -> str | None:
        """One line when this package stops tuiwiz, else None."""
        wanted = f"{self.name}{self.spec}" if self.spec else self.name
        if self.version is None:
            return (
                f"{self.name} is not installed; {install_hint(self.name, wanted)}"
                if required
                else None
            )
        if self.in_range:
            return None
        return (
            f"{self.name} {self.version} is outside the versions tuiwiz supports ({self.spec}); "
            f"{install_hint(self.name, wanted)}"
        )


def install_hint(name: str, wanted: str) -> str:
    if name == "torch":
        return (
            f"install PyTorch ({wanted}) built for this machine's CUDA "
            "(https://pytorch.org/get-started/locally/)"
        )
    return f"install a supported one in tuiwiz's environment: pip install '{wanted}'"


def package_states(names: Iterable[str]) -> list[PackageState]:
    ranges = supported_ranges()
    return [PackageState(n, installed(n), ranges.get(normalize(n), "")) for n in names]


def version_problems(command: str) -> list[str]:
    required = {normalize(n) for n in REQUIRED.get(command, ())}
    found = (
        s.problem(normalize(s.name) in required) for s in package_states(USES.get(command, ()))
    )
    return [p for p in found if p]


# --- internals: the Trainer -------------------------------------------------------------------


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[str, str | None]]:
    """A function's positional parameters with the source of their defaults."""
    args = fn.args.posonlyargs + fn.args.args
    defaults = [None] * (len(args) - len(fn.args.defaults)) + list(fn.args.defaults)
    return [(a.arg, ast.unparse(d) if d is not None else None) for a, d in zip(args, defaults)]


def _calls(node: ast.AST, method: str) -> list[int]:
    """Lines where `node` calls `self.<method>(...)` or `<anything>.<method>(...)`."""
    return [
        call.lineno
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == method
    ]


def _assignments(node: ast.AST, attr: str) -> list[int]:
    """Lines where `node` assigns `self.<attr> = ...`."""
    lines = []
    for stmt in ast.walk(node):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else []
        if isinstance(stmt, ast.AnnAssign):
            targets = [stmt.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and target.attr == attr
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                lines.append(stmt.lineno)
    return lines


Methods = dict[str, ast.FunctionDef | ast.AsyncFunctionDef]


def trainer_hook_problems(methods: Methods) -> list[str]:
    """What no longer holds of the Trainer internals tuiwiz relies on, given the Trainer's
    methods `_load_from_checkpoint`, `train` and `_inner_training_loop` (missing = absent)."""
    problems = []
    load = methods.get(LOAD_HOOK)
    if load is None:
        problems.append(f"Trainer.{LOAD_HOOK} is gone (tuiwiz patches it for exact resume)")
    elif _params(load)[:3] != LOAD_HOOK_PARAMS or len(_params(load)) != 3:
        shown = ", ".join(n if d is None else f"{n}={d}" for n, d in _params(load))
        problems.append(
            f"Trainer.{LOAD_HOOK} now takes ({shown}), not "
            "(self, resume_from_checkpoint, model=None) (tuiwiz patches it for exact resume)"
        )
    train = methods.get("train")
    if train is not None and load is not None and not _calls(train, LOAD_HOOK):
        problems.append(
            f"Trainer.train no longer calls {LOAD_HOOK}, so tuiwiz's resume patch would never run"
        )
    loop = methods.get("_inner_training_loop")
    if loop is None or train is None:
        problems.append("Trainer.train or Trainer._inner_training_loop is gone")
        return problems
    begin = min(_calls(loop, "on_train_begin"), default=None)
    for attr in LOSS_WINDOW_ATTRS:
        lines = _assignments(loop, attr)
        if not lines or begin is None or min(lines) > begin:
            problems.append(
                f"Trainer._inner_training_loop no longer sets {attr} before on_train_begin "
                "(tuiwiz carries the loss window across a resume through it)"
            )
    return problems


def transformers_source(filename: str) -> Path:
    """A file of the installed transformers package, found without importing it."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or spec.origin is None:
        hint = install_hint("transformers", _wanted("transformers"))
        raise IncompatibleError(f"transformers is not installed; {hint}")
    return Path(spec.origin).parent / filename


def _wanted(name: str) -> str:
    spec = supported_ranges().get(normalize(name), "")
    return f"{name}{spec}"


def class_methods(source: str, class_name: str) -> Methods | None:
    """The methods of the top-level class `class_name` in `source` (None: no such class)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {
                n.name: n
                for n in node.body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
    return None


def trainer_source_problems() -> list[str]:
    """The Trainer checks, from transformers' trainer.py with `ast` (no import: ~50 ms)."""
    path = transformers_source("trainer.py")
    try:
        methods = class_methods(path.read_text(encoding="utf-8"), "Trainer")
    except (OSError, SyntaxError, ValueError) as e:
        return [f"cannot read {path} ({e})"]
    if methods is None:
        return [f"{path} defines no Trainer class"]
    return trainer_hook_problems(methods)


def _method_nodes(cls: type, names: Iterable[str]) -> Methods:
    """The `ast` of each method of `cls` (as its MRO resolves it) from its source."""
    found: Methods = {}
    for name in names:
        fn = inspect.unwrap(getattr(cls, name, None) or (lambda: None))
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        except (OSError, TypeError, SyntaxError):
            continue
        node = tree.body[0] if tree.body else None
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            found[name] = node
    return found


def trainer_class_problems(trainer_cls: type) -> list[str]:
    """The Trainer checks on the class a run really uses (TRL's SFTTrainer and what it
    inherits), by introspection: for the training process, which has it loaded already."""
    return trainer_hook_problems(
        _method_nodes(trainer_cls, (LOAD_HOOK, "train", "_inner_training_loop"))
    )


def check_hook_signature(bound: Callable[..., Any]) -> None:
    """Refuse to patch a `_load_from_checkpoint` whose signature is not the one tuiwiz wraps."""
    try:
        params = list(inspect.signature(bound).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [
        (p.name, None if p.default is inspect.Parameter.empty else repr(p.default)) for p in params
    ]
    if names != LOAD_HOOK_PARAMS[1:]:
        raise IncompatibleError(with_version("transformers", f"Trainer.{LOAD_HOOK} has changed"))


# --- internals: transformers helpers, textual-serve ---------------------------------------------


# transformers' private helpers that tuiwiz/inspect/arch.py calls, as bitsandbytes loading does:
# (module, function, how many positional arguments tuiwiz passes).
QUANTIZER_HELPERS = (
    ("transformers.quantizers.base", "get_keys_to_not_convert", 1),
    ("transformers.quantizers.quantizers_utils", "should_convert_module", 2),
)


def _takes(fn: ast.FunctionDef | ast.AsyncFunctionDef, count: int) -> bool:
    """Whether `fn` can be called with `count` positional arguments."""
    positional = len(fn.args.posonlyargs + fn.args.args)
    required = positional - len(fn.args.defaults)
    return required <= count <= positional or (required <= count and fn.args.vararg is not None)


def quantizer_source_problems() -> list[str]:
    """The quantizer helpers, from transformers' source with `ast` (no import)."""
    problems = []
    for module, name, count in QUANTIZER_HELPERS:
        path = transformers_source("/".join(module.split(".")[1:]) + ".py")
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            tree = ast.Module(body=[], type_ignores=[])
        found = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        fn = next((n for n in found if n.name == name), None)
        if fn is None or not _takes(fn, count):
            problems.append(f"{module}.{name} is gone or takes other arguments")
    return problems


def transformers_internal(module: str, name: str) -> Callable[..., Any]:
    """A private transformers helper of QUANTIZER_HELPERS, checked to exist and to take the
    arguments tuiwiz passes; an IncompatibleError (one line) otherwise."""
    count = next(c for m, n, c in QUANTIZER_HELPERS if (m, n) == (module, name))
    try:
        fn = getattr(importlib.import_module(module), name)
        inspect.signature(fn).bind(*range(count))
    except (ImportError, AttributeError, TypeError, ValueError):
        raise IncompatibleError(
            with_version("transformers", f"{module}.{name} is gone or takes other arguments")
        ) from None
    return fn


def textual_serve_problems() -> list[str]:
    """textual-serve's AppService as tuiwiz/serve/server.py subclasses it."""
    try:
        from textual_serve.app_service import AppService
    except ImportError as e:
        return [f"textual-serve cannot be imported ({e})"]
    methods = _method_nodes(
        AppService, ("__init__", "_open_app_process", "_build_environment", "start", "run")
    )
    problems = []
    for name in ("_open_app_process", "_build_environment"):
        fn = methods.get(name)
        if fn is None or [n for n, _ in _params(fn)][:3] != ["self", "width", "height"]:
            problems.append(f"AppService.{name}(self, width, height) has changed")
    init = methods.get("__init__")
    for attr in ("_process", "_stdin", "_task"):
        if init is None or not _assignments(init, attr):
            problems.append(f"AppService no longer keeps self.{attr}")
    start = methods.get("start")
    if start is None or not _calls(start, "_open_app_process"):
        problems.append("AppService.start no longer calls _open_app_process")
    if not hasattr(AppService, "send_meta"):
        problems.append("AppService.send_meta is gone")
    return problems


def with_version(package: str, what: str) -> str:
    version = installed(package) or "(not installed)"
    spec = supported_ranges().get(normalize(package), "")
    return f"{package} {version}: {what}; tuiwiz supports {package}{spec}" + (
        f" ({install_hint(package, package + spec)})" if spec else ""
    )


# --- start-up -----------------------------------------------------------------------------------


def allowed_untested() -> bool:
    return os.environ.get(ALLOW_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def command_problems(command: str) -> list[str]:
    """Everything that stops `command` at its start, one line each."""
    problems = version_problems(command)
    if command in TRAINER_COMMANDS and installed("transformers") and not problems:
        problems += [with_version("transformers", p) for p in trainer_source_problems()]
    if command == "serve" and not problems:
        problems += [with_version("textual-serve", p) for p in textual_serve_problems()]
    return problems


def refuse_or_warn(problems: list[str], warn: Callable[[str], None] | None = None) -> None:
    """Raise the first problem as one line (naming how many more there are), or, with
    TUIWIZ_ALLOW_UNTESTED set, report each through `warn` and go on."""
    if not problems:
        return
    if allowed_untested():
        say = warn or (lambda line: print(f"tuiwiz: warning: {line}", file=sys.stderr))
        for line in problems:
            say(f"{line} ({ALLOW_ENV} is set: going on)")
        return
    more = len(problems) - 1
    suffix = f" (and {more} more: `tuiwiz doctor` lists them)" if more else ""
    raise IncompatibleError(
        f"{problems[0]}{suffix}; or set {ALLOW_ENV}=1 to try this version anyway"
    )


def check_command(command: str) -> None:
    """The start-up check of a command (tuiwiz/cli.py calls it before the command runs)."""
    refuse_or_warn(command_problems(command))


def check_training_process(trainer_cls: type) -> None:
    """The start-up check of the training process, before its run directory exists: the
    versions of what it imports, and the Trainer internals on the class it really uses."""
    import torch

    problems = version_problems("run")
    problems += [with_version("transformers", p) for p in trainer_class_problems(trainer_cls)]
    if not hasattr(torch, "_foreach_norm"):  # tuiwiz/train/callbacks.py weights_finite
        problems.append(with_version("torch", "torch._foreach_norm is gone"))
    refuse_or_warn(problems)


# --- what is installed ------------------------------------------------------------------------


@dataclass(frozen=True)
class TorchBuild:
    version: str
    cuda: str | None = None  # the CUDA version torch was built for ("12.8"), None: not a CUDA build
    hip: str | None = None  # ROCm builds

    @property
    def label(self) -> str:
        if self.cuda:
            return f"CUDA {self.cuda}"
        return f"ROCm {self.hip}" if self.hip else "cpu"


def torch_build() -> TorchBuild | None:
    """torch's version and the CUDA version it was built for, from its generated version.py
    (read with `ast`: importing torch takes seconds); None when torch is not installed."""
    spec = importlib.util.find_spec("torch")
    version = installed("torch")
    if spec is None or spec.origin is None or version is None:
        return None
    values: dict[str, Any] = {}
    try:
        tree = ast.parse((Path(spec.origin).parent / "version.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        tree = ast.Module(body=[], type_ignores=[])
    for stmt in tree.body:
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else getattr(stmt, "target", None)
        value = getattr(stmt, "value", None)
        if isinstance(target, ast.Name) and value is not None:
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
    return TorchBuild(
        str(values.get("__version__") or version), values.get("cuda"), values.get("hip")
    )


REPORTED = ("torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "textual")


def versions_report() -> str:
    """`tuiwiz --version`: tuiwiz's version and those of the libraries that decide behaviour."""
    from tuiwiz import __version__

    lines = [f"tuiwiz {__version__} (Python {'.'.join(map(str, sys.version_info[:3]))})"]
    for name in REPORTED:
        version = installed(name)
        if name == "torch" and (build := torch_build()) is not None:
            lines.append(f"torch {build.version} ({build.label})")
        else:
            lines.append(f"{name} {version or 'not installed'}")
    return "\n".join(lines)
