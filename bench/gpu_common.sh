# Shared by the bench/*_gpu.sh scripts, which source it after their `set` line: the output folder,
# the log's header, the runs of sampler.py and search.py gathered for one report or merge, and the
# device image's missing wheels. Each script keeps its own settings (PYTHONPATH, defaults, notes).
#
# DRY_RUN=1 prints every command a script would launch (one line each, words quoted) instead of
# running it: a script's launches can be read or compared without a GPU.
#   DRY_RUN=1 OUT=/tmp/dry bash bench/search_gpu.sh

# run CMD...: the command, or with DRY_RUN=1 its line.
run() {
  if [ "${DRY_RUN:-0}" = 1 ]; then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

# bench_out DEFAULT: OUT (DEFAULT unless given) exists; every file of the run goes there.
bench_out() {
  OUT=${OUT:-$1}
  mkdir -p "$OUT"
}

# export_bench_commit: BENCH_COMMIT (git's HEAD unless given) for the JSON files; search.py reads it
# only from the environment, and the device's copy of the tree may have no git metadata.
export_bench_commit() {
  export BENCH_COMMIT=${BENCH_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
}

# show_gpu: the GPU's name, memory and driver, one csv line.
show_gpu() {
  run nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
}

# show_versions [MODULE...]: jax, jaxlib and flax versions and the devices jax sees; the MODULEs are
# imported too, so a missing wheel fails here rather than minutes later.
show_versions() {
  local extra=""
  if [ $# -gt 0 ]; then extra=$(printf ', %s' "$@"); fi
  local versions='print("jax", jax.__version__, "jaxlib", jaxlib.__version__, "flax", flax.__version__, jax.devices())'
  run python3 -c "import jax, jaxlib, flax${extra}; ${versions}"
}

# bench_start DEFAULT [MODULE...]: OUT made (bench_out), then the log's header: GPU and versions.
bench_start() {
  bench_out "$1"
  shift
  show_gpu
  show_versions "$@"
}

# sampler_jax FILE ARGS...: one `sampler.py --part jax` process writing FILE, kept for sampler_report.
sampler_files=()
sampler_jax() {
  local file=$1; shift
  run python3 bench/sampler.py --part jax "$@" --out "$file"
  sampler_files+=("$file")
}

# sampler_report NOTE FILE: the report table of the sampler_jax files so far, written to FILE.
# The report's status is the function's (a script without `set -e` ends with it).
sampler_report() {
  local files=("${sampler_files[@]}")
  sampler_files=()
  run python3 bench/sampler.py --part report --inputs "${files[@]}" --note "$1" --out "$2"
}

# search_part FILE ARGS...: one `search.py` process writing FILE (so its peak memory is its own),
# kept for search_merge.
search_files=()
search_part() {
  local file=$1; shift
  run python3 bench/search.py "$@" --out "$file"
  search_files+=("$file")
}

# search_merge NOTE FILE: the search_part files since the last merge, merged into FILE.
# The merge's status is the function's.
search_merge() {
  local files=("${search_files[@]}")
  search_files=()
  run python3 bench/search.py --merge "${files[@]}" --note "$1" --out "$2"
}

# step_lengths_pair NOTE FILE: best-of-N without rounds at N = 256, prompt 128, 8 steps of at most
# 64 tokens, fixed 36-token steps vs uniform 8..64 (issue 13's variable-step goal), merged into FILE.
step_lengths_pair() {
  local lengths
  for lengths in fixed uniform:8:64; do
    search_part "$OUT/steps_${lengths%%:*}.json" --budgets 256 --methods best_of_n --no-plain --no-parts \
      --repeats 2 --budget-s 80 --prompt-len 128 --shared-prefix on --step-tokens 36 --rounds 8 \
      --max-step-tokens 64 --step-lengths "$lengths"
  done
  search_merge "$1" "$2"
}

# install_wheels: the wheels of .wheels/ into /tmp/site, once per machine (the device image lacks
# grain, ml-collections, tensorflow-datasets, ...; bench/results/pipeline_gpu/README.md).
install_wheels() {
  [ -d /tmp/site ] || run python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .wheels/*.whl
}

# drop_log_noise: stdin without absl's start-up and per-line warnings (the logs stay readable).
drop_log_noise() {
  grep -v -E "^W[0-9]{4} |absl::InitializeLog|WARNING: All log messages"
}
