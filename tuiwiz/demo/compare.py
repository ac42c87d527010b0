"""What the demo run learned: the held-out words answered by the base model and by the
fine-tuned one, loaded and prompted exactly as `tuiwiz chat` does (tuiwiz.after)."""

from __future__ import annotations

from typing import Any

from tuiwiz.demo.data import alpaca_user_content, demo_heldout_path, load_jsonl

MAX_NEW_TOKENS = 32


def compare_on_heldout(run: Any) -> list[dict[str, Any]]:
    """Answer every held-out prompt greedily with the run's base model (adapter off) and with the
    fine-tuned one. `run`: a finished run (directory, id, or RunDir).

    Returns rows {prompt, instruction, input, expected, base, tuned, base_ok, tuned_ok}; "ok"
    means an exact match after stripping surrounding whitespace.
    """
    from tuiwiz.after.generate import GenerationSettings, load_for_chat

    chat = load_for_chat(run)
    settings = GenerationSettings(max_new_tokens=MAX_NEW_TOKENS)
    rows = []
    for row in load_jsonl(demo_heldout_path()):
        prompt = alpaca_user_content(row["instruction"], row.get("input", ""))
        base = chat.reply(prompt, settings, adapter=False)
        tuned = chat.reply(prompt, settings)
        expected = str(row["output"]).strip()
        rows.append(
            {
                "prompt": prompt,
                "instruction": row["instruction"],
                "input": row.get("input", ""),
                "expected": expected,
                "base": base,
                "tuned": tuned,
                "base_ok": base == expected,
                "tuned_ok": tuned == expected,
            }
        )
    return rows
