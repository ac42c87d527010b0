"""[launch]: validation, process counts, the torchrun / node / Slurm commands, and the Hugging Face
settings of DDP and FSDP-QLoRA (built here on the CPU; FSDP itself needs GPUs)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tuiwiz import config as cfg
from tuiwiz import launch, presets
from tuiwiz.errors import ConfigError
from tuiwiz.toml import tomllib
from tuiwiz.train import torchrun

NVML = Path(__file__).parent.parent / "fixtures" / "nvml"


def demo(*overrides: str) -> dict:
    return presets.load("demo", list(overrides))[0]


# --- the [launch] section --------------------------------------------------------------------


def test_defaults_are_one_process_and_not_written_to_presets():
    config = demo()
    assert config["launch"] == launch.DEFAULTS
    assert launch.DEFAULTS == {
        "nproc_per_node": 1,
        "nnodes": 1,
        "node_rank": 0,
        "master_addr": "127.0.0.1",
        "master_port": 29500,
        "strategy": "ddp",
    }
    assert launch.launch_of(config).world_size == 1 and not launch.launch_of(config).distributed
    assert "[launch]" not in presets.to_toml(config)  # presets of one process read as before


def test_a_non_default_launch_section_is_written_whole_and_reads_back():
    config = demo("launch.nproc_per_node=2", "launch.strategy=fsdp")
    text = presets.to_toml(config)
    assert "[launch]" in text
    written = tomllib.loads(text)["launch"]
    assert written == {**launch.DEFAULTS, "nproc_per_node": 2, "strategy": "fsdp"}
    assert cfg.validate(tomllib.loads(text)) == config


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("launch.nproc_per_node=0", "nproc_per_node must be >= 1"),
        ('launch.nproc_per_node="all"', 'or "auto"'),
        ("launch.nproc_per_node=true", "nproc_per_node must be an integer or a string"),
        ("launch.nnodes=0", "nnodes must be >= 1"),
        ("launch.node_rank=-1", "node_rank must be >= 0"),
        ("launch.node_rank=2", "node_rank = 2 must be below nnodes = 1"),
        ("launch.master_port=70000", "master_port must be a TCP port"),
        ('launch.master_addr=""', "master_addr must be a host name"),
        ("launch.strategy=deepspeed", "strategy = 'deepspeed' is not one of 'ddp', 'fsdp'"),
        ("launch.nproc=2", "unknown key [launch] nproc (did you mean 'nproc_per_node'?)"),
    ],
)
def test_bad_launch_values_get_one_line(override: str, needle: str):
    with pytest.raises(ConfigError) as info:
        demo(override)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_auto_is_every_visible_gpu_or_one(monkeypatch):
    config = demo('launch.nproc_per_node="auto"', "launch.nnodes=2")
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "two_gpus_busy.json"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert launch.launch_of(config).nproc_per_node == 2
    assert launch.launch_of(config).world_size == 4
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert launch.launch_of(config).nproc_per_node == 1
    assert launch.resolve(config)["launch"]["nproc_per_node"] == 1
    monkeypatch.setenv("TUIWIZ_FAKE_NVML", str(NVML / "no_driver.json"))
    assert launch.launch_of(config).nproc_per_node == 1  # no GPU: one process


def test_checks_against_the_machine():
    two = launch.launch_of(demo("launch.nproc_per_node=2"))
    launch.check(two, gpus=0, cuda=False)  # several processes on the CPU: allowed (gloo)
    launch.check(two, gpus=2, cuda=True)
    with pytest.raises(ConfigError, match=r"nproc_per_node = 2 but only 1 GPU\(s\) are visible"):
        launch.check(two, gpus=1, cuda=True)
    fsdp = launch.launch_of(demo("launch.nproc_per_node=2", "launch.strategy=fsdp"))
    with pytest.raises(ConfigError, match='strategy = "fsdp" needs NVIDIA GPUs'):
        launch.check(fsdp, gpus=0, cuda=False)
    launch.check(fsdp, gpus=2, cuda=True)
    with pytest.raises(ConfigError, match="at least 2"):
        launch.check(launch.launch_of(demo("launch.strategy=fsdp")), gpus=1, cuda=True)


# --- commands ----------------------------------------------------------------------------------


def test_torchrun_command_for_one_node_uses_a_free_local_port(tmp_path: Path):
    command = torchrun.torchrun_command(launch.launch_of(demo("launch.nproc_per_node=2")), tmp_path)
    assert command[1:3] == ["-m", "torch.distributed.run"]
    assert "--nproc-per-node=2" in command and "--nnodes=1" in command
    assert "--standalone" in command and "--max-restarts=0" in command
    assert command[command.index("--standalone") + 1 :] == [
        "-m",
        "tuiwiz.train",
        "--run-dir",
        str(tmp_path),
        "--rank-process",
    ]


def test_torchrun_command_for_several_nodes_meets_at_node_0(tmp_path: Path):
    config = demo(
        "launch.nnodes=3",
        "launch.node_rank=2",
        'launch.master_addr="10.0.0.5"',
        "launch.master_port=29611",
    )
    command = torchrun.torchrun_command(
        launch.launch_of(config), tmp_path, config_file=tmp_path / "p.toml"
    )
    assert "--standalone" not in command
    for arg in ("--nnodes=3", "--node-rank=2", "--master-addr=10.0.0.5", "--master-port=29611"):
        assert arg in command
    assert command[-2:] == ["--config", str(tmp_path / "p.toml")]


def test_node_0_prints_the_command_of_every_other_node(tmp_path: Path):
    run = tmp_path / "my run"
    config = demo("launch.nnodes=3", 'launch.master_addr="node0.cluster"')
    commands = torchrun.node_commands(launch.launch_of(config), run)
    assert [k for k, _ in commands] == [1, 2]
    argv = shlex.split(commands[1][1])
    assert argv == [
        "tuiwiz",
        "run",
        str(run / "preset.toml"),
        "--set",
        "launch.node_rank=2",
        "--output-dir",
        str(run),
    ]
    text = "\n".join(torchrun.node_instructions(launch.launch_of(config), run))
    assert "node0.cluster:29500" in text and "shared filesystem" in text
    assert "127.0.0.1" not in text
    assert torchrun.node_instructions(launch.launch_of(demo("launch.nproc_per_node=2")), run) == []


# --- the Slurm script --------------------------------------------------------------------------


def slurm(tmp_path: Path, *overrides: str) -> tuple[str, dict, Path]:
    config = demo("launch.nnodes=2", "launch.nproc_per_node=4", *overrides)
    run = tmp_path / "shared" / "run"
    return torchrun.slurm_script(config, run, presets.to_toml(config)), config, run


def test_slurm_script_directives_and_srun_torchrun(tmp_path: Path):
    script, config, run = slurm(tmp_path, "launch.master_port=29777")
    assert script.startswith("#!/bin/bash\n")
    directives = dict(
        re.match(r"#SBATCH --([a-z-]+)=(\S+)", line).groups()
        for line in script.splitlines()
        if line.startswith("#SBATCH --") and "=" in line
    )
    assert directives["nodes"] == "2"
    assert directives["ntasks-per-node"] == "1"  # one torchrun per node
    assert directives["gpus-per-node"] == "4"
    assert directives["signal"].startswith("TERM@")
    assert 'HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)' in script
    # The srun line, continuation lines joined, as the shell reads it.
    joined = script.replace("\\\n", " ")
    srun = next(line for line in joined.splitlines() if line.startswith("srun "))
    argv = shlex.split(srun.split(" || ")[0])
    assert argv[:4] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert argv[5:7] == ["-m", "torch.distributed.run"]  # torchrun
    torchrun = argv[7 : argv.index("-m", 7)]
    assert "--nnodes=2" in torchrun and "--nproc-per-node=4" in torchrun
    assert "--rdzv-backend=c10d" in torchrun
    assert "--rdzv-endpoint=$HEAD_NODE:$PORT" in torchrun
    assert "--rdzv-id=$SLURM_JOB_ID" in torchrun
    assert "--max-restarts=0" in torchrun
    assert argv[argv.index("-m", 7) :] == [
        "-m",
        "tuiwiz.train",
        "--run-dir",
        "$RUN_DIR",
        "--rank-process",
    ]
    assert f"RUN_DIR={run}" in script and "PORT=29777" in script
    assert '--run-dir "$RUN_DIR" --prepare --preset /dev/stdin' in script
    assert '--run-dir "$RUN_DIR" --finalize "$code"' in script
    # The embedded preset is the resolved configuration.
    embedded = script.split("<<'TUIWIZ_PRESET_EOF'\n", 1)[1].split("\nTUIWIZ_PRESET_EOF\n")[0]
    assert cfg.validate(tomllib.loads(embedded)) == config
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_slurm_script_with_auto_takes_every_gpu_of_each_node(tmp_path: Path):
    script, _, _ = slurm(tmp_path, 'launch.nproc_per_node="auto"')
    assert "#SBATCH --exclusive" in script and "--gpus-per-node" not in script
    assert "--nproc-per-node=gpu" in script


def test_launch_script_command_writes_the_script(tmp_path: Path):
    from tuiwiz.cli import main

    out = tmp_path / "job.sbatch"
    run = tmp_path / "shared" / "run"
    code = main(
        [
            "launch-script",
            "demo",
            "--slurm",
            "--set",
            "launch.nnodes=2",
            "--output-dir",
            str(run),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    script = out.read_text()
    assert "#SBATCH --nodes=2" in script and f"RUN_DIR={run}" in script
    assert not run.exists()  # the script's --prepare step creates it, on the cluster
    assert main(["launch-script", "demo"]) == 2  # no scheduler named
    assert main(["launch-script", "demo", "--slurm", "--set", "launch.node_rank=1"]) == 2


# --- what DDP and FSDP-QLoRA hand to Hugging Face ----------------------------------------------


def test_ddp_arguments(tmp_path: Path):
    from tuiwiz.train import builders

    args = builders.training_arguments(
        demo("launch.nproc_per_node=2"), tmp_path, False, notice=lambda m: None
    )
    assert args.ddp_find_unused_parameters is False
    kwargs = getattr(args, "activation_checkpointing_kwargs", None) or getattr(
        args, "gradient_checkpointing_kwargs", None
    )
    assert kwargs == {"use_reentrant": False}
    single = builders.training_arguments(demo(), tmp_path, False, notice=lambda m: None)
    assert single.ddp_find_unused_parameters is None  # one process: untouched


def test_fsdp_qlora_arguments_and_quant_storage(tmp_path: Path):
    import torch

    from tuiwiz.train import builders

    config = demo(
        "launch.nproc_per_node=2",
        "launch.strategy=fsdp",
        "training.gradient_checkpointing=true",
        'quantization.bnb_4bit_compute_dtype="bfloat16"',
    )
    assert builders.uses_fsdp(config)
    args = builders.training_arguments(config, tmp_path, False, notice=lambda m: None)
    assert args.fsdp
    fsdp = args.fsdp_config
    assert fsdp["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["use_orig_params"] is False
    assert fsdp["cpu_ram_efficient_loading"] is True
    assert fsdp["sync_module_states"] is True
    assert fsdp["activation_checkpointing"] is True  # FSDP's own checkpointing...
    assert not getattr(args, "activation_checkpointing", args.gradient_checkpointing)
    plugin = args.fsdp_plugin_args  # ...as accelerate's FSDP plugin will get them
    assert plugin["use_orig_params"] is False and plugin["cpu_ram_efficient_loading"] is True
    quantization = builders.bnb_config(config["quantization"], fsdp=True)
    assert quantization.bnb_4bit_quant_storage == torch.bfloat16  # = the compute dtype
    assert builders.bnb_config(config["quantization"]).bnb_4bit_quant_storage == torch.uint8
    assert not builders.uses_fsdp(demo("launch.strategy=fsdp"))  # one process: plain QLoRA


def test_fault_selector_picks_a_rank():
    from tuiwiz.train import faults

    assert faults.parse("oom@3") == ("oom", 3, None)
    assert faults.parse("oom@3:rank1") == ("oom", 3, 1)
    assert faults.parse("disk_full@6:rank0") == ("disk_full", 6, 0)
    assert faults.parse("oom@3:node1") is None
    assert faults.parse("oom@x") is None


def test_stopping_a_run_that_trains_on_another_machine_asks_through_the_run_directory(
    tmp_path: Path,
):
    """A batch script's run trains on a cluster node: `tuiwiz stop` from the login node cannot
    signal it, so it leaves the STOP file that rank 0 checks at every step's end."""
    from tuiwiz.train.registry import effective_state, request_stop
    from tuiwiz.train.rundir import RunDir

    run = RunDir(tmp_path / "run")
    run.create()
    status = run.write_status(state="running", pid=999_999_999, host="gpu-node-17.cluster")
    assert effective_state(status) == "running"  # its pid means nothing on this machine
    request_stop(run)
    assert run.stop_file.is_file()
    here = run.write_status(host=None)
    assert effective_state(here) == "crashed"  # on this machine, a dead pid is a crash
