#!/usr/bin/env bash
# Issue 13's sampler measurements in one device call (about 3 minutes on one H200):
# bench/sampler.py's JAX part at the issue's three rows (1.2B / 64, 1.2B / 256, 100M / 64), each
# with its compile time, the compiled program's memory, the device's peak memory and the count
# of large copies left in the optimized HLO; one profiled call of 1.2B / 256 (kernel breakdown)
# and its HLO. The roofline uses the JAX copy bandwidth measured in the same run.
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/sampler_gpu.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
export PYTHONPATH=. PYTHONUNBUFFERED=1
bench_start /tmp/sampler_gpu
sampler_jax "$OUT/jax_100m.json" --shapes 100m --batches 64 --repeats 3
sampler_jax "$OUT/jax_1.2b.json" --shapes 1.2b --batches 64 256 --repeats 3 --profile 1.2b:256 --dump-hlo "$OUT"
sampler_report "issue 13: per-layer cache buffers and weights in the decode loop" "$OUT/sampler_h200.json"
