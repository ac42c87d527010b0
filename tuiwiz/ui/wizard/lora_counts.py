"""The live trainable-parameter line shared by the targets and the quantization/LoRA steps."""

from __future__ import annotations

from rich.text import Text

from tuiwiz.errors import TuiwizError


def lora_section(draft) -> dict:
    return {
        k: draft.get(f"lora.{k}")
        for k in ("r", "target_modules", "bias", "use_dora", "use_rslora", "modules_to_save")
    }


def trainable_line(app, draft) -> Text:
    item = app.model_overview()
    if not item.done:
        return Text("Counting parameters once the model's config is read…", "dim italic")
    if item.error:
        return Text(f"✗ model: {item.error}", "bold red")
    from tuiwiz.inspect.lora import plan

    try:
        p = plan(item.value.summary, lora_section(draft))
    except TuiwizError as e:
        return Text(f"✗ {e}", "bold red")
    except (TypeError, ValueError):
        return Text("(fix the invalid values above to count parameters)", "dim")
    share = p.trainable / p.total if p.total else 0.0
    text = Text("Trainable: ")
    text.append(f"{p.trainable:,}", "bold green")
    text.append(f" of {p.total:,} parameters ({share:.3%}) in {len(p.adapted)} layers")
    return text
