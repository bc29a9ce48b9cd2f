#!/usr/bin/env bash
# Issue 13 follow-up measurements in one device call (under 8 minutes on one H200), after the
# Pallas kernel became the GPU default (3 pipeline stages), prefill into a fresh cache stopped
# scoring the buffer's empty slots, and best-of-N's PRM pass was chunked:
#  1. bench/sampler.py at the three rows with the default decode attention (auto = pallas);
#  2. bench/search.py best-of-N without rounds, fixed 36-token steps vs uniform 8..64 (N = 256,
#     R = 8, W = 64, prompt 128; the rounds and beam rows of bench/search_steps_gpu.sh are unchanged
#     by these commits);
#  3. bench/search.py best-of-N and beam with a shared prompt prefix at 128 and 1,024 prompt tokens.
# Usage (on the GPU machine, repo root): BENCH_COMMIT=<sha> OUT=<dir> bash bench/decode_followup_gpu.sh
set -uo pipefail
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1
export BENCH_COMMIT=${BENCH_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
OUT=${OUT:-/tmp/decode_followup_gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 bench/sampler.py --part jax --shapes 100m --batches 64 --repeats 3 --budget-s 60 --out "$OUT/jax_100m.json"
python3 bench/sampler.py --part jax --shapes 1.2b --batches 64 256 --repeats 3 --budget-s 100 --out "$OUT/jax_1.2b.json"
python3 bench/sampler.py --part report --inputs "$OUT/jax_100m.json" "$OUT/jax_1.2b.json" \
  --note "issue 13: decode attention auto (Pallas, 3 stages), fresh-cache prefill" --out "$OUT/sampler_h200.json"
raw=()
for lengths in fixed uniform:8:64; do
  name=${lengths%%:*}
  python3 bench/search.py --budgets 256 --methods best_of_n --no-plain --no-parts --repeats 2 \
    --budget-s 80 --prompt-len 128 --shared-prefix on --step-tokens 36 --rounds 8 --max-step-tokens 64 \
    --step-lengths "$lengths" --out "$OUT/steps_${name}.json"
  raw+=("$OUT/steps_${name}.json")
done
python3 bench/search.py --merge "${raw[@]}" --note "issue 13: best-of-N without rounds, chunked PRM pass" \
  --out "$OUT/search_steps.json"
raw=()
for len in 128 1024; do
  python3 bench/search.py --budgets 256 --methods best_of_n beam --no-plain --no-parts --repeats 2 \
    --budget-s 80 --prompt-len "$len" --shared-prefix on --out "$OUT/prefix_p${len}.json"
  raw+=("$OUT/prefix_p${len}.json")
done
python3 bench/search.py --merge "${raw[@]}" --note "issue 13: shared prefix, 1,024 vs 128 prompt tokens" \
  --out "$OUT/search_prefix.json"
