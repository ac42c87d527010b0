"""axolotl's `datasets:` list onto [data]: the first dataset's path, its prompt strategy (`type`)
as a tuiwiz format, and its field names as [data] columns."""

from __future__ import annotations

from typing import Any

from tuiwiz.data.formats import SHAREGPT_ROLES
from tuiwiz.importing.common import CHAT_TEMPLATE_WHY
from tuiwiz.importing.convert import Conversion, Keys, shown, split_names
from tuiwiz.importing.locate import locate

# The roles tuiwiz reads in each conversation format (see tuiwiz.data.formats).
MESSAGE_ROLES = {"system", "user", "assistant", "tool"}
# Prompt strategies whose rows are instruction / input / output, as tuiwiz's alpaca format reads.
ALPACA_TYPES = {"alpaca", "alpaca:chat", "alpaca_chat", "alpaca:phi", "alpaca_chat:phi"}
ALPACA_WHY = (
    "instruction / input / output rows; tuiwiz renders them through the model's chat template "
    "(### Instruction / ### Response without one), not axolotl's Alpaca prompt text"
)
DATASET_NOT_CARRIED = {
    "revision": "tuiwiz reads a Hub dataset's default revision",
    "trust_remote_code": "tuiwiz never runs dataset loading scripts",
    "shards": "tuiwiz reads the whole dataset ([data] max_samples limits the rows)",
    "shards_idx": "tuiwiz reads the whole dataset ([data] max_samples limits the rows)",
    "preprocess_shards": "tuiwiz tokenizes in batches and caches the result itself",
    "ds_type": "not needed: tuiwiz reads the file type from its extension",
    "input_format": "a custom prompt layout; " + CHAT_TEMPLATE_WHY,
    "conversation": "a FastChat conversation template; " + CHAT_TEMPLATE_WHY,
    "chat_template_jinja": "a custom chat template; " + CHAT_TEMPLATE_WHY,
    "field_tools": "tool definitions are not read; rows keep their messages only",
    "field_thinking": "reasoning traces are not read separately",
    "template_thinking_key": "reasoning traces are not read separately",
    "split_thinking": "reasoning traces are not read separately",
    "message_field_training": "tuiwiz trains every assistant turn; per-turn flags are not read",
    "message_field_training_detail": "tuiwiz trains every assistant turn; spans are not read",
    "drop_system_message": "system messages are kept as they are in the rows",
    "logprobs_field": "distillation data is not supported",
    "temperature": "distillation data is not supported",
    "field_human": "tuiwiz reads the sharegpt roles human / gpt (and user / assistant)",
    "field_model": "tuiwiz reads the sharegpt roles human / gpt (and user / assistant)",
}


def convert_datasets(conv: Conversion) -> None:
    """[data] path, format, split, subset and columns from `datasets` (or pretraining_dataset)."""
    datasets = conv.take("datasets")
    src = "datasets"
    if datasets is None and conv.has("pretraining_dataset"):
        datasets, src = conv.take("pretraining_dataset"), "pretraining_dataset"
    if isinstance(datasets, dict):
        datasets = [datasets]
    if not isinstance(datasets, list) or not datasets or not isinstance(datasets[0], dict):
        conv.placeholder("data.path", src, "the file gives no usable dataset")
        return
    for i, extra in enumerate(datasets[1:], 1):
        path = extra.get("path") if isinstance(extra, dict) else extra
        conv.dropped(
            f"{src}[{i}]",
            f"{shown(path)}: tuiwiz trains on one dataset; combine the files into one to use both",
        )
    convert_dataset(conv, Keys(datasets[0], f"{src}[0]."), pretraining=src != "datasets")


