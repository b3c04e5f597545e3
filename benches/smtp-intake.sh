#!/usr/bin/env bash
# SMTP intake benchmark: how many messages per second can a mailflow MTA
# take in, compared with Postfix's smtp-sink (a server that accepts and
# throws mail away) measured in the same run on the same machine?
#
# The load generator is Postfix's smtp-source. For each mode
#   new     - a new connection per message (connect, EHLO, MAIL, RCPT,
#             DATA, QUIT for every message)
#   persist - smtp-source -d: each session keeps its connection and sends
#             message after message over it
# it sends MESSAGES messages of SIZE bytes over SESSIONS parallel sessions
# to (a) `mailflow serve benches/bench-world.json --fast --quiet`, tracing
# still on (every line is recorded as an event, only printing is off),
# delivering to sink@bench.test so every message is stored in a mailbox,
# and (b) smtp-sink. The server runs on CPU 0 and smtp-source on CPU 1.
#
# After each mailflow run the script stops mailflow with SIGTERM, reads
# its --report and checks that every message smtp-source got a 250 for is
# in the mailbox.
#
# Needs: Debian's postfix package for /usr/sbin/smtp-source and
# /usr/sbin/smtp-sink (the postfix service itself need not run), taskset,
# python3 (to read the JSON report), ss (iproute2), a Rust toolchain.
#
# Usage: bash benches/smtp-intake.sh
# Knobs (environment): SESSIONS=8 MESSAGES=20000 SIZE=1024 ROUNDS=5 MAILFLOW_BIN=
# Figures are medians over ROUNDS; every round is printed too.
set -euo pipefail

SESSIONS=${SESSIONS:-8}
MESSAGES=${MESSAGES:-20000}
SIZE=${SIZE:-1024}
ROUNDS=${ROUNDS:-5}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=10025 # mailflow's SMTP port: 25 + 10000

cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
# MAILFLOW_BIN=path measures that binary as it is (e.g. an older build, to
# compare two versions each against smtp-sink); otherwise this tree is built.
MAILFLOW=${MAILFLOW_BIN:-$TARGET_DIR/release/mailflow}
SCENARIO=benches/bench-world.json
SOURCE=/usr/sbin/smtp-source
SINK=/usr/sbin/smtp-sink
SENDER=bench@client.test
RECIPIENT=sink@bench.test

die() { echo "smtp-intake: $*" >&2; exit 1; }

for tool in "$SOURCE" "$SINK"; do
    [[ -x $tool ]] || die "$tool is missing: install Debian's postfix package (DEBIAN_FRONTEND=noninteractive apt-get install -y postfix; the service need not run)"
done
command -v taskset >/dev/null || die "taskset is missing (Debian package util-linux)"
command -v python3 >/dev/null || die "python3 is missing"
command -v ss >/dev/null || die "ss is missing (Debian package iproute2): it checks that a loopback block is free"

if [[ -z ${MAILFLOW_BIN:-} ]]; then
    echo "== building mailflow (release)"
    cargo build --release --quiet
fi
"$MAILFLOW" check "$SCENARIO"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    # Only the server this script started, by its process id.
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A fresh 127.X.0.0/16 per server start, so runs never meet each other's
# sockets in TIME_WAIT and never clash with another mailflow: a block is
# taken only when no socket of any state (listening, connected,
# TIME_WAIT) has a local or peer address in it and this run has not used
# it before. Sets OCTET (a global, not $(...), so `die` stops the script).
USED_OCTETS=" "
free_octet() {
    local tries=0 candidate
    while ((tries++ < 200)); do
        candidate=$((20 + RANDOM % 200))
        [[ $USED_OCTETS == *" $candidate "* ]] && continue
        if ! ss -Htuan | awk -v p="127.$candidate." '{ if (index($5, p) == 1 || index($6, p) == 1) found = 1 } END { exit !found }'; then
            USED_OCTETS+="$candidate "
            OCTET=$candidate
            return
        fi
    done
    die "found no free 127.X.0.0/16 block"
}

# Waits until something accepts TCP connections on $1:$2 (bash's
# /dev/tcp; used for smtp-sink, which prints nothing when ready).
wait_for_port() {
    local ip=$1 port=$2 tries=0
    until (exec 3<>"/dev/tcp/$ip/$port") 2>/dev/null; do
        tries=$((tries + 1))
        ((tries < 100)) || die "nothing listens on $ip:$port"
        sleep 0.05
    done
}

