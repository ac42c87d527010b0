"""tuiwiz as a package: the wheel holds every file a command reads at run time, the shipped
presets have one source, the README renders on a package index, and every sub-command's --help
says what it does with an example, under the argument names the README uses."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tuiwiz import cli, presets
from tuiwiz.toml import tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REPO = PYPROJECT["project"]["urls"]["Source"]


def tracked(*paths: str) -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "-z", *paths], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [p for p in out.stdout.split("\0") if p]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel, built (as CI builds it) from a copy of the tracked files only."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    for name in tracked():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():
            target.symlink_to((ROOT / name).readlink())
        else:
            shutil.copy2(ROOT / name, target)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(work / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (found,) = (work / "dist").glob("tuiwiz-*.whl")
    return zipfile.ZipFile(found)


def test_the_wheel_holds_every_file_read_at_run_time(wheel):
    """Every tracked file under tuiwiz/ that is not Python (presets, demo data, the browser
    page) is in the wheel, next to the modules that read it."""
    names = set(wheel.namelist())
    data = [p for p in tracked("tuiwiz") if not p.endswith(".py")]
    assert {p for p in data if p.startswith("tuiwiz/shipped_presets/")} == {
        f"tuiwiz/shipped_presets/{n}.toml"
        for n in (
            "demo",
            "llama3.1-8b-chat-24gb",
            "qwen2.5-1.5b-alpaca-8gb",
            "qwen2.5-14b-chat-48gb",
        )
    }
    assert set(data) <= names, set(data) - names
    assert {p for p in tracked("tuiwiz") if p.endswith(".py")} <= names


def test_the_wheel_metadata(wheel):
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    text = wheel.read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel.namelist())
    for version in ("3.10", "3.11", "3.12", "3.13"):
        assert f"Classifier: Programming Language :: Python :: {version}" in text
    assert "Requires-Python: >=3.10" in text
    assert 'Requires-Dist: tomli>=1.1; python_version < "3.11"' in text
    assert f"Project-URL: Source, {REPO}" in text
    assert "Description-Content-Type: text/markdown" in text
    scripts = wheel.read(metadata.replace("METADATA", "entry_points.txt")).decode()
    assert "tuiwiz = tuiwiz.cli:main" in scripts


def test_shipped_presets_have_one_source():
    """tuiwiz/shipped_presets/ is the source; the top-level presets/ is a link to it (or, on a
    filesystem without links, an identical copy)."""
    top = ROOT / "presets"
    assert presets.SHIPPED_DIR == ROOT / "tuiwiz" / "shipped_presets"
    if top.is_symlink():
        assert top.resolve() == presets.SHIPPED_DIR.resolve()
    shipped = {p.name: p.read_bytes() for p in presets.SHIPPED_DIR.glob("*.toml")}
    assert {p.name: p.read_bytes() for p in top.glob("*.toml")} == shipped
    assert len(shipped) == 4


def test_readme_links_are_absolute_and_point_at_real_files():
    """A package index renders the README away from the repository: every image and link must
    be absolute, and the ones into this repository must name files that exist."""
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    assert targets
    raw = REPO.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    for target in targets:
        assert target.startswith(("https://", "http://")), f"relative link: {target}"
        for prefix in (raw, f"{REPO}/blob/main/", f"{REPO}/tree/main/"):
            if target.startswith(prefix):
                assert (ROOT / target[len(prefix) :]).exists(), target
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme):
        assert image.startswith(raw), image


def test_every_command_has_a_description_and_an_example(capsys):
    assert set(cli.EXAMPLES) == set(cli.COMMANDS)
    for command in cli.COMMANDS:
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        _usage, description = text.split("\n\n")[:2]
        assert description.strip() and not description.startswith(("positional", "options")), (
            command
        )
        assert re.search(r"\nexamples?:\n  tuiwiz ", text), command
        for example in cli.EXAMPLES[command]:
            assert example.split()[:2] == ["tuiwiz", command]


def usage_metavars(parser) -> dict[str, str]:
    """Option (or positional "") -> metavar, as --help shows them."""
    found = {}
    for action in parser._actions:  # argparse keeps no public list of a parser's arguments
        metavar = action.metavar or (action.dest.upper() if action.nargs != 0 else None)
        if metavar is None or action.dest == "help":
            continue
        for option in action.option_strings or [""]:
            found.setdefault(option, set()).add(metavar)
    return found


def test_readme_commands_use_the_argument_names_of_the_help():
    """Every `tuiwiz CMD ...` in the README's commands table names its arguments as the
    command's --help does (PRESET, RUN, DIR, ...)."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Commands") : readme.index("### Exit codes")]
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    checked = 0
    for span in re.findall(r"`(tuiwiz [^`]*)`", table):
        words = span.replace("\\|", "|").replace("[", " ").replace("]", " ").split()
        command = words[1] if len(words) > 1 and words[1] in subparsers else None
        known = usage_metavars(subparsers[command] if command else parser)
        rest = words[2:] if command else words[1:]
        for i, word in enumerate(rest):
            after_option = i > 0 and rest[i - 1] in known and rest[i - 1].startswith("-")
            if not word[:1].isupper():
                continue  # options, literal values (axolotl|llamafactory), "..."
            if after_option:
                assert word in known[rest[i - 1]], f"{span}: {rest[i - 1]} {word}"
            else:
                assert word.rstrip(".") in known.get("", set()), f"{span}: {word}"
            checked += 1
    assert checked > 20