def convert_dataset(conv: Conversion, entry: Keys, pretraining: bool) -> None:
    path, data_files = entry.take("path"), entry.take("data_files")
    files = split_names(data_files) if data_files is not None else None
    if isinstance(path, str) and path:
        locate(conv, entry.name("path"), path, "data.path")
        if files:
            conv.dropped(
                entry.name("data_files"),
                "tuiwiz reads every data file of a folder or one file; point [data] path at it",
            )
    elif files:
        locate(conv, entry.name("data_files"), files[0], "data.path")
        for extra in files[1:]:
            conv.dropped(entry.name("data_files"), f"{extra}: tuiwiz trains on one data file")
    else:
        conv.placeholder("data.path", entry.name("path"), "the dataset has no path")
    split = entry.take("split")
    if isinstance(split, str):
        conv.same(entry.name("split"), "data.split", split)
    subset = entry.take("name")
    if isinstance(subset, str):
        conv.translated(entry.name("name"), subset, {"data.subset": subset}, "the configuration")
    if pretraining:
        _pretraining(conv, entry)
    else:
        _prompt_strategy(conv, entry)
    for key, why in DATASET_NOT_CARRIED.items():
        if entry.has(key):
            entry.take(key)
            conv.dropped(entry.name(key), why)
    for key in list(entry.left):
        entry.take(key)
        conv.dropped(entry.name(key), "dataset setting with no tuiwiz equivalent")


def _pretraining(conv: Conversion, entry: Keys) -> None:
    column = entry.take("text_column") or entry.take("field") or "text"
    kind = entry.take("type")
    targets: dict[str, Any] = {"data.format": "text"}
    if column != "text":
        targets["data.columns"] = {"text": column}
    conv.translated(
        entry.name("type"), kind or "pretrain", targets, "plain text, every token trained"
    )


def _prompt_strategy(conv: Conversion, entry: Keys) -> None:
    kind = entry.take("type")
    src = entry.name("type")
    if isinstance(kind, dict):
        _user_defined(conv, entry, Keys(kind, f"{src}."))
    elif kind == "chat_template":
        _chat_template(conv, entry)
    elif isinstance(kind, str) and kind.split(":")[0] == "sharegpt":
        _conversation_columns(conv, entry, "sharegpt", "conversations", src, kind)
    elif isinstance(kind, str) and kind in ALPACA_TYPES:
        conv.translated(src, kind, {"data.format": "alpaca"}, ALPACA_WHY)
    elif kind == "completion":
        if entry.has("field"):
            conv.carried.append(entry.name("field"))
        column = entry.take("field") or "text"
        targets: dict[str, Any] = {"data.format": "text"}
        if column != "text":
            targets["data.columns"] = {"text": column}
        conv.translated(src, kind, targets, "plain text, every token trained")
    elif kind is None:
        conv.check(src, "the dataset has no type; [data] format = auto detects it from the columns")
    else:
        conv.dropped(
            src,
            f"axolotl prompt strategy {shown(kind)} has no tuiwiz equivalent; [data] format = "
            "auto detects the format from the columns (or map them with [data] columns)",
        )


def _user_defined(conv: Conversion, entry: Keys, kind: Keys) -> None:
    """A `type:` mapping of field names (axolotl's user-defined instruction format)."""
    columns = {}
    for ours in ("instruction", "input", "output", "system"):
        theirs = kind.take(f"field_{ours}")
        if isinstance(theirs, str) and theirs != ours:
            columns[ours] = theirs
    targets: dict[str, Any] = {"data.format": "alpaca"}
    if columns:
        targets["data.columns"] = columns
    conv.translated(entry.name("type"), "{field_...}", targets, ALPACA_WHY, show=False)
    for key in list(kind.left):
        kind.take(key)
        conv.dropped(kind.name(key), "a custom prompt layout; " + CHAT_TEMPLATE_WHY)


