#!/usr/bin/env bash
# Issue 10's GPU measurements in one call (device time is scarce):
#  1. a Llama-3.2-1B-shaped and a Qwen2.5-7B-shaped checkpoint written by transformers
#     (random bf16), imported with `hf:` loading: seconds, peak host RSS, largest host buffer;
#  2. bench/sampler.py (JAX part) on the native 1.2B shape and on the imported Llama-3.2-1B
#     checkpoint (same shape, llama3 RoPE scaling, tied embeddings): tokens/s side by side.
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/open_models_gpu.sh
set -euo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/open_models}
mkdir -p "$OUT"
dir=/tmp/hf_import_bench
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 bench/hf_import.py --writer transformers --dir "$dir" --out "$OUT/hf_import_h200.json"
common=(--part jax --shapes 1.2b --batches 16 64 256 --repeats 3)
python3 bench/sampler.py "${common[@]}" --label native-1.2b --out "$OUT/native_jax.json"
python3 bench/sampler.py "${common[@]}" --label imported-llama3.2-1b --hf-dir "$dir/llama3.2-1b" \
  --out "$OUT/imported_jax.json"
python3 bench/sampler.py --part report --inputs "$OUT/native_jax.json" "$OUT/imported_jax.json" \
  --note "native init vs a transformers-written Llama-3.2-1B-shaped checkpoint loaded through hf:" \
  --out "$OUT/sampler_imported_h200.json"
