"""Export a finished run: its adapter with its tokenizer, or (merge) a complete model with the
adapter merged into the base model's 16-bit (or 32-bit) weights; a model card either way.

Everything is written into a hidden folder beside the target and renamed into place at the end,
so a failure (a full disk, an interrupted merge) never leaves a half-written export.
Merging follows the usual QLoRA practice: the base is loaded again *unquantized* in the dtype
the preset computes in, and the adapter (trained against the 4-bit weights) is added to those
weights with peft's `merge_and_unload`. The result loads with `AutoModelForCausalLM` alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from tuiwiz.after.loading import FinishedRun
from tuiwiz.errors import TuiwizError

# Adapter-folder files that stay behind: a pickle of the training arguments (not needed to use
# the adapter, and unsafe to load), and peft's placeholder card (ours replaces it).
LEFT_OUT = {"training_args.bin", "README.md"}
PRESET_FILE = "tuiwiz-preset.toml"  # the preset the run trained with, to replay it
DTYPES = ("auto", "bfloat16", "float16", "float32")
TEXT_NAMES = {"Modelfile"}
TEXT_SUFFIXES = {".json", ".md", ".txt", ".jinja", ".toml", ".yaml", ".yml", ".py"}
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN")


def check_target(out: Path) -> None:
    """The export folder must not exist yet, or be an empty folder."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise TuiwizError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        raise TuiwizError(f"{out}: exists and is not empty; choose another --out or empty it")


def secrets() -> list[str]:
    """Access tokens this process knows of (environment, Hugging Face's token file)."""
    found = [os.environ[name] for name in TOKEN_VARIABLES if os.environ.get(name)]
    try:
        from huggingface_hub import get_token

        token = get_token()
    except Exception:  # no huggingface_hub or an unreadable token file: nothing more to look for
        token = None
    if token:
        found.append(token)
    return [s for s in set(found) if len(s) >= 8]


def assert_no_secrets_in(texts: list[str], tokens: list[str]) -> None:
    """Refuse to write text (a GGUF file's metadata) that contains an access token."""
    if any(token in text for text in texts for token in tokens):
        raise TuiwizError(
            "the model's metadata would contain an access token; nothing was exported"
        )


def assert_no_secrets(folder: Path, tokens: list[str]) -> None:
    """Refuse an export whose text files contain an access token."""
    for path in folder.rglob("*"):
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES):
            data = path.read_bytes()
            if any(token.encode() in data for token in tokens):
                raise TuiwizError(
                    f"{path.name} would contain an access token; nothing was exported"
                )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _usual_permissions(folder: Path) -> None:
    """Modes as mkdir and open would give them (mkdtemp and some writers make owner-only ones):
    the export is meant to be used, unlike the owner-only run directory it comes from."""
    mask = _umask()
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def resolve_dtype(fr: FinishedRun, name: str) -> str:
    """The merged weights' dtype: --dtype, or what the preset computes in (`auto`)."""
    from tuiwiz.train import builders

    if name not in DTYPES:
        raise TuiwizError(f"--dtype: '{name}' is not one of {', '.join(DTYPES)}")
    if name != "auto":
        return name
    return str(builders.model_dtype(fr.config)).removeprefix("torch.")


def write_adapter(fr: FinishedRun, staging: Path) -> None:
    for entry in sorted(fr.adapter.iterdir()):
        if entry.name in LEFT_OUT or entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, staging / entry.name, copy_function=shutil.copyfile)
        else:
            shutil.copyfile(entry, staging / entry.name)