def _chat_template(conv: Conversion, entry: Keys) -> None:
    """type: chat_template: OpenAI-style messages, or sharegpt from/value, by the keys its
    messages use (message_property_mappings, or the older message_field_role/content)."""
    given = [
        entry.name(k)
        for k in ("message_property_mappings", "message_field_role", "message_field_content")
        if entry.has(k)
    ]
    mapping = entry.take("message_property_mappings") or {}
    if not isinstance(mapping, dict):
        conv.dropped(entry.name("message_property_mappings"), f"{shown(mapping)} is not a mapping")
        mapping = {}
    role = entry.take("message_field_role") or mapping.get("role", "role")
    content = entry.take("message_field_content") or mapping.get("content", "content")
    extra = {k: v for k, v in mapping.items() if k not in ("role", "content") and k != v}
    src = entry.name("type")
    if (role, content) in (("role", "content"), ("from", "value")):
        messages = (role, content) == ("role", "content")
        fmt, column = ("messages", "messages") if messages else ("sharegpt", "conversations")
        _conversation_columns(conv, entry, fmt, column, src, "chat_template")
        conv.carried += given  # read: they chose the format
    else:
        conv.dropped(
            entry.name("message_property_mappings"),
            f"messages keyed {role!r} / {content!r}; tuiwiz reads role / content (messages) "
            "or from / value (sharegpt)",
        )
        conv.check(src, "[data] format = auto: check that tuiwiz reads your rows (`tuiwiz data`)")
    for key in extra:
        conv.dropped(entry.name(f"message_property_mappings.{key}"), "not read by tuiwiz")


def _conversation_columns(
    conv: Conversion, entry: Keys, fmt: str, column: str, src: str, kind: str
) -> None:
    if entry.left.get("field_messages") == column:
        entry.take("field_messages")
        conv.carried.append(entry.name("field_messages"))
    field = entry.take("field_messages") or column
    targets: dict[str, Any] = {"data.format": fmt}
    if field != column:
        targets["data.columns"] = {column: field}
    layout = "role / content" if fmt == "messages" else "from / value"
    why = f"conversations under {field!r} with {layout}; " + CHAT_TEMPLATE_WHY
    conv.translated(src, kind, targets, why)
    _template(conv, entry.name("chat_template"), entry.take("chat_template"))
    _roles(conv, entry, fmt)


def _roles(conv: Conversion, entry: Keys, fmt: str) -> None:
    roles = entry.take("roles")
    if isinstance(roles, dict):
        unread = []
        for target, sources in roles.items():
            for source in sources if isinstance(sources, list) else [sources]:
                if fmt == "messages":
                    read = source == target and target in MESSAGE_ROLES
                else:
                    read = isinstance(source, str) and SHAREGPT_ROLES.get(source) == target
                if not read:
                    unread.append(f"{source} as {target}")
        if unread:
            known = ", ".join(sorted(MESSAGE_ROLES if fmt == "messages" else SHAREGPT_ROLES))
            conv.dropped(
                entry.name("roles"),
                f"{', '.join(unread)}: tuiwiz reads the roles {known}; rows with others are "
                "skipped",
            )
        else:
            conv.carried.append(entry.name("roles"))
    trained = entry.take("roles_to_train")
    if trained in (["assistant"], ["gpt"]):
        conv.carried.append(entry.name("roles_to_train"))  # what tuiwiz trains
    elif trained is not None:
        conv.dropped(
            entry.name("roles_to_train"),
            f"{shown(trained)}: tuiwiz trains the assistant's turns (or every token with "
            "[data] train_on_prompt = true)",
        )
    eos = entry.take("train_on_eos")
    if eos == "turn":
        conv.carried.append(entry.name("train_on_eos"))
    elif eos is not None:
        conv.dropped(
            entry.name("train_on_eos"),
            f"{shown(eos)}: tuiwiz trains the end-of-turn token of each assistant turn (turn)",
        )


def _template(conv: Conversion, src: str, value: Any) -> None:
    """axolotl's chat_template (top level or per dataset): tokenizer_default is what tuiwiz does."""
    if value is None or value == "tokenizer_default":
        if value is not None:
            conv.carried.append(src)
        return
    if isinstance(value, str) and value.startswith("tokenizer_default_fallback_"):
        conv.dropped(
            src,
            f"{value}: the tokenizer's template when it has one (as tuiwiz does); without one "
            "tuiwiz uses the ### Instruction / ### Response layout, not "
            f"{value.removeprefix('tokenizer_default_fallback_')}",
        )
        return
    conv.dropped(src, f"{shown(value)}: {CHAT_TEMPLATE_WHY}")


def top_level_template(conv: Conversion) -> None:
    _template(conv, "chat_template", conv.take("chat_template"))
