"""Exact resume: load a checkpoint's adapter into the adapter tensors the run already has.

The trainer's own loader goes through peft's `load_adapter`, which builds new adapter tensors in
float32 (`autocast_adapter_dtype`), while SFTTrainer keeps a quantized model's adapters in
bfloat16. A resumed run would then train in another precision than the run it continues and
drift from it. Copying the saved values into the existing tensors keeps their dtype, so a
stopped and resumed run logs the same loss at every step as the run left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_adapter_in_place(trainer: Any) -> None:
    original = trainer._load_from_checkpoint

    def load(resume_from_checkpoint: str, model: Any = None) -> None:
        weights = Path(resume_from_checkpoint) / "adapter_model.safetensors"
        target = model if model is not None else trainer.model
        if not weights.is_file() or not hasattr(target, "peft_config"):
            return original(resume_from_checkpoint, model)
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        result = set_peft_model_state_dict(target, load_file(str(weights)))
        if getattr(result, "unexpected_keys", None):
            raise RuntimeError(
                f"{weights}: does not match the model ({result.unexpected_keys[:3]})"
            )
        return None

    trainer._load_from_checkpoint = load
