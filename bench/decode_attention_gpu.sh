#!/usr/bin/env bash
# The Pallas decode-attention kernel on the GPU, in one device call (about 5-6 minutes on one H200):
#  1. bench/decode_attention.py: the compiled Triton kernel checked against the XLA path (bf16 and
#     float32, max abs error printed and asserted, slots past each row's length poisoned with NaN),
#     then one decode step's attention over 16 layers' caches at B=256, K=8, S=512, H=64 with lengths
#     uniform in 256..512, timed for XLA and a few kernel launch settings, with the bytes-read floor.
#     First, so that the kernel's speed is known even if the end-to-end part fails.
#  2. bench/sampler.py's JAX part at the issue's rows (100M / 64, 1.2B / 64, 1.2B / 256), each row run
#     with model.decode_attention_impl = xla and = pallas (rows labelled ttc_jax+xla / ttc_jax+pallas),
#     then the report table. Skipped if step 1's check failed.
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/decode_attention_gpu.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
export PYTHONPATH=. PYTHONUNBUFFERED=1
bench_start /tmp/decode_attention_gpu
run timeout 150 python3 bench/decode_attention.py --out "$OUT/decode_attention_kernel.json"
kernel=$?
if [ "$kernel" -ne 0 ]; then
  echo "decode_attention.py exited with $kernel: the kernel check failed or the run broke; see above. Skipping the end-to-end part."
  exit "$kernel"
fi
set -e
sampler_jax "$OUT/jax_100m.json" --shapes 100m --batches 64 --repeats 3 --decode-attention both --budget-s 90
sampler_jax "$OUT/jax_1.2b.json" --shapes 1.2b --batches 64 256 --repeats 3 --decode-attention both --budget-s 180
sampler_report "issue 13: decode attention xla vs the Pallas kernel (filled slots only)" \
  "$OUT/sampler_decode_attention.json"
