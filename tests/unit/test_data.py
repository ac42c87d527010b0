"""Dataset reading, format detection, rendering and label masking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuiwiz import config
from tuiwiz.data import formats, prepare, readers, render
from tuiwiz.errors import DataError


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def data_section(path: Path, **keys) -> dict:
    raw = {"model": {"name_or_path": "m"}, "data": {"path": str(path), **keys}}
    return config.validate(raw)["data"]


ALPACA = [
    {"instruction": "Say hi", "input": "", "output": "hi"},
    {"instruction": "Add", "input": "1+1", "output": "2"},
]


# --- readers -----------------------------------------------------------------------------


def test_jsonl_malformed_line_is_named(tmp_path: Path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "a"}\n\n{"text": "b"\n')
    with pytest.raises(DataError, match=r"d.jsonl:3: malformed JSON"):
        readers.read_rows(str(f))


def test_empty_and_missing_and_unknown_files(tmp_path: Path):
    (tmp_path / "e.jsonl").write_text("\n \n")
    with pytest.raises(DataError, match="the file is empty"):
        readers.read_rows(str(tmp_path / "e.jsonl"))
    with pytest.raises(DataError, match="no such file"):
        readers.read_rows(str(tmp_path / "missing.jsonl"))
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        readers.read_rows(str(tmp_path / "x.xlsx"))


def test_non_utf8_names_the_line(tmp_path: Path):
    f = tmp_path / "d.jsonl"
    f.write_bytes(b'{"text": "a"}\n{"text": "\xff"}\n')
    with pytest.raises(DataError, match=r"d.jsonl:2: not UTF-8"):
        readers.read_rows(str(f))


def test_every_file_type_reads_the_same_rows(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_jsonl(tmp_path / "a.jsonl", ALPACA)
    (tmp_path / "a.json").write_text(json.dumps(ALPACA))
    (tmp_path / "b.json").write_text(json.dumps({"train": ALPACA}))
    (tmp_path / "a.csv").write_text("instruction,input,output\nSay hi,,hi\nAdd,1+1,2\n")
    pq.write_table(pa.Table.from_pylist(ALPACA), tmp_path / "a.parquet")
    for name in ("a.jsonl", "a.json", "b.json", "a.csv", "a.parquet"):
        assert readers.read_rows(str(tmp_path / name)) == ALPACA, name


def test_txt_is_one_text_per_line_and_directories_concatenate(tmp_path: Path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "1.txt").write_text("first line\n\nsecond line\n")
    (tmp_path / "d" / "2.txt").write_text("third\n")
    rows = readers.read_rows(str(tmp_path / "d"))
    assert rows == [{"text": "first line"}, {"text": "second line"}, {"text": "third"}]


def test_hub_id_while_offline_is_one_line():
    """In a process of its own: datasets reads HF_DATASETS_OFFLINE when it is imported (set
    later, it would retry the network for seconds)."""
    code = (
        "from tuiwiz.data import readers\n"
        "try:\n"
        "    readers.read_rows('someone/no-such-dataset-xyz')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__); print(e)\n"
    )
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    ).stdout.splitlines()
    assert out[0] == "DataError"
    assert "cannot load from the Hugging Face Hub" in out[1] and len(out) == 2


# --- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"instruction": "a", "input": "", "output": "b"}, "alpaca"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            "messages",
        ),
        (
            {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]},
            "sharegpt",
        ),
        ({"prompt": "a", "completion": "b"}, "prompt_completion"),
        ({"text": "a"}, "text"),
    ],
)
def test_detection(row, expected):
    fmt, why = formats.detect([row], {}, "d")
    assert fmt == expected
    assert "found column" in why


def test_detection_failure_lists_columns_and_fix():
    with pytest.raises(DataError) as info:
        formats.detect([{"question": "a", "answer": "b"}], {}, "d.jsonl")
    assert "(answer, question)" in str(info.value)
    assert "[data] columns" in str(info.value)


def test_column_mapping():
    rows = [{"question": "What?", "answer": "That."}]
    result = formats.normalize(rows, "alpaca", {"instruction": "question", "output": "answer"}, "d")
    assert result.examples[0].messages == [
        {"role": "user", "content": "What?"},
        {"role": "assistant", "content": "That."},
    ]


def test_missing_columns_for_explicit_format():
    with pytest.raises(DataError, match="format 'alpaca' needs column output, found instruction"):
        formats.normalize([{"instruction": "a"}], "alpaca", {}, "d")


def test_a_missing_unmapped_column_suggests_mapping_that_column():
    with pytest.raises(DataError) as info:
        formats.normalize([{"instruction": "a", "response": "b"}], "alpaca", {}, "d.jsonl")
    text = str(info.value)
    assert "needs column output, found instruction, response" in text
    assert '[data] columns = {output = "your_column"}' in text  # not {instruction = ...}


def test_a_mapping_to_a_missing_column_says_so():
    """output = "answer" but the data has no answer column: the mapping is what to fix."""
    rows = [{"instruction": "a", "response": "b"}]
    for fmt in ("alpaca", "auto"):
        with pytest.raises(DataError) as info:
            formats.normalize(rows, fmt, {"output": "answer"}, "d.jsonl")
        text = str(info.value)
        assert text.startswith("d.jsonl: ") and "\n" not in text
        assert 'the mapped column "answer" (for output) is missing' in text, text
        assert "columns found: instruction, response" in text
        assert "[data] columns" in text and "output" in text
        assert "instruction =" not in text


def test_bad_rows_are_skipped_and_counted():
    rows = [
        *ALPACA,
        {"instruction": "", "output": "x"},
        {"instruction": "a", "output": 5},
        {"instruction": "a", "input": ["x"], "output": "y"},
    ]
    result = formats.normalize(rows, "alpaca", {}, "d")
    assert len(result.examples) == 2
    assert sum(result.skipped.values()) == 3


def test_sharegpt_roles_are_mapped():
    row = {
        "conversations": [
            {"from": "system", "value": "s"},
            {"from": "human", "value": "q"},
            {"from": "gpt", "value": "a"},
        ]
    }
    example = formats.normalize([row], "auto", {}, "d").examples[0]
    assert [m["role"] for m in example.messages] == ["system", "user", "assistant"]


# --- rendering and masking ----------------------------------------------------------------


def trained_text(tokenizer, ids, labels) -> str:
    return tokenizer.decode([t for t, lab in zip(ids, labels) if lab != -100])


def test_chat_template_masks_the_prompt(demo_tokenizer):
    example = formats.to_example(ALPACA[1], "alpaca", {})
    segments = render.render(example, demo_tokenizer)
    full = demo_tokenizer.apply_chat_template(example.messages, tokenize=False)
    assert "".join(s.text for s in segments) == full
    ids, labels = render.tokenize_batch([segments], demo_tokenizer)
    assert trained_text(demo_tokenizer, ids[0], labels[0]) == "2" + demo_tokenizer.eos_token
    assert ids[0] == demo_tokenizer(full, add_special_tokens=False)["input_ids"]


def test_multi_turn_trains_every_assistant_turn(demo_tokenizer):
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "B"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "D"},
    ]
    segments = render.render(formats.Example(messages=messages), demo_tokenizer)
    ids, labels = render.tokenize_batch([segments], demo_tokenizer)
    eos = demo_tokenizer.eos_token
    assert trained_text(demo_tokenizer, ids[0], labels[0]) == f"B{eos}D{eos}"


def test_train_on_prompt_trains_everything(demo_tokenizer):
    example = formats.to_example(ALPACA[0], "alpaca", {})
    ids, labels = render.tokenize_batch(
        [render.render(example, demo_tokenizer, True)], demo_tokenizer
    )
    assert labels[0] == ids[0]


def test_default_template_without_chat_template(demo_tokenizer):
    import copy

    plain = copy.deepcopy(demo_tokenizer)
    plain.chat_template = None
    example = formats.to_example(ALPACA[1], "alpaca", {})
    segments = render.render(example, plain)
    text = "".join(s.text for s in segments)
    assert text.startswith("### Instruction:\nAdd\n\n1+1\n\n### Response:\n")
    ids, labels = render.tokenize_batch([segments], plain)
    assert trained_text(plain, ids[0], labels[0]) == "2" + plain.eos_token
    assert render.prompt_text(example, plain) == "### Instruction:\nAdd\n\n1+1\n\n### Response:\n"


def test_prompt_completion_and_text(demo_tokenizer):
    pc = formats.Example(prompt="2+2=", completion="4")
    ids, labels = render.tokenize_batch([render.render(pc, demo_tokenizer)], demo_tokenizer)
    assert trained_text(demo_tokenizer, ids[0], labels[0]) == "4" + demo_tokenizer.eos_token
    text = formats.Example(text="abc")
    ids, labels = render.tokenize_batch([render.render(text, demo_tokenizer)], demo_tokenizer)
    assert labels[0] == ids[0]


# --- prepare: truncation, statistics, cache -------------------------------------------------


def test_prepare_truncates_reports_and_caches(tmp_path, monkeypatch, demo_tokenizer):
    monkeypatch.setenv("TUIWIZ_CACHE_DIR", str(tmp_path / "cache"))
    rows = [{"instruction": "Repeat", "input": "x" * n, "output": "y" * n} for n in range(1, 41)]
    data = data_section(
        write_jsonl(tmp_path / "d.jsonl", rows), max_seq_length=40, validation_split=0.1
    )
    train, validation, report = prepare.prepare(data, demo_tokenizer, log=lambda m: None)
    assert report.format == "alpaca" and report.rows == 40
    assert report.max_tokens > 40 and report.truncated > 0
    assert report.median_tokens < report.p95_tokens <= report.max_tokens
    assert max(len(ids) for ids in train["input_ids"]) <= 40
    assert report.train_examples + report.validation_examples == report.examples
    assert len(validation) == report.validation_examples > 0
    assert not report.cached
    again_train, _, again = prepare.prepare(data, demo_tokenizer, log=lambda m: None)
    assert again.cached
    assert again_train["input_ids"] == train["input_ids"]
    # A change in the data means a new tokenization.
    write_jsonl(tmp_path / "d.jsonl", rows[:-1])
    assert not prepare.prepare(data, demo_tokenizer, log=lambda m: None)[2].cached


# --- preview --------------------------------------------------------------------------------


def test_preview_renders_examples_and_measures_lengths(tmp_path, demo_tokenizer):
    from tuiwiz.data.preview import preview

    rows = [{"instruction": "Repeat", "input": "x" * n, "output": "y" * n} for n in range(1, 21)]
    rows.append({"instruction": "", "output": "dropped"})
    data = data_section(write_jsonl(tmp_path / "d.jsonl", rows), max_seq_length=40)
    result = preview(data, demo_tokenizer, count=2)
    assert (result.format, result.rows, result.measured) == ("alpaca", 21, 20)
    assert result.why == "found columns instruction, output"
    assert sum(result.skipped.values()) == 1
    assert len(result.examples) == 2
    assert [s.text for s in result.examples[0] if s.trained] == ["y" + demo_tokenizer.eos_token]
    assert result.median_tokens < result.p95_tokens <= result.max_tokens
    assert 0 < result.truncated_share < 1


def test_csv_fields_beyond_the_header_are_dropped(tmp_path: Path):
    """Found by hypothesis: extra fields land under the key None in csv.DictReader."""
    (tmp_path / "d.csv").write_text("text\nhello,extra\n")
    assert readers.read_rows(str(tmp_path / "d.csv")) == [{"text": "hello"}]
    (tmp_path / "e.csv").write_bytes(b"\n\x00")
    with pytest.raises(DataError, match="cannot tell the dataset format"):
        formats.normalize(readers.read_rows(str(tmp_path / "e.csv")), "auto", {}, "e.csv")


def test_a_lone_surrogate_is_a_skipped_row_not_a_crash(tmp_path):
    """JSON can spell half of an emoji ("\\ud800"): that row is skipped and counted, and the
    others tokenize."""
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"instruction": "Uppercase:", "input": "abc", "output": "ABC"}\n'
        '{"instruction": "Uppercase:", "input": "caf\\ud800", "output": "CAF"}\n'
    )
    rows = readers.read_rows(str(path))
    result = formats.normalize(rows, "auto", {}, str(path))
    assert len(result.examples) == 1
    assert result.skipped == {formats.BROKEN_TEXT: 1}
