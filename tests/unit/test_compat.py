"""tuiwiz.compat: supported version ranges checked at a command's start, and the library
internals tuiwiz relies on, checked for presence and signature."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tuiwiz import compat
from tuiwiz.cli import main
from tuiwiz.compat import IncompatibleError
from tuiwiz.toml import tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_versions_compare_by_release_numbers():
    assert compat.release("2.13.0+cu128") == (2, 13, 0)
    assert compat.release("5.0.0rc1") == (5, 0, 0)
    assert compat.satisfies("2.13.0+cpu", ">=2.6,<3")
    assert compat.satisfies("5.0", ">=5.0,<6")
    assert not compat.satisfies("6.0.0", ">=5.0,<6")
    assert not compat.satisfies("4.57.1", ">=5.0,<6")
    assert compat.satisfies("0.46.0", ">=0.46,<1")
    assert compat.satisfies("anything", "")


def test_supported_ranges_are_pyprojects_dependencies():
    """One source of truth: the ranges the start-up check applies are pyproject's (read back
    from the installed metadata), each with an upper bound where tuiwiz relies on internals."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ranges = compat.supported_ranges()
    for line in declared:
        requirement = line.split(";")[0].strip()
        name = compat.normalize(requirement.split("<")[0].split(">")[0].split("=")[0])
        if ";" in line and sys.version_info >= (3, 11):
            assert name not in ranges  # tomli: Python 3.10 only
            continue
        spec = requirement[len(name) :].strip()
        assert ranges[name] == compat._ordered(spec), name
    for name in ("torch", "transformers", "peft", "trl", "bitsandbytes", "textual-serve"):
        assert "<" in ranges[name], f"{name} needs an upper bound (the next major version)"


def test_constraints_pin_every_dependency_inside_its_range():
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        requirement, _, marker = line.split("#")[0].partition(";")
        if "==" not in requirement or (marker and not compat._marker_holds(marker)):
            continue
        name, version = requirement.split("==")
        pins[compat.normalize(name.strip())] = version.strip()
    for name, spec in compat.supported_ranges().items():
        assert name in pins, f"constraints.txt does not pin {name}"
        assert compat.satisfies(pins[name], spec), f"{name}=={pins[name]} is outside {spec}"


@pytest.fixture
def transformers_version(monkeypatch):
    """Pretend another transformers is installed (the metadata's version only)."""
    real = compat.installed

    def pretend(version: str | None) -> None:
        monkeypatch.setattr(
            compat, "installed", lambda n: version if n == "transformers" else real(n)
        )

    return pretend


def test_a_version_outside_the_range_stops_a_training_command(transformers_version, tmp_path):
    transformers_version("6.1.0")
    problems = compat.version_problems("run")
    assert problems == [
        "transformers 6.1.0 is outside the versions tuiwiz supports (>=5.0,<6); install a "
        "supported one in tuiwiz's environment: pip install 'transformers>=5.0,<6'"
    ]
    with pytest.raises(IncompatibleError, match="TUIWIZ_ALLOW_UNTESTED=1"):
        compat.check_command("run")
    assert compat.version_problems("presets") == []  # presets never touches transformers


