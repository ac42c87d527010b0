"""Presets: every shipped one loads, they round-trip, errors name file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuiwiz import presets
from tuiwiz.errors import ConfigError

SHIPPED = sorted(presets.SHIPPED_DIR.glob("*.toml"))


def test_there_are_shipped_presets():
    names = {p.stem for p in SHIPPED}
    assert "demo" in names
    assert len(names) >= 4


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_preset_loads(path: Path):
    resolved, found = presets.load(str(path))
    assert found == path
    assert resolved["name"] == path.stem
    assert resolved["description"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_presets_are_canonical_and_every_key_is_commented(path: Path):
    """Shipped files are exactly what the preset writer produces: each key with its comment."""
    resolved = presets.config.validate(presets.read_toml(path), source=str(path))
    assert path.read_text() == presets.to_toml(resolved)
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            assert "  # " in line, f"{path.name}: no comment on {line!r}"


def test_shipped_presets_are_found_by_name():
    resolved, path = presets.load("demo")
    assert path == presets.SHIPPED_DIR / "demo.toml"


def test_round_trip_through_save(tmp_path: Path):
    resolved, _ = presets.load(
        "demo", ["training.learning_rate=3e-4", 'data.columns={output = "answer"}']
    )
    saved = presets.save(resolved, "mine", folder=tmp_path)
    again, _ = presets.load(str(saved))
    assert again == {**resolved, "name": "mine"}
    assert saved.stat().st_mode & 0o077 == 0  # owner only


def test_saved_presets_are_listed_and_found_by_name():
    resolved, _ = presets.load("demo")
    presets.save({**resolved, "description": "my variant"}, "my-demo")
    listed = {p.name: p for p in presets.list_presets()}
    assert listed["my-demo"].origin == "saved"
    assert listed["my-demo"].description == "my variant"
    assert presets.load("my-demo")[1] == presets.saved_dir() / "my-demo.toml"


def test_strings_with_quotes_and_newlines_survive(tmp_path: Path):
    resolved, _ = presets.load("demo")
    resolved["description"] = 'says "hi"\nand \\ more\tü'
    again, _ = presets.load(str(presets.save(resolved, "q", folder=tmp_path)))
    assert again["description"] == resolved["description"]


@pytest.mark.parametrize("name", ["", "../evil", "a b", "x" * 65, ".hidden"])
def test_bad_save_names(name: str, tmp_path: Path):
    resolved, _ = presets.load("demo")
    with pytest.raises(ConfigError, match="preset name"):
        presets.save(resolved, name, folder=tmp_path)


def test_toml_syntax_error_names_line_and_column(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[lora]\nr = = 3\n')
    with pytest.raises(ConfigError) as info:
        presets.load(str(bad))
    assert str(bad) in str(info.value)
    assert "line 3, column" in str(info.value)


def test_missing_preset_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such preset file"):
        presets.load(str(tmp_path / "nope.toml"))


def test_unknown_preset_name_suggests():
    with pytest.raises(ConfigError, match="did you mean 'demo'"):
        presets.load("demoo")


def test_paths_relative_to_the_preset_file(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    p = tmp_path / "sub" / "p.toml"
    p.write_text('[model]\nname_or_path = "./model"\n[data]\npath = "../data.jsonl"\n')
    resolved, _ = presets.load(str(p))
    assert resolved["model"]["name_or_path"] == str(tmp_path / "sub" / "model")
    assert resolved["data"]["path"] == str(tmp_path / "data.jsonl")


def test_a_folder_named_like_a_preset_does_not_hide_it(tmp_path, monkeypatch):
    (tmp_path / "demo").mkdir()
    monkeypatch.chdir(tmp_path)
    resolved, path = presets.load("demo")
    assert path == presets.SHIPPED_DIR / "demo.toml"


def test_bare_relative_paths_are_resolved_once_from_the_preset_file(tmp_path: Path, monkeypatch):
    """`data/train.jsonl` (the README's own example) is the file beside the preset, whatever the
    working directory; a run's preset.toml records it absolute."""
    (tmp_path / "project" / "data").mkdir(parents=True)
    (tmp_path / "project" / "data" / "train.jsonl").write_text("{}\n")
    (tmp_path / "project" / "model").mkdir()
    p = tmp_path / "project" / "p.toml"
    p.write_text('[model]\nname_or_path = "model"\n[data]\npath = "data/train.jsonl"\n')
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    (elsewhere / "data" / "train.jsonl").write_text("{}\n")  # a decoy the old code read
    monkeypatch.chdir(elsewhere)
    resolved, _ = presets.load(str(p))
    assert resolved["data"]["path"] == str(tmp_path / "project" / "data" / "train.jsonl")
    assert resolved["model"]["name_or_path"] == str(tmp_path / "project" / "model")


def test_set_paths_are_relative_to_the_working_directory(tmp_path: Path, monkeypatch):
    (tmp_path / "mine.jsonl").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    resolved, _ = presets.load("demo", ["data.path=mine.jsonl"])
    assert resolved["data"]["path"] == str(tmp_path / "mine.jsonl")
    assert resolved["model"]["name_or_path"] == "tuiwiz:demo-model"  # bundled names stay


def test_hub_ids_stay_hub_ids(tmp_path: Path):
    p = tmp_path / "p.toml"
    p.write_text('[model]\nname_or_path = "Qwen/Qwen2.5-0.5B"\n[data]\npath = "tatsu-lab/alpaca"\n')
    resolved, _ = presets.load(str(p))
    assert resolved["model"]["name_or_path"] == "Qwen/Qwen2.5-0.5B"
    assert resolved["data"]["path"] == "tatsu-lab/alpaca"
    p.write_text('[model]\nname_or_path = "gpt2"\n[data]\npath = "train.jsonl"\n')
    resolved, _ = presets.load(str(p))
    assert resolved["model"]["name_or_path"] == "gpt2"  # a legacy Hub id without an owner
    assert resolved["data"]["path"] == str(tmp_path / "train.jsonl")  # no Hub id: a local file


def test_a_run_preset_with_a_relative_path_is_refused(tmp_path: Path):
    p = tmp_path / "preset.toml"
    p.write_text('[model]\nname_or_path = "./model"\n[data]\npath = "train.jsonl"\n')
    with pytest.raises(ConfigError, match="relative path") as info:
        presets.load_run_preset(p)
    assert "[model] name_or_path = './model'" in str(info.value)


def test_a_utf8_bom_is_accepted(tmp_path: Path):
    """Windows editors write a byte order mark; it is not part of the TOML."""
    path = tmp_path / "bom.toml"
    text = '[model]\nname_or_path = "m"\n[data]\npath = "d.jsonl"\n'
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    resolved, _ = presets.load(str(path))
    assert resolved["model"]["name_or_path"] == "m"


def test_load_without_data_for_the_estimate(tmp_path: Path):
    path = tmp_path / "no-data.toml"
    path.write_text('[model]\nname_or_path = "m"\n')
    with pytest.raises(ConfigError, match=r"no-data.toml: \[data\] path is required"):
        presets.load(str(path))  # `tuiwiz run` and `tuiwiz data` need the data
    resolved, _ = presets.load(str(path), require_data=False)
    assert resolved["data"]["path"] is None


def test_a_set_error_blames_the_set_flag_not_the_file():
    with pytest.raises(ConfigError) as info:
        presets.load("demo", ["training.learning_rate=-1"])
    assert str(info.value).startswith("--set training.learning_rate=-1: [training] learning_rate")
