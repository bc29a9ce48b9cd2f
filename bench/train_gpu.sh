#!/usr/bin/env bash
# Issue 14's training benchmark in one device call (about 5 minutes on one H200; rows stop
# starting after 6): bench/train.py through the real training loop for the 1.2B and 100M shapes at
# sequence 2,048, bf16 compute, model.attention_impl xla vs cudnn, model.remat none vs dots, grain
# input in 2 worker processes. Rows the memory check refuses are recorded with its message.
# The allocator may use 92% of the GPU (JAX's default is 75%), so rows without remat have room.
# Usage (repo root on the GPU machine, the wheels of bench/results/pipeline_gpu/README.md in .wheels/):
#   BENCH_COMMIT=<sha> OUT=<dir> bash bench/train_gpu.sh
# then copy $OUT/train_h200.json to bench/results/train/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
install_wheels
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=/tmp/jaxcache
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
bench_start /tmp/train_gpu grain
run python3 bench/train.py --shapes 1.2b 100m --impls cudnn xla --remats none dots --warmup 2 --steps 8 \
  --workers 2 --time_limit_s 360 --out "$OUT/train_h200.json" 2>&1 | drop_log_noise