def test_the_cli_says_it_in_one_line_before_any_run_exists(
    transformers_version, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    transformers_version("6.1.0")
    assert main(["run", "demo", "--set", "training.max_steps=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "transformers 6.1.0 is outside" in err
    assert not (tmp_path / "runs").exists()


def test_missing_required_package_and_the_override(transformers_version, monkeypatch, capsys):
    transformers_version(None)
    with pytest.raises(IncompatibleError, match="transformers is not installed"):
        compat.check_command("demo")
    assert compat.version_problems("inspect") == []  # a Llama config.json needs no transformers
    monkeypatch.setenv("TUIWIZ_ALLOW_UNTESTED", "1")
    compat.check_command("demo")
    assert "warning: transformers is not installed" in capsys.readouterr().err


# --- the Trainer internals -----------------------------------------------------------------

TRAINER = """
class Trainer:
    def train(self, resume_from_checkpoint=None):
        if resume_from_checkpoint is not None:
            self._load_from_checkpoint(resume_from_checkpoint)
        return self._inner_training_loop()

    def _inner_training_loop(self):
        self._tr_loss = 0.0
        self._total_loss_scalar = 0.0
        self._globalstep_last_logged = 0
        self.control = self.callback_handler.on_train_begin(None, None, None)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        pass
"""


def problems_of(source: str) -> list[str]:
    return compat.trainer_hook_problems(compat.class_methods(source, "Trainer"))


def test_the_trainer_as_tuiwiz_relies_on_it_passes():
    assert problems_of(TRAINER) == []
    assert compat.trainer_source_problems() == []  # the installed transformers


@pytest.mark.parametrize(
    "change, problem",
    [
        (("_load_from_checkpoint(self, resume", "_load_checkpoint(self, resume"), "is gone"),
        (("resume_from_checkpoint, model=None):", "checkpoint, model=None):"), "now takes"),
        (("resume_from_checkpoint, model=None):", "resume_from_checkpoint, model):"), "now takes"),
        (("self._load_from_checkpoint(resume_from_checkpoint)", "pass"), "no longer calls"),
        (("        self._tr_loss = 0.0\n", ""), "no longer sets _tr_loss"),
    ],
)
def test_a_changed_trainer_is_reported(change, problem):
    assert any(problem in p for p in problems_of(TRAINER.replace(*change)))


def test_a_loss_window_set_after_on_train_begin_is_reported():
    """LossWindow restores the window in on_train_begin: set later, it would be overwritten."""
    moved = TRAINER.replace("        self._globalstep_last_logged = 0\n", "").replace(
        "on_train_begin(None, None, None)\n",
        "on_train_begin(None, None, None)\n        self._globalstep_last_logged = 0\n",
    )
    assert problems_of(moved) == [
        "Trainer._inner_training_loop no longer sets _globalstep_last_logged before "
        "on_train_begin (tuiwiz carries the loss window across a resume through it)"
    ]


def test_the_real_trainer_class_passes_by_introspection():
    """What the training process checks, on the class it really uses (TRL's SFTTrainer)."""
    code = textwrap.dedent(
        """
        from trl import SFTTrainer
        from tuiwiz import compat
        print(compat.trainer_class_problems(SFTTrainer))
        compat.check_training_process(SFTTrainer)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_hook_signature_is_checked_before_patching():
    class Good:
        def _load_from_checkpoint(self, resume_from_checkpoint, model=None): ...

    class Changed:
        def _load_from_checkpoint(self, checkpoint, model=None, strict=True): ...

    compat.check_hook_signature(Good()._load_from_checkpoint)
    with pytest.raises(IncompatibleError, match=r"transformers .*: Trainer._load_from_checkpoint"):
        compat.check_hook_signature(Changed()._load_from_checkpoint)


# --- the other internals -----------------------------------------------------------------


def test_quantizer_helpers_and_textual_serve_are_in_place():
    assert compat.quantizer_source_problems() == []
    assert compat.textual_serve_problems() == []
    fn = compat.transformers_internal("transformers.quantizers.base", "get_keys_to_not_convert")
    assert callable(fn)


def test_a_missing_quantizer_helper_is_one_line(monkeypatch):
    monkeypatch.setattr(compat, "QUANTIZER_HELPERS", (("json", "no_such_helper", 1),))
    with pytest.raises(IncompatibleError, match=r"^transformers \S+: json.no_such_helper is gone"):
        compat.transformers_internal("json", "no_such_helper")


def test_training_args_without_the_dataclass_name_the_transformers_version(monkeypatch, tmp_path):
    from tuiwiz import training_fields

    (tmp_path / "training_args.py").write_text("class SomethingElse:\n    x: int = 1\n")
    monkeypatch.setattr(compat, "transformers_source", lambda name: tmp_path / name)
    training_fields.training_fields.cache_clear()
    try:
        with pytest.raises(IncompatibleError) as caught:
            training_fields.training_fields()
    finally:
        training_fields.training_fields.cache_clear()
    message = str(caught.value)
    assert message.startswith(f"transformers {compat.installed('transformers')}: ")
    assert "training_args.py no longer declares the TrainingArguments fields" in message
    assert "tuiwiz supports transformers>=5.0,<6" in message


def test_torch_build_is_read_without_importing_torch():
    code = (
        "import sys; from tuiwiz import compat; b = compat.torch_build(); "
        "print(b.version, b.label, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    version, label, imported = out.stdout.split()
    import torch

    assert version == torch.__version__
    assert label == (f"CUDA {torch.version.cuda}" if torch.version.cuda else "cpu")
    assert imported == "False"


def test_version_prints_the_libraries(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tuiwiz 0.1.0 (Python 3.")
    names = [line.split()[0] for line in lines[1:]]
    assert names == ["torch", "transformers", "peft", "trl", "bitsandbytes", "datasets", "textual"]
    assert lines[1].endswith(("(cpu)", ")")) and "(" in lines[1]


def test_the_resume_guards_fail_loudly(tmp_path, capsys):
    """With the start-up check overridden (TUIWIZ_ALLOW_UNTESTED), a Trainer that lost the
    loss window or never called the patched loader still stops the run at step 0, loudly."""
    from types import SimpleNamespace

    from tuiwiz.train import resume

    class Trainer:
        model = None

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            self.loaded = resume_from_checkpoint

    class Renamed:
        def _load_from_checkpoint(self, checkpoint):
            pass

    with pytest.raises(IncompatibleError, match="_load_from_checkpoint has changed"):
        resume.load_adapter_in_place(Renamed())
    trainer = Trainer()
    resume.load_adapter_in_place(trainer)
    checkpoint = tmp_path / "checkpoint-2"
    window = resume.LossWindow(tmp_path, resume_from=checkpoint, rank=0)
    window.trainer = trainer
    state = SimpleNamespace(global_step=2)
    with pytest.raises(IncompatibleError, match="no longer keeps _tr_loss, _globalstep_last"):
        window.on_train_begin(None, state, None)
    trainer._tr_loss, trainer._globalstep_last_logged, trainer._total_loss_scalar = 0, 0, 0.0
    with pytest.raises(IncompatibleError, match="resumed without calling _load_from_checkpoint"):
        window.on_train_begin(None, state, None)
    trainer._load_from_checkpoint(str(checkpoint))  # no adapter file there: the original loads
    assert trainer.loaded == str(checkpoint)
    window.on_train_begin(None, state, None)
    assert "no loss window in" in capsys.readouterr().out
