"""A prompt to suggest when trying a run: one its model will understand.

For a run of the bundled demo model, a held-out demo prompt ("Uppercase:\\n\\nkavomi", a word it
never trained on); for any other run, the user turn of the first usable example of the run's own
data. Never a reason to fail: None when there is nothing to suggest.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_ROWS = 50  # rows read to find one usable example


def _demo_prompt() -> str | None:
    from tuiwiz import demo

    rows = demo.load_jsonl(demo.demo_heldout_path())
    if not rows:
        return None
    return demo.alpaca_user_content(rows[0]["instruction"], rows[0].get("input", ""))


def _data_prompt(data: dict) -> str | None:
    from tuiwiz import bundled
    from tuiwiz.data import formats, readers

    rows = readers.read_rows(bundled.resolve_data(data["path"]), data["split"], data["subset"])
    rows = rows[:SAMPLE_ROWS]
    fmt = data["format"]
    if fmt == "auto":
        fmt, _ = formats.detect(rows, data["columns"], data["path"])
    for row in rows:
        example = formats.to_example(row, fmt, data["columns"])
        if isinstance(example, str):
            continue
        if example.messages is not None:
            user = next((m["content"] for m in example.messages if m["role"] == "user"), None)
            if user:
                return user
        elif example.prompt:
            return example.prompt
        elif example.text:
            return " ".join(example.text.split()[:8])  # the start of a text to continue
    return None


def example_prompt(run_dir: str | Path) -> str | None:
    """A prompt in the form the run trained on, or None."""
    from tuiwiz import config, presets
    from tuiwiz.bundled import DEMO_MODEL
    from tuiwiz.train.rundir import RunDir

    try:
        run = RunDir(Path(run_dir))
        resolved = config.validate(presets.read_toml(run.preset), source=str(run.preset))
        if resolved["model"]["name_or_path"] == DEMO_MODEL:
            return _demo_prompt()
        return _data_prompt(resolved["data"])
    except Exception:  # noqa: BLE001 - a suggestion only: missing data, an odd preset, ...
        return None


def as_typed(prompt: str, limit: int = 48) -> str:
    """The prompt as one typed line (a line break is typed as \\n), shortened to `limit`."""
    line = prompt.replace("\\n", "\\\\n").replace("\n", "\\n")
    return line if len(line) <= limit else line[: limit - 1] + "…"
