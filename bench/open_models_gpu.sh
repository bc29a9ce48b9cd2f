#!/usr/bin/env bash
# Issue 10's GPU measurements in one call (device time is scarce):
#  1. a Llama-3.2-1B-shaped and a Qwen2.5-7B-shaped checkpoint written by transformers
#     (random bf16), imported with `hf:` loading: seconds, peak host RSS, largest host buffer;
#  2. bench/sampler.py (JAX part) on the native 1.2B shape and on the imported Llama-3.2-1B
#     checkpoint (same shape, llama3 RoPE scaling, tied embeddings): tokens/s side by side.
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/open_models_gpu.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
export PYTHONPATH=. PYTHONUNBUFFERED=1
bench_start /tmp/open_models
dir=/tmp/hf_import_bench
run python3 bench/hf_import.py --writer transformers --dir "$dir" --out "$OUT/hf_import_h200.json"
common=(--shapes 1.2b --batches 16 64 256 --repeats 3)
sampler_jax "$OUT/native_jax.json" "${common[@]}" --label native-1.2b
sampler_jax "$OUT/imported_jax.json" "${common[@]}" --label imported-llama3.2-1b --hf-dir "$dir/llama3.2-1b"
sampler_report "native init vs a transformers-written Llama-3.2-1B-shaped checkpoint loaded through hf:" \
  "$OUT/sampler_imported_h200.json"
