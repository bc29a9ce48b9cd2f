#!/usr/bin/env bash
# One slice of `configs/pipeline.py:gpu` on a lent GPU machine (device calls end after 10 minutes).
# Re-run back to back on the same warm machine until the report exists: finished stages are skipped
# and an interrupted one resumes from its checkpoints / shards (the workdir stays in /tmp there).
# Usage (repo root on the GPU machine, wheels of bench/results/pipeline_gpu/README.md in .wheels/):
#   OUT=<dir> TIME_LIMIT_S=300 bash bench/pipeline_gpu.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
install_wheels || exit 1
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=/tmp/jaxcache
WD=${WORKDIR:-/tmp/gpuwd}
bench_out /tmp/pipeline_out
date -u >> "$OUT/dates.txt"
run python3 -m ttc_jax.main --config=configs/pipeline.py:gpu --workdir="$WD" \
    --config.pipeline.time_limit_s="${TIME_LIMIT_S:-300}" 2>&1 | drop_log_noise | tee -a "$OUT/run.log"
rc=${PIPESTATUS[0]}
date -u >> "$OUT/dates.txt"
cp "$WD/pipeline/status.json" "$OUT/" 2>/dev/null
if [ -f "$WD/report/report.md" ]; then
  tar -C "$WD" -czf "$OUT/report.tgz" report pipeline/status.json prm/verifier_eval.json orm/verifier_eval.json \
      reviser/reviser_eval.json eval/verifiers 2>/dev/null
fi
show_gpu >> "$OUT/dates.txt"
exit $rc