# Runs smtp-source; sets SECONDS_TAKEN. $1 = target, $2 = mode, $3 = how
# many messages (default MESSAGES).
# (Results go into globals, not $(...), so `die` stops the whole script.)
run_source() {
    local target=$1 mode=$2 count=${3:-$MESSAGES} flags=() start end
    [[ $mode == persist ]] && flags+=(-d)
    start=$(date +%s.%N)
    if ! taskset -c "$CLIENT_CPU" "$SOURCE" -s "$SESSIONS" -m "$count" -l "$SIZE" \
        -M client.test -f "$SENDER" -t "$RECIPIENT" "${flags[@]}" "$target" \
        >"$WORK/source.out" 2>"$WORK/source.err"; then
        cat "$WORK/source.err" >&2
        die "smtp-source failed against $target ($mode)"
    fi
    end=$(date +%s.%N)
    # smtp-source stops at the first reply it did not expect (it has no
    # -A here), so success means every one of the MESSAGES got its 250.
    SECONDS_TAKEN=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
}

# CPU time (user + system, in ms) the process $1 has used so far: fields
# 14 and 15 of /proc/PID/stat, in clock ticks. A steadier figure than
# messages/s on a noisy machine: the work done per message.
cpu_ms() {
    local ticks
    ticks=$(getconf CLK_TCK)
    awk -v hz="$ticks" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$1/stat"
}

rate() { awk -v n="$MESSAGES" -v s="$1" 'BEGIN { printf "%.0f\n", n / s }'; }

# Resident memory of process $1 in KiB (VmRSS in /proc/PID/status).
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Starts mailflow on a free block and waits until it listens; sets
# SERVER_PID and IP (the address of mx.bench.test).
start_mailflow() {
    local octet
    free_octet
    octet=$OCTET
    IP="127.$octet.0.2" # .1 is the fake DNS, .2 the first host (mx.bench.test)
    # Remove the last run's files first: the readiness check below must
    # not find the previous server's words.
    rm -f "$WORK/mailflow.out" "$WORK/mailflow.err" "$WORK/report.json"
    taskset -c "$SERVER_CPU" "$MAILFLOW" serve "$SCENARIO" --fast --quiet --no-web \
        --subnet "127.$octet.0.0/16" --report "$WORK/report.json" \
        >"$WORK/mailflow.out" 2>"$WORK/mailflow.err" &
    SERVER_PID=$!
    # `serve` says "All steps are done" once its servers listen.
    local tries=0
    until grep -q "All steps are done" "$WORK/mailflow.err" 2>/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/mailflow.err" >&2; die "mailflow did not start"; }
        tries=$((tries + 1))
        ((tries < 200)) || die "mailflow did not become ready"
        sleep 0.05
    done
}

# Stops mailflow and reads its report: sets MF_STORED, MF_EVENTS.
stop_mailflow() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || die "mailflow exited with an error: $(cat "$WORK/mailflow.err")"
    SERVER_PID=""
    [[ -s $WORK/report.json ]] || die "mailflow wrote no report"
    MF_STORED=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["stored_messages"])' "$WORK/report.json")
    MF_EVENTS=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["events"])' "$WORK/report.json")
    MF_BYTES=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("stored_bytes", 0))' "$WORK/report.json")
    rm -f "$WORK/report.json"
}

# Memory per stored message and per trace event, from the growth of
# mailflow's resident memory (persistent connections). The trace keeps at
# most 250,000 events (trace::MAX_KEPT_EVENTS), so: first FILL messages
# fill the trace to its cap (RSS before and after: messages + events);
# then MESSAGES more, whose events only replace the oldest, so that growth
# is the stored messages alone. Sets MEM_PER_MESSAGE, MEM_PER_EVENT (bytes).
FILL=${FILL:-30000}
KEPT_EVENTS=250000
bench_memory() {
    local rss0 rss1 rss2 events_fill
    start_mailflow
    rss0=$(rss_kib "$SERVER_PID")
    run_source "$IP:$PORT" persist "$FILL"
    rss1=$(rss_kib "$SERVER_PID")
    run_source "$IP:$PORT" persist
    rss2=$(rss_kib "$SERVER_PID")
    stop_mailflow
    [[ $MF_STORED == "$((FILL + MESSAGES))" ]] || die "memory run: $((FILL + MESSAGES)) messages accepted but $MF_STORED stored"
    ((MF_EVENTS * FILL / (FILL + MESSAGES) >= KEPT_EVENTS)) || die "memory run: $FILL messages made fewer than $KEPT_EVENTS events; raise FILL"
    MEM_PER_MESSAGE=$(awk -v a="$rss1" -v b="$rss2" -v n="$MESSAGES" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }')
    MEM_PER_EVENT=$(awk -v a="$rss0" -v b="$rss1" -v n="$FILL" -v m="$MEM_PER_MESSAGE" -v e="$KEPT_EVENTS" 'BEGIN { printf "%.0f", ((b - a) * 1024 - n * m) / e }')
    MEM_LINE="RSS $((rss0 / 1024)) MiB at start, $((rss1 / 1024)) MiB after $FILL messages (trace full), $((rss2 / 1024)) MiB after $MESSAGES more; $MF_EVENTS events in all"
}

