"""The checks of a run that need its model and data, done before its run directory exists (so
bad input leaves nothing behind): the launch against this machine, the model's config.json and
target modules, the tokenizer, the data (read, its format and columns, its fingerprint), the
TrainingArguments. What they load is kept for training, in `Ready`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuiwiz.errors import ModelError
from tuiwiz.launch import Launch, check, launch_of, visible_gpus
from tuiwiz.train.handshake import Handshake
from tuiwiz.train.rundir import RunDir


@dataclass
class Ready:
    """What the checks loaded, for training."""

    model_path: str  # the model's directory or Hub id (the bundled demo model built)
    tokenizer: Any
    data: dict[str, Any]  # [data] with the bundled dataset's name resolved to its file
    examples: Any  # the normalized rows (None when the tokenization cache has them)
    data_sha256: str | None  # the data's fingerprint, recorded with the run
    launch: Launch  # "auto" resolved against this machine's GPUs

    def warm_cache(self, seed: int, run: RunDir | None) -> None:
        """Tokenize once, before torchrun starts, so that every rank process reads the cache;
        its progress goes to `run`'s status.json (None: a node that does not own the run)."""
        from tuiwiz.data import prepare
        from tuiwiz.data.progress import StatusProgress

        progress = StatusProgress(run) if run is not None else None
        prepare.prepare(
            self.data, self.tokenizer, seed=seed, examples=self.examples, log=print,
            progress=progress,
        )  # fmt: skip


def machine_launch(config: dict[str, Any]) -> Launch:
    """The configuration's launch on this machine, checked against its GPUs."""
    import torch

    cuda = torch.cuda.is_available()
    gpus = visible_gpus() if cuda else 0
    if cuda and gpus == 0:
        gpus = torch.cuda.device_count()  # CUDA without NVML readings
    launch = launch_of(config, gpus)
    check(launch, gpus, cuda)
    return launch


def checked_tokenizer(model_path: str, config: dict[str, Any]) -> Any:
    """The tokenizer training uses; a model without a working one is refused here (it would
    otherwise train on end-of-sequence tokens alone)."""
    from tuiwiz.data.preview import NoTokenizer, tokenizer_for

    try:
        return tokenizer_for(model_path, config)
    except NoTokenizer as e:
        raise ModelError(
            f"training needs the model's tokenizer: {e.reason}; add the tokenizer files to "
            f"{e.model}, or use the model's Hub id"
        ) from None


def run_checks(config: dict[str, Any], run: RunDir, handshake: Handshake, resume: bool) -> Ready:
    """Check everything that needs the model and the data; raises TuiwizError with one line.
    `resume`: the run exists, and its data must be what it trained on."""
    from trl import SFTTrainer

    from tuiwiz import bundled, compat
    from tuiwiz.data import identity, prepare
    from tuiwiz.data.progress import Throttled
    from tuiwiz.inspect import model as inspect_model
    from tuiwiz.train import builders, registry

    compat.check_training_process(SFTTrainer)  # the libraries as tuiwiz knows them, first
    # `speed = "fast"` becomes the options it stands for here, before preset.toml records them.
    builders.resolve_speed(config)
    say = handshake.progress
    model_ref = config["model"]["name_or_path"]
    if config["model"]["trust_remote_code"]:
        say(f"warning: trust_remote_code is on: Python code from {model_ref} will run here")
    launch = machine_launch(config)
    if not resume:
        registry.check_writable()  # before anything of the run exists
    model_path = bundled.resolve_model(model_ref, say)
    # The preset keeps "tuiwiz:demo-data"; only the copy used for reading is resolved.
    data = {**config["data"], "path": bundled.resolve_data(config["data"]["path"])}
    summary = inspect_model.summarize(
        model_path, config["model"]["revision"], config["model"]["trust_remote_code"]
    )
    inspect_model.check_target_modules(
        config["lora"]["target_modules"], list(summary.linear_modules())
    )
    data_sha256 = identity.fingerprint(data)
    if resume:
        status = run.status()
        identity.check_unchanged(status.get("data_sha256"), data, run.label, "resuming it")
    tokenizer = checked_tokenizer(model_path, config)
    cached = prepare.is_cached(data, tokenizer)
    if not cached and (problem := prepare.cache_problem()):
        say(problem)
    # A big dataset takes a while to read: the terminal hears how far it is, every few seconds.
    reading = Throttled(lambda p: say(f"data: {p.line()}"), every=5.0, only_if_slow=True)
    examples = None if cached else prepare.load_examples(data, reading)
    builders.training_arguments(
        config, run.checkpoints, data["validation_split"] > 0, notice=lambda m: None
    )
    training = config["training"]
    if 0 < training["max_steps"] < training["logging_steps"]:
        say(
            f"logging_steps = {training['logging_steps']} is more than max_steps = "
            f"{training['max_steps']}: no step will log its loss (the run's mean loss is "
            "reported at the end)"
        )
    if builders.device_kind() == "cpu":
        say("no CUDA GPU found: training runs on the CPU (slow for real models)")
    return Ready(model_path, tokenizer, data, examples, data_sha256, launch)
