#!/usr/bin/env bash
# Issue 13 follow-up measurements in one device call (under 8 minutes on one H200), after the
# Pallas kernel became the GPU default (3 pipeline stages), prefill into a fresh cache stopped
# scoring the buffer's empty slots, and best-of-N's PRM pass was chunked:
#  1. bench/sampler.py at the issue's three rows with the default decode attention (auto = pallas);
#  2. bench/search.py best-of-N without rounds, fixed 36-token steps vs uniform 8..64 (N = 256,
#     R = 8, W = 64, prompt 128; the rounds and beam rows of bench/search_steps_gpu.sh are unchanged
#     by these commits);
#  3. bench/search.py best-of-N and beam with a shared prompt prefix at 128 and 1,024 prompt tokens.
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/decode_followup_gpu.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1
export_bench_commit
bench_start /tmp/decode_followup_gpu
sampler_jax "$OUT/jax_100m.json" --shapes 100m --batches 64 --repeats 3 --budget-s 60
sampler_jax "$OUT/jax_1.2b.json" --shapes 1.2b --batches 64 256 --repeats 3 --budget-s 100
sampler_report "issue 13: decode attention auto (Pallas, 3 stages), fresh-cache prefill" "$OUT/sampler_h200.json"
step_lengths_pair "issue 13: best-of-N without rounds, chunked PRM pass" "$OUT/search_steps.json"
for len in 128 1024; do
  search_part "$OUT/prefix_p${len}.json" --budgets 256 --methods best_of_n beam --no-plain --no-parts --repeats 2 \
    --budget-s 80 --prompt-len "$len" --shared-prefix on
done
search_merge "issue 13: shared prefix, 1,024 vs 128 prompt tokens" "$OUT/search_prefix.json"