# One mailflow run: start, load, stop with SIGTERM, check the report.
# Sets MF_SECONDS, MF_CPU, MF_STORED, MF_EVENTS.
bench_mailflow() {
    local mode=$1
    start_mailflow
    run_source "$IP:$PORT" "$mode"
    MF_SECONDS=$SECONDS_TAKEN
    MF_CPU=$(cpu_ms "$SERVER_PID")
    stop_mailflow
    [[ $MF_STORED == "$MESSAGES" ]] || die "mailflow ($mode): smtp-source had $MESSAGES messages accepted but $MF_STORED are in the mailbox"
}

# One smtp-sink run. Sets SK_SECONDS, SK_CPU.
bench_sink() {
    local mode=$1 ip
    free_octet
    ip="127.$OCTET.9.1"
    taskset -c "$SERVER_CPU" "$SINK" -u nobody "$ip:$PORT" 1000 >"$WORK/sink.out" 2>"$WORK/sink.err" &
    SERVER_PID=$!
    wait_for_port "$ip" "$PORT"
    run_source "$ip:$PORT" "$mode"
    SK_SECONDS=$SECONDS_TAKEN
    SK_CPU=$(cpu_ms "$SERVER_PID")
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true # smtp-sink dies by the signal
    SERVER_PID=""
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
median_of() { tr ' ' '\n' <<<"$1" | grep . | median; }
per_msg() { awk -v ms="$1" -v n="$MESSAGES" 'BEGIN { printf "%.0f", ms * 1000 / n }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "== smtp-source: $SESSIONS sessions, $MESSAGES messages of $SIZE bytes, $ROUNDS rounds"
echo "   server on CPU $SERVER_CPU, smtp-source on CPU $CLIENT_CPU, $(nproc) CPUs, $(uname -r)"
# Per mode: messages/s and CPU us/message of each server, and the ratio of
# each round (mailflow and smtp-sink measured back to back, so the ratio
# of one round compares like with like even when the machine's load
# changes between rounds). Odd rounds start with mailflow, even rounds
# with smtp-sink, so neither always gets the quieter moment.
declare -A MF SK MFC SKC RATIO
for round in $(seq 1 "$ROUNDS"); do
    for mode in new persist; do
        if ((round % 2)); then
            bench_mailflow "$mode"
            bench_sink "$mode"
        else
            bench_sink "$mode"
            bench_mailflow "$mode"
        fi
        mf=$(rate "$MF_SECONDS")
        sk=$(rate "$SK_SECONDS")
        MF[$mode]+="$mf "
        SK[$mode]+="$sk "
        MFC[$mode]+="$(per_msg "$MF_CPU") "
        SKC[$mode]+="$(per_msg "$SK_CPU") "
        RATIO[$mode]+="$(ratio "$mf" "$sk") "
        printf "   round %d %-7s mailflow %6s msg/s (%ss, %s us CPU/msg, %s stored, %s events)  smtp-sink %6s msg/s (%ss, %s us CPU/msg)  ratio %s\n" \
            "$round" "$mode" "$mf" "$MF_SECONDS" "$(per_msg "$MF_CPU")" "$MF_STORED" "$MF_EVENTS" "$sk" "$SK_SECONDS" "$(per_msg "$SK_CPU")" "$(ratio "$mf" "$sk")"
    done
done

echo
echo "== medians of $ROUNDS rounds (every mailflow round: stored messages = messages smtp-source had accepted)"
printf "   %-30s %15s %15s %15s   %s\n" "mode" "mailflow msg/s" "smtp-sink msg/s" "ratio (target" "server CPU per message"
printf "   %-30s %15s %15s %15s   %s\n" "" "" "" ">= 1.20)" "mailflow / smtp-sink"
for mode in new persist; do
    label=$([[ $mode == new ]] && echo "new connection per message" || echo "persistent connections (-d)")
    printf "   %-30s %15s %15s %15s   %s us / %s us\n" "$label" "$(median_of "${MF[$mode]}")" "$(median_of "${SK[$mode]}")" \
        "$(median_of "${RATIO[$mode]}")" "$(median_of "${MFC[$mode]}")" "$(median_of "${SKC[$mode]}")"
done
echo "   (ratio: the median of the rounds' mailflow/smtp-sink ratios)"

echo
echo "== memory (persistent connections, one run): $FILL messages to fill the trace, then $MESSAGES more"
bench_memory
echo "   $MEM_LINE"
AVG_STORED=$((MF_BYTES / MF_STORED))
printf "   per stored message: %s bytes; the stored message itself: %s bytes (smtp-source's %s bytes, its headers, our Received: and\n" "$MEM_PER_MESSAGE" "$AVG_STORED" "$SIZE"
printf "   Authentication-Results:); overhead beyond the message's own bytes: %s bytes (target < 1024)\n" "$((MEM_PER_MESSAGE - AVG_STORED))"
printf "   per trace event: %s bytes\n" "$MEM_PER_EVENT"
