#!/usr/bin/env bash
# Run every fuzz target for RUNS executions (default 1,000,000) with the limits of
# docs/reliability.md: 2 GB RSS and 2 GB per allocation, 10 s per input. Needs the nightly
# toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
#
#   fuzz/run-all.sh [RUNS] [TARGET...]
#
# Each target reads its committed corpus fuzz/corpus/<target>/ (validate also the real SWF
# corpus beside the checkout, when present) and writes the inputs it
# discovers to fuzz/target/corpus-work/<target>/ (ignored by git), so the committed corpora
# stay small; `cargo +nightly fuzz cmin` them to refresh. Crashes land in
# fuzz/artifacts/<target>/. Prints a table (target, executions, exec/s, peak RSS, result) at the
# end and exits non-zero when any target failed.
set -u
cd "$(dirname "$0")"

RUNS=${1:-1000000}
shift || true
ALL=(validate adherence bytecraft_codec tokenizer_load checkpoint_load episode_shard)
[ $# -gt 0 ] && TARGETS=("$@") || TARGETS=("${ALL[@]}")

# Longest input per target: a little above its largest seed.
max_len() {
    case "$1" in
        tokenizer_load) echo 65536 ;;
        checkpoint_load) echo 131072 ;;
        episode_shard) echo 16384 ;;
        bytecraft_codec) echo 256 ;;
        *) echo 8192 ;;
    esac
}

LOGS=target/fuzz-logs
mkdir -p "$LOGS"
failed=0
summary=()
for t in "${TARGETS[@]}"; do
    work=target/corpus-work/$t
    mkdir -p "$work" "corpus/$t"
    log=$LOGS/$t.log
    # The validator also reads the shared real-SWF corpus when this checkout has it beside it.
    extra=()
    if [ "$t" = validate ] && [ -d ../../shared/swf-corpus ]; then
        extra=(../../shared/swf-corpus)
    fi
    echo "== $t: $RUNS runs (log: fuzz/$log)" >&2
    nice -n 10 cargo +nightly fuzz run "$t" "$work" "corpus/$t" "${extra[@]}" -- \
        -runs="$RUNS" -max_len="$(max_len "$t")" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc; see fuzz/$log and fuzz/artifacts/$t/)"
        failed=1
    fi
    summary+=("$(printf '%-16s %12s %8s %8s  %s' "$t" "${execs:-?}" "${rate:-?}" "${rss:-?}" "$result")")
done

printf '\n%-16s %12s %8s %8s  %s\n' target executions exec/s rss_mb result
printf '%s\n' "${summary[@]}"
exit $failed
