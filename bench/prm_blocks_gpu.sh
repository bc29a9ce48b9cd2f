#!/usr/bin/env bash
# Issue 13: best-of-N's PRM pass in blocks of rows of like length (`search/best_of_n.py`), in one
# device call (about 4 minutes on one H200): the fixed / uniform step-length pair, then best-of-N
# with a shared prefix at 128 and 1,024 prompt tokens (the blocks change every best-of-N run).
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/prm_blocks_gpu.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1
export_bench_commit
bench_start /tmp/prm_blocks_gpu
step_lengths_pair "issue 13: the PRM pass in blocks of rows of like length" "$OUT/search_steps.json"
for len in 128 1024; do
  search_part "$OUT/prefix_p${len}.json" --budgets 256 --methods best_of_n --no-plain --no-parts --repeats 2 \
    --budget-s 80 --prompt-len "$len" --shared-prefix on
done
search_merge "issue 13: the PRM pass in blocks of rows of like length" "$OUT/search_prefix.json"
