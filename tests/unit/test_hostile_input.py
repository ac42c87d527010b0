"""Property-based: any preset text or dataset file gives a valid result or a clear error.

"Clear error" means a TuiwizError (one line, printed by the CLI with exit 2): never another
exception, which would reach the user as a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuiwiz import config, presets
from tuiwiz.data import formats, readers
from tuiwiz.errors import TuiwizError
from tuiwiz.toml import tomllib

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)
keys = st.sampled_from([*config.TOP_LEVEL, *config.SECTIONS, "x"])
section_keys = st.sampled_from(
    [k for section in config.SCHEMA.values() for k in section]
    + ["learning_rate", "per_device_train_batch_size", "optim", "bf16", "max_steps", "zzz"]
)


def one_line_or_valid(fn) -> None:
    try:
        fn()
    except TuiwizError as e:
        assert str(e) and "\n" not in str(e)


@SETTINGS
@given(
    st.dictionaries(
        keys, st.one_of(values, st.dictionaries(section_keys, values, max_size=6)), max_size=6
    )
)
def test_validate_never_raises_anything_else(raw):
    one_line_or_valid(lambda: config.validate(raw, source="p.toml"))


@SETTINGS
@given(st.text(max_size=300))
def test_preset_text_never_raises_anything_else(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("p") / "p.toml"
    path.write_text(text, encoding="utf-8")
    one_line_or_valid(lambda: presets.load(str(path)))


@SETTINGS
@given(st.lists(st.text(max_size=30), max_size=4))
def test_overrides_never_raise_anything_else(overrides):
    base = {"model": {"name_or_path": "m"}, "data": {"path": "d"}}
    one_line_or_valid(lambda: config.validate(config.apply_overrides(base, overrides)))


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from([".jsonl", ".json", ".csv", ".txt", ".parquet"]))
def test_dataset_bytes_never_raise_anything_else(tmp_path_factory, content, suffix):
    path = tmp_path_factory.mktemp("d") / f"d{suffix}"
    path.write_bytes(content)

    def read_and_normalize():
        rows = readers.read_rows(str(path))
        formats.normalize(rows, "auto", {}, str(path))

    one_line_or_valid(read_and_normalize)


row_values = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=40),
    st.lists(st.text(max_size=5)),
    st.lists(
        st.dictionaries(
            st.sampled_from(["role", "content", "from", "value"]), st.text(max_size=8), max_size=2
        ),
        max_size=3,
    ),
)
rows_strategy = st.lists(
    st.dictionaries(
        st.sampled_from(
            [
                "instruction",
                "input",
                "output",
                "messages",
                "conversations",
                "prompt",
                "completion",
                "text",
                "other",
            ]
        ),
        row_values,
        max_size=4,
    ),
    min_size=1,
    max_size=8,
)


@SETTINGS
@given(rows_strategy)
def test_mixed_rows_are_used_or_counted(tmp_path_factory, rows):
    """Every row is either an example or counted as skipped with a reason."""
    path = tmp_path_factory.mktemp("d") / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    try:
        result = formats.normalize(readers.read_rows(str(path)), "auto", {}, str(path))
    except TuiwizError as e:
        assert "\n" not in str(e)
        return
    assert len(result.examples) + sum(result.skipped.values()) == len(rows)


def test_shipped_presets_survive_a_toml_round_trip():
    for path in sorted(presets.SHIPPED_DIR.glob("*.toml")):
        resolved, _ = presets.load(str(path))
        assert tomllib.loads(presets.to_toml(resolved))["name"] == resolved["name"]
        assert Path(path).read_text().count("\n") > 20
