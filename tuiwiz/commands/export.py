"""`tuiwiz export RUN --out DIR [--merge | --gguf [TYPE]]`: the adapter with its tokenizer, a
merged model, or a GGUF file with an Ollama Modelfile (llama.cpp, Ollama, LM Studio), with a model
card; written aside and renamed into place, so nothing is left half-written."""

from __future__ import annotations

import argparse
from pathlib import Path

from tuiwiz.notices import notice


def add_parser(sub) -> argparse.ArgumentParser:
    from tuiwiz.after.gguf_export import FORMATS
    from tuiwiz.after.quantize import TOOL, TOOL_FORMATS

    p = sub.add_parser(
        "export", help="write a run's adapter, a merged model or a GGUF file, with a model card"
    )
    p.add_argument("run", help="run directory, run id, or unique prefix of an id")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the folder to write (must not exist, or be empty)",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="write a complete model: the adapter merged into the unquantized base weights "
        "(loads with transformers alone, no peft)",
    )
    p.add_argument(
        "--gguf",
        nargs="?",
        const="q8_0",
        metavar="TYPE",
        choices=(*FORMATS, *TOOL_FORMATS),
        help="write model.gguf and an Ollama Modelfile (llama.cpp, Ollama, LM Studio): "
        f"{', '.join(FORMATS)} (default q8_0: half of f16's size, nearly its quality), or "
        f"{', '.join(TOOL_FORMATS)} with llama.cpp's {TOOL} on PATH",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=("auto", "bfloat16", "float16", "float32"),
        help="with --merge: the weights' dtype (auto: the preset's compute dtype)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    from tuiwiz.after.export import check_target, export
    from tuiwiz.after.loading import finished_run, quiet_libraries

    fr = finished_run(args.run)
    check_target(args.out.expanduser())  # before any slow work
    if args.merge or args.gguf:
        quiet_libraries()
    out = export(fr, args.out, merge=args.merge, dtype=args.dtype, progress=notice, gguf=args.gguf)
    kind = f"{args.gguf} GGUF file" if args.gguf else "merged model" if args.merge else "adapter"
    print(f"tuiwiz: exported the {kind} of {fr.name} to {out}")
    if args.gguf:
        from tuiwiz.after.modelfile import ollama_name

        name = ollama_name(fr.name)
        print(f"tuiwiz: run it with Ollama: cd {out} && ollama create {name} -f Modelfile")
    return 0
