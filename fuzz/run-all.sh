#!/bin/sh
# Runs every fuzz target in turn for SECONDS (default 600), at the lowest
# priority, then minimises each corpus. Logs go to fuzz/logs/<target>.log;
# crashes to fuzz/artifacts/<target>/. Run from anywhere; needs nightly and
# cargo-fuzz (`cargo install cargo-fuzz`).
#
#   fuzz/run-all.sh            # all targets, 10 minutes each
#   fuzz/run-all.sh 60 smtp    # one target for a minute
set -eu
cd "$(dirname "$0")"
SECONDS_EACH=${1:-600}
shift 2>/dev/null || true
TARGETS=${*:-smtp pop3 imap scenario dns}
mkdir -p logs
for target in $TARGETS; do
    # -fork=1 with -ignore_crashes: a crash is saved and the run goes on,
    # so one finding does not end the run.
    nice -n 19 cargo +nightly fuzz run "$target" -- \
        -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -print_final_stats=1 \
        >"logs/$target.log" 2>&1 || true
    tail -n 3 "logs/$target.log"
done
