#!/usr/bin/env bash
# Issue 13, last measurements in one device call (about 6 minutes on one H200):
#  1. bench/sampler.py at 1.2B / 64 and 1.2B / 256: the decode kernel after it grew a query-block
#     axis and in-kernel sliding windows (no early stops here: every row samples 256 tokens);
#  2. bench/search.py best-of-N without rounds, fixed 36-token steps vs uniform 8..64: finished rows
#     no longer read their cache (a row with no real new token sees no slot);
#  3. bench/chains.py at 1.2B: one revision step with the question stored once per problem
#     (`sample_after_prefix`) vs in every row, 16 chains a question, 256 rows.
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/chains_steps_gpu.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1
export_bench_commit
bench_start /tmp/chains_steps_gpu
sampler_jax "$OUT/jax_1.2b.json" --shapes 1.2b --batches 64 256 --repeats 3 --budget-s 100
sampler_report "issue 13: decode kernel with a query-block axis" "$OUT/sampler_h200.json"
step_lengths_pair "issue 13: finished rows skip their cache" "$OUT/search_steps.json"
run python3 bench/chains.py --shape 1.2b --question-tokens 256 1024 --chains 16 --rows 256 --rest-tokens 384 \
  --new-tokens 128 --repeats 3 --budget-s 150 --out "$OUT/chains_1.2b.json"
