#!/usr/bin/env bash
# The GPU measurements of tuiwiz's speed and memory options, in one call of the device machine
# (one NVIDIA H200, no network) of about 8 minutes. Results and logs go to $OUT.
#
# Before the call, here (where PyPI is reachable), in the repository's root:
#
#     echo /.whl/ >> .git/info/exclude
#     python3 bench/gpu_wheels.py          # ~32 MiB of wheels into .whl/{common,main,unsloth}
#
# The wheels (the image has torch 2.11 + CUDA 13, triton, accelerate, transformers 5.17 and the
# rest; not these):
#   common:  bitsandbytes 0.50.2 (its CUDA 13 libraries only), peft 0.21.2, datasets 4.8.5,
#            dill 0.4.1, multiprocess 0.70.19
#   main:    transformers 5.24.0, trl 1.16.0, liger-kernel 0.8.5   (tuiwiz and the plain script)
#   unsloth: unsloth 2026.10.9 (without its studio/ web UI), unsloth_zoo 2026.10.9, trl 1.15.0,
#            torchao 0.18.0, cut_cross_entropy 25.1.1   (with the image's transformers 5.17:
#            Unsloth pins transformers <= 5.17 and trl <= 1.15)
#
# The call (the device tool's `run`): command "bash bench/gpu_session.sh", carry [".whl"],
# timeout_s 570. PART=a (the default) measures Llama-3.1-8B: throughput of the plain TRL script,
# tuiwiz default and tuiwiz fast, then the memory points at 1k-32k tokens with the memory
# options. PART=b (a second call, in a session with the device time for it) measures
# Qwen2.5-7B's throughput, Unsloth on both models, the remaining fast points and one 14B point;
# it merges with part a's results when they are committed under bench/results/.
#
#     PART=b bash bench/gpu_session.sh
#
# $OUT gets (at most 8 files come back): env.txt, gpu_throughput-<gpu>.json, throughput.log,
# gpu_memory-long-<part>.json, memory.log.
#
# SMOKE=1 PYTHON=.venv/bin/python bash bench/gpu_session.sh   runs the same steps on the CPU
# with a tiny model and no wheels: it checks this script, it measures nothing.
set -u
OUT=${OUT:-$PWD/gpu-out}
PART=${PART:-a}
BUDGET=${BUDGET:-500}  # seconds for everything below, under the call's timeout
PYTHON=${PYTHON:-python3}
SMOKE=${SMOKE:-0}
mkdir -p "$OUT"
start=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - start) )); }
python3() { command "$PYTHON" "$@"; }

if [ "$SMOKE" = 1 ]; then
  smoke=(--smoke)
  export UNSLOTH_PYTHONPATH=""
else
  smoke=()
  for group in common main unsloth; do
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "/tmp/site-$group" .whl/$group/*.whl || { echo "no wheels in .whl/$group"; exit 2; }
  done
  export PYTHONPATH="/tmp/site-main:/tmp/site-common:$PWD"
  export UNSLOTH_PYTHONPATH="/tmp/site-unsloth:/tmp/site-common:$PWD"
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 UNSLOTH_DISABLE_STATISTICS=1
export TUIWIZ_CACHE_DIR=/tmp/tuiwiz-cache TUIWIZ_DATA_DIR=/tmp/tuiwiz-data

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
  python3 -c "import sys; sys.path.insert(0, 'bench'); import gpu_common, json; print(json.dumps(gpu_common.versions()))"
  [ "$PART" = b ] && PYTHONPATH="$UNSLOTH_PYTHONPATH" python3 -c "import transformers, trl; print('unsloth env:', transformers.__version__, trl.__version__)"
  python3 -m pip show pyarrow fsspec huggingface_hub 2>/dev/null | grep -E '^(Name|Version)'
  df -h /dev/shm /tmp | tail -2
  echo "part $PART, install took $(( $(date +%s) - start )) s"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

gpu=$(python3 -c "import sys; sys.path.insert(0, 'bench'); import gpu_throughput as g, pynvml as n; n.nvmlInit(); print(g.gpu_slug(n.nvmlDeviceGetName(n.nvmlDeviceGetHandleByIndex(0))))" 2>/dev/null || echo cpu)
committed="bench/results/gpu_throughput-$gpu.json"
memory_committed="bench/results/gpu_memory-long-$gpu.json"

if [ "$PART" = a ]; then
  # Throughput first (the headline), then memory points while time is left (a point is not
  # started after the budget; one started runs to its end, ~20-60 s).
  python3 bench/gpu_throughput.py --models llama-3.1-8b "${smoke[@]}" \
    --systems plain tuiwiz-default tuiwiz-fast \
    --budget $(( $(left) - 180 )) --results-dir "$OUT" 2>&1 | tee "$OUT/throughput.log"
  minutes=$(python3 -c "print(max(0.5, ($(left) - 45) / 60))")
  # Liger (in fast) patches transformers' Llama code for the rest of the process: last.
  python3 bench/gpu_memory.py --steps 2 --budget "$minutes" "${smoke[@]}" \
    --long default:4096 default:32768 offload:32768 bf16:32768 default:16384 default:1024 \
           fast:32768 \
    --json "$OUT/gpu_memory-long-a.json" 2>&1 | tee "$OUT/memory.log"
else
  python3 bench/gpu_throughput.py --models qwen2.5-7b "${smoke[@]}" \
    --systems plain tuiwiz-default tuiwiz-fast unsloth \
    --merge "$committed" --budget $(( $(left) - 210 )) --json "$OUT/throughput-qwen.json" \
    2>&1 | tee "$OUT/throughput.log"
  python3 bench/gpu_throughput.py --models llama-3.1-8b --systems unsloth "${smoke[@]}" \
    --merge "$OUT/throughput-qwen.json" --budget $(( $(left) - 120 )) --results-dir "$OUT" \
    2>&1 | tee -a "$OUT/throughput.log"
  rm -f "$OUT/throughput-qwen.json"
  rm -rf /dev/shm/tuiwiz-bench/qwen2.5-7b  # room in RAM for the 14B model's 30 GB
  minutes=$(python3 -c "print(max(0.5, ($(left) - 40) / 60))")
  python3 bench/gpu_memory.py --steps 2 --budget "$minutes" --big "${smoke[@]}" \
    --long offload+bf16:32768 fast:4096 fast:16384 fast:1024 \
    --merge "$memory_committed" --json "$OUT/gpu_memory-long-b.json" 2>&1 | tee "$OUT/memory.log"
fi
echo "done in $(( $(date +%s) - start )) s"
