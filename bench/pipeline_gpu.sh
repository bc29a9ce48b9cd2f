#!/usr/bin/env bash
# One slice of `configs/pipeline.py:gpu` on a lent GPU machine (device calls end after 10 minutes).
# Re-run back to back on the same warm machine until the report exists: finished stages are skipped
# and an interrupted one resumes from its checkpoints / shards (the workdir stays in /tmp there).
# Usage (repo root on the GPU machine, wheels of bench/results/pipeline_gpu/README.md in .wheels/):
#   OUT=<dir> TIME_LIMIT_S=300 bash bench/pipeline_gpu.sh
set -uo pipefail
[ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .wheels/*.whl || exit 1
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=/tmp/jaxcache
WD=${WORKDIR:-/tmp/gpuwd}
OUT=${OUT:-/tmp/pipeline_out}
mkdir -p "$OUT"
date -u >> "$OUT/dates.txt"
python3 -m ttc_jax.main --config=configs/pipeline.py:gpu --workdir="$WD" \
    --config.pipeline.time_limit_s="${TIME_LIMIT_S:-300}" 2>&1 \
  | grep -v -E "^W[0-9]{4} |absl::InitializeLog|WARNING: All log messages" | tee -a "$OUT/run.log"
rc=${PIPESTATUS[0]}
date -u >> "$OUT/dates.txt"
cp "$WD/pipeline/status.json" "$OUT/" 2>/dev/null
if [ -f "$WD/report/report.md" ]; then
  tar -C "$WD" -czf "$OUT/report.tgz" report pipeline/status.json prm/verifier_eval.json orm/verifier_eval.json \
      reviser/reviser_eval.json eval/verifiers 2>/dev/null
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$OUT/dates.txt"
exit $rc
