"""Download the wheels bench/gpu_session.sh installs on the GPU machine (which has no network),
into .whl/ at the repository's root (ignored by git: add `/.whl/` to .git/info/exclude).

    python3 bench/gpu_wheels.py            # ~25 MB: run here, where PyPI is reachable

The GPU machine's image has torch (2.11, CUDA 13.0), triton, accelerate, tokenizers,
safetensors, huggingface_hub, pyarrow, pandas, numpy, nvidia-ml-py, pyyaml and transformers
5.17, but not bitsandbytes, peft, trl, liger-kernel, datasets or Unsloth. Three groups, each
installed into its own folder, so that two versions of a package never meet:

- common: what every system needs (bitsandbytes, peft, datasets and its dill / multiprocess);
- main: tuiwiz's stack (transformers 5.24, trl 1.16, liger-kernel);
- unsloth: Unsloth and what it pins (trl <= 1.15; it uses the image's transformers 5.17).

Two wheels are slimmed to fit the 64 MiB a device call may carry: bitsandbytes keeps only its
CUDA 13 libraries (the image's torch is built for CUDA 13.0; the wheel carries CUDA 11.8 to 13.2
and ROCm), and Unsloth drops `studio/` (its web UI, 85 MB unpacked; the Python package is
untouched). Each slimmed wheel's RECORD lists exactly what it still holds.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GROUPS = {
    "common": [
        "bitsandbytes==0.50.2",
        "peft==0.21.2",
        "datasets==4.8.5",  # trl 1.16 needs >= 4.7, unsloth < 5; 5.x needs a newer pyarrow
        "dill==0.4.1",
        "multiprocess==0.70.19",
    ],
    "main": ["transformers==5.24.0", "trl==1.16.0", "liger-kernel==0.8.5"],
    "unsloth": [
        "unsloth==2026.10.9",
        "unsloth_zoo==2026.10.9",
        "trl==1.15.0",
        "torchao==0.18.0",
        "cut_cross_entropy==25.1.1",
    ],
}
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
]
# What a slimmed wheel drops: a pattern over the paths inside it.
DROP = {
    "bitsandbytes": re.compile(r"bitsandbytes/libbitsandbytes_(rocm|xpu|cuda1[12]).*\.so$"),
    "unsloth": re.compile(r"^studio/"),
}
LIMIT = 48 << 20  # leaves room for the repository in a 64 MiB call


def download(requirement: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    cmd += ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    subprocess.run([*cmd, "-d", str(dest), requirement], check=True)


def slim(wheel: Path, drop: re.Pattern) -> int:
    """Rewrite `wheel` without the files `drop` matches; returns the bytes saved."""
    before = wheel.stat().st_size
    out = io.BytesIO()
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        names = [n for n in src.namelist() if not drop.search(n)]
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        kept = set(names)
        for name in names:
            if name != record_name:
                dst.writestr(src.getinfo(name), src.read(name))
        rows = csv.reader(io.StringIO(src.read(record_name).decode()))
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        for row in rows:
            if row and (row[0] in kept or row[0] == record_name):
                writer.writerow(row)
        dst.writestr(record_name, text.getvalue())
    wheel.write_bytes(out.getvalue())
    return before - wheel.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=ROOT / ".whl")
    args = parser.parse_args(argv)
    total = 0
    for group, requirements in GROUPS.items():
        folder = args.dest / group
        for requirement in requirements:
            name = re.split(r"[=<>]", requirement)[0].replace("-", "_").lower()
            if not any(p.name.lower().startswith(name + "-") for p in folder.glob("*.whl")):
                download(requirement, folder)
        for wheel in sorted(folder.glob("*.whl")):
            package = wheel.name.split("-")[0].lower()
            if package in DROP and (saved := slim(wheel, DROP[package])):  # idempotent
                print(f"{wheel.name}: slimmed by {saved / 2**20:.1f} MiB")
            size = wheel.stat().st_size
            total += size
            print(f"  {group:8} {wheel.name}  {size / 2**20:.1f} MiB")
    print(f"total {total / 2**20:.1f} MiB in {args.dest}")
    if total > LIMIT:
        print(f"more than {LIMIT >> 20} MiB: the device call would not carry it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
