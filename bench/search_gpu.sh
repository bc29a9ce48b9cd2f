#!/usr/bin/env bash
# Issue 13's shared-prefix measurements in one device call (under 6 minutes on one H200):
# bench/search.py with the 1.2B policy and 1.2B PRM, N = 256 (one problem per call), best-of-N and
# beam (M = 4), prompts of 128 and 1,024 tokens, each with the prompt shared by the candidates
# (--shared-prefix on) and stored per candidate (off). Every run records its time per problem,
# compile time, the compiled program's memory and the process's peak memory. Each of the four
# runs is its own process (so its peak is its own) and stops itself after 85 s (--budget-s).
# The merged file's `shared_prefix_table` holds the issue's ratios (1,024 over 128 tokens;
# shared over unshared memory; beam over best-of-N per layout).
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/search_gpu.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
export PYTHONPATH=. PYTHONUNBUFFERED=1
export_bench_commit
bench_start /tmp/search_gpu
for len in 128 1024; do
  for mode in on off; do
    search_part "$OUT/search_p${len}_${mode}.json" --budgets 256 --methods best_of_n beam --no-plain --no-parts \
      --repeats 2 --budget-s 85 --prompt-len "$len" --shared-prefix "$mode"
  done
done
search_merge "issue 13: shared prompt prefix vs one copy per candidate" "$OUT/search_h200.json"
