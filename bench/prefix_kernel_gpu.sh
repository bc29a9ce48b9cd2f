#!/usr/bin/env bash
# Issue 13: the shared prompt prefix read by the Pallas kernel, in one device call (about 7-8 minutes
# on one H200):
#  1. bench/decode_attention.py --cascade-only: the compiled kernel's shared-prefix attention checked
#     against the XLA cascade (bf16), then timed per layer at N = 256, prompt 128 and 1,024, T = 1
#     (a decode step) and T = 32 (a PRM chunk);
#  2. bench/search.py best-of-N (N = 256, shared prefix) at 128 and 1,024 prompt tokens: the issue's
#     goal of a 1,024-token prompt within 1.15x of the 128-token one;
#  3. beam search at the same two prompts (the goal: within 1.1x of best-of-N);
#  4. best-of-N without rounds, fixed 36-token steps vs uniform 8..64 (the PRM chunks now read the
#     cache through the kernel as well).
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/prefix_kernel_gpu.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1
export_bench_commit
bench_start /tmp/prefix_kernel_gpu
run timeout 150 python3 bench/decode_attention.py --cascade-only --out "$OUT/cascade_kernel.json" || exit $?
for len in 128 1024; do
  search_part "$OUT/prefix_p${len}.json" --budgets 256 --methods best_of_n beam --no-plain --no-parts --repeats 2 \
    --budget-s 150 --prompt-len "$len" --shared-prefix on
done
search_merge "issue 13: shared prefix read by the Pallas kernel" "$OUT/search_prefix.json"
step_lengths_pair "issue 13: best-of-N without rounds, PRM chunks read by the kernel" "$OUT/search_steps.json"