def merged_model(fr: FinishedRun, dtype: str | None, progress, as_trained: bool = False):
    """The base model with the adapter merged into its weights, on the CPU. The base is loaded
    unquantized (in `dtype`, default the preset's), or with `as_trained` exactly as training held
    it: a 4-bit or 8-bit base is loaded quantized and dequantized, so the merged weights are those
    `tuiwiz chat` and `tuiwiz eval` answer with."""
    import warnings

    import torch
    from peft import PeftModel

    from tuiwiz.train import builders

    path = fr.model_path(progress)
    name = fr.config["model"]["name_or_path"]
    quantized = as_trained and builders.bnb_config(fr.config["quantization"]) is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if quantized:
            progress(f"loading {name} quantized, as training held it, on the CPU")
            base = builders.load_base_model(path, fr.config, on_cpu=True).dequantize()
        else:
            dtype = dtype or str(builders.model_dtype(fr.config)).removeprefix("torch.")
            progress(f"loading {name} unquantized in {dtype} on the CPU")
            base = builders.load_base_model(
                path, fr.config, quantize=False, dtype=getattr(torch, dtype), on_cpu=True
            )
        model = PeftModel.from_pretrained(base, str(fr.adapter))
        progress("merging the adapter into the weights")
        return model.merge_and_unload(safe_merge=True)


def write_merged(fr: FinishedRun, staging: Path, dtype: str, progress) -> None:
    from transformers import AutoTokenizer

    merged = merged_model(fr, dtype, progress)
    progress("writing the merged model")
    merged.save_pretrained(str(staging))
    AutoTokenizer.from_pretrained(str(fr.adapter)).save_pretrained(str(staging))


def _make_parents(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; returns the folders created, outermost first,
    so that a failed export can take them away again."""
    missing: list[Path] = []
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    created: list[Path] = []
    try:
        for path in reversed(missing):
            path.mkdir()
            created.append(path)
    except BaseException:
        _remove_empty(created)
        raise
    return created


def _remove_empty(folders: list[Path]) -> None:
    for path in reversed(folders):
        # A folder that is not empty any more (someone else wrote there) is theirs to keep.
        with contextlib.suppress(OSError):
            path.rmdir()


def _why(error: OSError) -> str:
    """An OS error in words, with the path it concerns: "Permission denied (/srv/models)"."""
    text = error.strerror or str(error)
    return f"{text} ({error.filename})" if error.filename else text


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def export(
    fr: FinishedRun,
    out: Path,
    merge: bool = False,
    dtype: str = "auto",
    progress: Callable[[str], None] = lambda message: None,
    gguf: str | None = None,
    fraction: Callable[[float], None] = lambda done: None,
) -> Path:
    """Write the export to `out` (which must not exist or be empty); returns `out`. `gguf`: a
    GGUF file of that type (gguf_export.all_formats()) with an Ollama Modelfile instead of the
    adapter; `fraction` hears how much of the GGUF file is written."""
    from tuiwiz.after.card import card_text, facts_from_run
    from tuiwiz.fileio import write_atomic

    out = out.expanduser().absolute()
    check_target(out)
    if gguf and merge:
        raise TuiwizError("--gguf and --merge are two exports; choose one")
    if gguf and dtype != "auto":
        raise TuiwizError("--dtype goes with --merge; --gguf chooses the file's type")
    dtype = resolve_dtype(fr, dtype) if merge else None
    plan = None
    if gguf:
        from tuiwiz.after import gguf_export

        plan = gguf_export.prepare(fr, gguf, _existing(out.parent), progress)
        assert_no_secrets_in([plan.name, plan.vocab.chat_template or ""], secrets())
    created: list[Path] = []
    staging: Path | None = None
    try:
        created = _make_parents(out.parent)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
        if plan is not None:
            from tuiwiz.after import gguf_export, modelfile

            gguf_export.write_into(fr, staging, plan, progress, fraction)
            for note in modelfile.write_for_run(fr, staging, plan):
                progress(note)
        elif merge:
            write_merged(fr, staging, dtype, progress)
        else:
            write_adapter(fr, staging)
        facts = facts_from_run(fr.run.path, fr.config, merged=merge, dtype=dtype, gguf=gguf)
        write_atomic(staging / "README.md", card_text(facts))
        write_atomic(staging / PRESET_FILE, fr.run.preset.read_text(encoding="utf-8"))
        assert_no_secrets(staging, secrets())
        _usual_permissions(staging)
        check_target(out)  # still free: nothing appeared there while we worked
        if out.is_dir():
            out.rmdir()
        staging.rename(out)
    except BaseException as e:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        if isinstance(e, OSError):
            raise TuiwizError(
                f"cannot write the export to {out}: {_why(e)}; nothing was exported"
            ) from None
        raise
    return out
