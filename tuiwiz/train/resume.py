"""Exact resume: a resumed run trains and logs exactly as the run left alone.

Two things the trainer does not carry over by itself. The adapter: the trainer's own loader goes
through peft's `load_adapter`, which builds new adapter tensors in float32
(`autocast_adapter_dtype`), while SFTTrainer keeps a quantized model's adapters in bfloat16. A
resumed run would then train in another precision than the run it continues and drift from it.
Copying the saved values into the existing tensors keeps their dtype. And the loss window that
the next logged loss averages (LossWindow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback


def load_adapter_weights(model: Any, checkpoint: Path) -> bool:
    """Copy a checkpoint's adapter values into `model`'s adapter tensors (keeping their dtype);
    False when the checkpoint or the model has no adapter to load this way."""
    weights = Path(checkpoint) / "adapter_model.safetensors"
    if not weights.is_file() or not hasattr(model, "peft_config"):
        return False
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    result = set_peft_model_state_dict(model, load_file(str(weights)))
    if getattr(result, "unexpected_keys", None):
        raise RuntimeError(f"{weights}: does not match the model ({result.unexpected_keys[:3]})")
    return True


class _InPlaceLoader:
    """The trainer's `_load_from_checkpoint(resume_from_checkpoint, model=None)`, loading a
    checkpoint's adapter in place; it notes that it ran, for `check_loaded_in_place`."""

    def __init__(self, trainer: Any, original: Any) -> None:
        self.trainer, self.original, self.called = trainer, original, False

    def __call__(self, resume_from_checkpoint: str, model: Any = None) -> None:
        self.called = True
        target = model if model is not None else self.trainer.model
        if not load_adapter_weights(target, Path(resume_from_checkpoint)):
            return self.original(resume_from_checkpoint, model)
        return None


def load_adapter_in_place(trainer: Any) -> None:
    """Patch the trainer (only when resuming) to load the adapter in place. The hook's
    signature is checked first (tuiwiz.compat): a release that changed it stops the resume with
    one line instead of being wrapped wrongly."""
    from tuiwiz.compat import check_hook_signature

    original = trainer._load_from_checkpoint
    check_hook_signature(original)
    trainer._load_from_checkpoint = _InPlaceLoader(trainer, original)


def check_loaded_in_place(trainer: Any) -> None:
    """Fail loudly when the trainer resumed without calling the patched loader: exact resume
    would silently stop holding (the adapter restored in another precision)."""
    loader = vars(trainer).get("_load_from_checkpoint")
    if isinstance(loader, _InPlaceLoader) and not loader.called:
        from tuiwiz.compat import IncompatibleError, with_version

        raise IncompatibleError(
            with_version(
                "transformers",
                "the Trainer resumed without calling _load_from_checkpoint, so tuiwiz could "
                "not restore the adapter exactly",
            )
        )


def final_step(checkpoint: Path) -> int | None:
    """The step of a checkpoint saved at the run's last step (nothing left to train), else None.

    Resumed from such a checkpoint, the trainer would train one step more than max_steps."""
    import json

    try:
        state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
        step, last = int(state["global_step"]), int(state["max_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return step if last > 0 and step >= last else None


# The trainer's running loss window, per process, in each checkpoint (see LossWindow).
LOSS_WINDOW_FILE = "tuiwiz-loss-window-rank{rank}.json"


class LossWindow(TrainerCallback):
    """Carries the trainer's loss window across a stop and a resume.

    The trainer logs the mean loss of the steps since its last log: it sums each step's loss on
    the device (`_tr_loss`) and counts from `_globalstep_last_logged`. A resumed trainer starts
    that sum at zero, so the first loss it logs would average only the steps since the resume.
    Each checkpoint keeps the sum and the count (and the run's total, for the final mean), and a
    resumed run starts from them: the float32 sum is restored exactly, so every logged loss is
    the one the run left alone logs, bit for bit. Register it before the callback that marks a
    checkpoint complete; set `trainer` once the trainer exists.
    """

    def __init__(self, checkpoints: Path, resume_from: Path | None, rank: int) -> None:
        self.trainer: Any = None
        self.checkpoints = checkpoints
        self.resume_from = resume_from
        self.name = LOSS_WINDOW_FILE.format(rank=rank)

    def on_train_begin(self, args, state, control, **kwargs):
        from tuiwiz.compat import LOSS_WINDOW_ATTRS, IncompatibleError, with_version

        # The trainer sets these just before on_train_begin (tuiwiz.compat checks its source at
        # start-up); without them the window cannot be kept, so the run stops here, at step 0.
        missing = [name for name in LOSS_WINDOW_ATTRS if not hasattr(self.trainer, name)]
        if missing:
            raise IncompatibleError(
                with_version(
                    "transformers",
                    f"the Trainer no longer keeps {', '.join(missing)}, the loss window tuiwiz "
                    "carries across a resume",
                )
            )
        if self.resume_from is not None:
            check_loaded_in_place(self.trainer)
        self.restore(state.global_step)

    def on_save(self, args, state, control, **kwargs):
        self.save(state.global_step)

    def save(self, step: int) -> None:
        from tuiwiz.fileio import write_json_atomic

        folder = self.checkpoints / f"checkpoint-{step}"
        if not folder.is_dir():
            return
        t = self.trainer
        write_json_atomic(
            folder / self.name,
            {
                "step": step,
                "sum": t._tr_loss.item(),
                "steps": step - t._globalstep_last_logged,
                "total": t._total_loss_scalar,
            },
        )

    def restore(self, step: int) -> None:
        import json

        if self.resume_from is None:
            return
        try:
            saved = json.loads((self.resume_from / self.name).read_text())
        except (OSError, ValueError):
            # A checkpoint written before tuiwiz kept the window: the first loss logged after
            # the resume averages only the steps since the resume.
            print(f"resume: no loss window in {self.resume_from}; the next logged loss is partial")
            return
        if not isinstance(saved, dict) or saved.get("step") != step:
            return
        t = self.trainer
        t._tr_loss.fill_(float(saved["sum"]))
        t._globalstep_last_logged = step - int(saved["steps"])
        t._total_loss_scalar = float(saved["total"])
