#!/usr/bin/env bash
# Fuzz the C++ ONNX decoder with libFuzzer under AddressSanitizer + UndefinedBehaviorSanitizer.
#   bash tests/fuzz/run_fuzz.sh [SECONDS=60] [JOBS=1]
# Needs clang with libFuzzer (Debian: apt-get install clang). The corpus starts from real
# models: the onnx wheel's backend-test models and graphrec's examples; it is kept in
# fuzz-corpus/ (git-ignored) so later runs continue where earlier ones stopped. A crash
# stops the run and leaves crash-* files in fuzz-artifacts/ with the input that caused it.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-60}
JOBS=${2:-1}
CXX=${CXX:-clang++}
command -v "$CXX" >/dev/null || { echo "run_fuzz.sh: $CXX not found (apt-get install clang)" >&2; exit 2; }
BUILD=build-fuzz
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRAPHREC_FUZZ=ON >/dev/null
cmake --build "$BUILD" --target fuzz_decoder >/dev/null
mkdir -p fuzz-corpus fuzz-artifacts
if [ -z "$(ls -A fuzz-corpus)" ]; then
  PY=${PYTHON:-.venv/bin/python}
  ONNX_DIR=$("$PY" -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data"))' 2>/dev/null || true)
  i=0
  for f in $( { [ -n "$ONNX_DIR" ] && find "$ONNX_DIR" -name '*.onnx' -size -512k; find examples -name '*.onnx' -size -512k; } ); do
    cp "$f" "fuzz-corpus/seed_$i.onnx"; i=$((i+1))
  done
  echo "seeded fuzz-corpus/ with $i models"
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$BUILD/fuzz_decoder" fuzz-corpus -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -max_len=262144 \
  -timeout=10 -artifact_prefix=fuzz-artifacts/ -print_final_stats=1 -jobs="$JOBS" -workers="$JOBS" \
  > fuzz-artifacts/last-run.log 2>&1 || status=$?
grep -E "^(stat::|Done )" fuzz-artifacts/last-run.log || true
if [ "${status:-0}" != 0 ]; then
  echo "run_fuzz.sh: the fuzzer stopped with status $status; see fuzz-artifacts/last-run.log" >&2
  grep -E "runtime error|ERROR: |SUMMARY" fuzz-artifacts/last-run.log | head -5 >&2
  exit "$status"
fi
