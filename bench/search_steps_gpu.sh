#!/usr/bin/env bash
# Issue 13's variable step lengths in one device call (about 6 minutes on one H200): bench/search.py
# with the 1.2B policy and 1.2B PRM, N = 256 (one problem per call), prompt 128, shared prefix on,
# R = 8 steps of fixed length S = 36 against steps drawn uniformly in 8..64 (mean 36), both with
# W = 64 and max_solution_tokens = R * W = 512 (one cache size). Methods: best-of-N as one decode
# (`search.best_of_n`, the default), best-of-N in lockstep rounds (best_of_n_rounds: every round lasts
# the batch's longest step) and beam search (M = 4). Each workload is its own process, stopped after
# 200 s (--budget-s). The merged file compares every method's uniform time with its fixed one.
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/search_steps_gpu.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
export PYTHONPATH=. PYTHONUNBUFFERED=1
export_bench_commit
bench_start /tmp/search_steps_gpu
for lengths in fixed uniform:8:64; do
  search_part "$OUT/search_steps_${lengths%%:*}.json" --budgets 256 --methods best_of_n best_of_n_rounds beam \
    --no-plain --no-parts --repeats 2 --budget-s 200 --prompt-len 128 --shared-prefix on --step-tokens 36 \
    --rounds 8 --max-step-tokens 64 --step-lengths "$lengths"
done
search_merge "issue 13: variable step lengths (uniform 8..64) vs fixed 36" "$OUT/search_steps_h200.json"
