#!/usr/bin/env bash
# What do the sender checks cost? SMTP intake of one mailflow MX with SPF,
# DKIM and DMARC checking on, against the same MX with `auth_checks: false`,
# measured back to back in the same run (the style of smtp-intake.sh).
#
# Load generator: Postfix's smtp-source, in two modes
#   new     - a new connection per message
#   persist - smtp-source -d: each session sends message after message
# SESSIONS parallel sessions send MESSAGES messages of SIZE bytes from
# bench@client.test to sink@bench.test. The world is benches/bench-world.json
# plus the sender's domain client.test publishing
#   v=spf1 ip4:127.0.0.0/8 -all      and      _dmarc: v=DMARC1; p=none
# so with checks on every message costs real DNS questions to the fake DNS
# (SPF: TXT client.test; DMARC: TXT _dmarc.client.test and _dmarc.test; no
# DKIM signature: smtp-source does not sign), a verdict, and its headers;
# every message is still delivered (p=none). With checks off the same world
# takes the message as it comes. After each run the server's --report must
# count every message smtp-source got a 250 for.
#
# Needs: Debian's postfix package (/usr/sbin/smtp-source; the service need
# not run), taskset, python3, ss, a Rust toolchain (or MAILFLOW_BIN).
#
# Usage: bash benches/smtp-intake-auth.sh
# Knobs: SESSIONS=8 MESSAGES=5000 SIZE=1024 ROUNDS=3 MAILFLOW_BIN=
# Figures are medians over ROUNDS; every round is printed too.
set -euo pipefail

SESSIONS=${SESSIONS:-8}
MESSAGES=${MESSAGES:-5000}
SIZE=${SIZE:-1024}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=10025

cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
MAILFLOW=${MAILFLOW_BIN:-$TARGET_DIR/release/mailflow}
SOURCE=/usr/sbin/smtp-source
SENDER=bench@client.test
RECIPIENT=sink@bench.test

die() { echo "smtp-intake-auth: $*" >&2; exit 1; }

[[ -x $SOURCE ]] || die "$SOURCE is missing: install Debian's postfix package (DEBIAN_FRONTEND=noninteractive apt-get install -y postfix)"
command -v taskset >/dev/null || die "taskset is missing (Debian package util-linux)"
command -v python3 >/dev/null || die "python3 is missing"
command -v ss >/dev/null || die "ss is missing (Debian package iproute2)"

if [[ -z ${MAILFLOW_BIN:-} ]]; then
    echo "== building mailflow (release)"
    cargo build --release --quiet
fi

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

# The two worlds: the benchmark world with the sender's domain added, and
# the same with the MX's checks switched off.
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
world = json.load(open("benches/bench-world.json"))
world["title"] = "Benchmark: one mail exchanger, checking senders"
world["domains"]["client.test"] = {"records": [
    {"type": "TXT", "text": "v=spf1 ip4:127.0.0.0/8 -all"},
    {"type": "TXT", "name": "_dmarc", "text": "v=DMARC1; p=none"},
]}
json.dump(world, open(f"{work}/on.json", "w"), indent=1)
world["title"] = "Benchmark: one mail exchanger, checks off"
world["hosts"]["mx.bench.test"]["auth_checks"] = False
json.dump(world, open(f"{work}/off.json", "w"), indent=1)
PY
"$MAILFLOW" check "$WORK/on.json" "$WORK/off.json" >/dev/null

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

cpu_ms() {
    local ticks
    ticks=$(getconf CLK_TCK)
    awk -v hz="$ticks" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$1/stat"
}

# One run: $1 = on|off, $2 = new|persist. Sets RATE, CPU_US, STORED, EVENTS.
bench() {
    local checks=$1 mode=$2 ip flags=() start end seconds
    free_octet
    ip="127.$OCTET.0.2"
    rm -f "$WORK/mailflow.out" "$WORK/mailflow.err" "$WORK/report.json"
    taskset -c "$SERVER_CPU" "$MAILFLOW" serve "$WORK/$checks.json" --fast --quiet --no-web \
        --subnet "127.$OCTET.0.0/16" --report "$WORK/report.json" \
        >"$WORK/mailflow.out" 2>"$WORK/mailflow.err" &
    SERVER_PID=$!
    local tries=0
    until grep -q "All steps are done" "$WORK/mailflow.err" 2>/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/mailflow.err" >&2; die "mailflow did not start"; }
        tries=$((tries + 1))
        ((tries < 200)) || die "mailflow did not become ready"
        sleep 0.05
    done
    [[ $mode == persist ]] && flags+=(-d)
    start=$(date +%s.%N)
    taskset -c "$CLIENT_CPU" "$SOURCE" -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" \
        -M client.test -f "$SENDER" -t "$RECIPIENT" "${flags[@]}" "$ip:$PORT" \
        >"$WORK/source.out" 2>"$WORK/source.err" || { cat "$WORK/source.err" >&2; die "smtp-source failed ($checks, $mode)"; }
    end=$(date +%s.%N)
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    RATE=$(awk -v n="$MESSAGES" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }')
    CPU_US=$(awk -v ms="$(cpu_ms "$SERVER_PID")" -v n="$MESSAGES" 'BEGIN { printf "%.0f", ms * 1000 / n }')
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || die "mailflow exited with an error: $(cat "$WORK/mailflow.err")"
    SERVER_PID=""
    STORED=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["stored_messages"])' "$WORK/report.json")
    EVENTS=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["events"])' "$WORK/report.json")
    [[ $STORED == "$MESSAGES" ]] || die "checks $checks ($mode): $MESSAGES messages accepted but $STORED in the mailbox"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "== smtp-source: $SESSIONS sessions, $MESSAGES messages of $SIZE bytes, $ROUNDS rounds; checks on vs off"
echo "   server on CPU $SERVER_CPU, smtp-source on CPU $CLIENT_CPU, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A ON OFF ONC OFFC RATIO
for round in $(seq 1 "$ROUNDS"); do
    for mode in new persist; do
        # Odd rounds start with checks on, even rounds with checks off.
        order=(on off)
        ((round % 2)) || order=(off on)
        for checks in "${order[@]}"; do
            bench "$checks" "$mode"
            if [[ $checks == on ]]; then on=$RATE; ON[$mode]+="$RATE "; ONC[$mode]+="$CPU_US "; on_events=$EVENTS; else off=$RATE; OFF[$mode]+="$RATE "; OFFC[$mode]+="$CPU_US "; off_events=$EVENTS; fi
        done
        RATIO[$mode]+="$(ratio "$on" "$off") "
        printf "   round %d %-7s checks on %6s msg/s (%s events)  off %6s msg/s (%s events)  ratio %s\n" \
            "$round" "$mode" "$on" "$on_events" "$off" "$off_events" "$(ratio "$on" "$off")"
    done
done

echo
echo "== medians of $ROUNDS rounds (every run: stored messages = messages accepted)"
printf "   %-30s %14s %14s %16s   %s\n" "mode" "checks on" "checks off" "ratio on/off" "server CPU per message, on / off"
for mode in new persist; do
    label=$([[ $mode == new ]] && echo "new connection per message" || echo "persistent connections (-d)")
    printf "   %-30s %10s msg/s %8s msg/s %16s   %s us / %s us\n" "$label" "$(median <<<"${ON[$mode]}")" "$(median <<<"${OFF[$mode]}")" \
        "$(median <<<"${RATIO[$mode]}")" "$(median <<<"${ONC[$mode]}")" "$(median <<<"${OFFC[$mode]}")"
done
