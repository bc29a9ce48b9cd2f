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
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1
export BENCH_COMMIT=${BENCH_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
OUT=${OUT:-/tmp/prefix_kernel_gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout 150 python3 bench/decode_attention.py --cascade-only --out "$OUT/cascade_kernel.json" || exit $?
raw=()
for prompt in 128 1024; do
  python3 bench/search.py --budgets 256 --methods best_of_n beam --no-plain --no-parts --repeats 2 \
    --budget-s 150 --prompt-len "$prompt" --shared-prefix on --out "$OUT/prefix_p${prompt}.json"
  raw+=("$OUT/prefix_p${prompt}.json")
done
python3 bench/search.py --merge "${raw[@]}" --note "issue 13: shared prefix read by the Pallas kernel" \
  --out "$OUT/search_prefix.json"
raw=()
for lengths in fixed uniform:8:64; do
  name=${lengths%%:*}
  python3 bench/search.py --budgets 256 --methods best_of_n --no-plain --no-parts --repeats 2 \
    --budget-s 80 --prompt-len 128 --shared-prefix on --step-tokens 36 --rounds 8 --max-step-tokens 64 \
    --step-lengths "$lengths" --out "$OUT/steps_${name}.json"
  raw+=("$OUT/steps_${name}.json")
done
python3 bench/search.py --merge "${raw[@]}" --note "issue 13: PRM chunks read by the kernel" \
  --out "$OUT/search_steps.json"
