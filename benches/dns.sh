#!/usr/bin/env bash
# DNS benchmark: how many queries per second does mailflow's fake DNS
# answer, next to NSD (NLnet Labs' authoritative server) measured in the
# same run on the same machine, and does the figure hold as zones grow?
#
# For each world size (ZONES, default "100 10000") the script generates
# the same data for both servers: the zone example.org plus the zones
# d1.example.org .. dN.example.org, each with an MX record pointing at
# mail.dK.example.org and that name's A record. Then, ROUNDS times (odd
# rounds mailflow first, even rounds NSD first, so neither always gets the
# quieter moment):
#   - mailflow: `mailflow serve WORLD --fast --quiet --no-web`, tracing on:
#     every outside question is a query event and an answer event in the
#     trace. After the run the script stops it with SIGTERM, reads its
#     --report and checks that the trace grew by two events per answered
#     query ("every query still an event");
#   - NSD: a throwaway nsd.conf and zone files in a temporary folder,
#     `nsd -d`, one server process, its default (non-minimal) responses,
#     so it too adds the exchanges' addresses to MX answers, and response
#     rate limiting off (it would drop repeated answers to dnsperf).
# The load generator is dnsperf (DNS-OARC) with QUERIES_OUTSTANDING (100)
# queries in flight for SECONDS seconds, cycling through an MX question for
# every zone and an A question for every mail host. The server runs on
# CPU SERVER_CPU, dnsperf on CPU CLIENT_CPU (taskset). Figures are medians
# of ROUNDS; the ratio is the median of each round's mailflow/NSD ratio.
#
# Needs: Debian's dnsperf and nsd packages (the nsd service itself need
# not run; `systemctl disable --now nsd` if the package started it on
# port 53 - this script uses port 10053), dig (bind9-dnsutils), taskset,
# ss (iproute2), python3, a Rust toolchain.
#
# Usage: bash benches/dns.sh
# Knobs (environment): ZONES="100 10000" ROUNDS=3 SECONDS_PER_RUN=10
#                      QUERIES_OUTSTANDING=100 SERVER_CPU=0 CLIENT_CPU=1
set -euo pipefail

ZONES=${ZONES:-100 10000}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
QUERIES_OUTSTANDING=${QUERIES_OUTSTANDING:-100}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=10053 # mailflow's DNS port (53 + 10000); NSD uses the same on its own address

cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
MAILFLOW="$TARGET_DIR/release/mailflow"

die() { echo "dns bench: $*" >&2; exit 1; }

for tool in dnsperf nsd dig taskset ss python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian packages: dnsperf nsd bind9-dnsutils util-linux iproute2 python3)"
done

echo "== building mailflow (release)"
# Only the build is niced; the timed runs are not.
nice -n 19 cargo build --release --quiet

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

# A 127.X.0.0/16 block that nothing on this machine uses right now: no
# socket of any state (listening, connected, TIME_WAIT) has a local or
# remote address in it, and this run has not used it before. Sets OCTET.
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

# Waits until the DNS server at $1 answers a question about $2.
wait_for_dns() {
    local ip=$1 name=$2 tries=0
    until dig +short +time=1 +tries=1 -p "$PORT" "@$ip" A "$name" 2>/dev/null | grep -q .; do
        tries=$((tries + 1))
        ((tries < 600)) || die "no DNS answer from $ip:$PORT"
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server at $ip stopped: $(cat "$WORK"/*.err 2>/dev/null)"
        sleep 0.1
    done
}

# Writes, for N zones: the mailflow scenario, NSD's zone files and the
# dnsperf query list, all from one description.
generate() {
    local n=$1
    mkdir -p "$WORK/$n/zones"
    python3 - "$n" "$WORK/$n" <<'EOF'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
names = ["example.org"] + [f"d{k}.example.org" for k in range(1, n + 1)]
domains, queries, zones = {}, [], []
for k, domain in enumerate(names):
    address = f"127.1.{k // 250}.{k % 250 + 1}"  # data only: nothing is sent there
    domains[domain] = {"records": [
        {"type": "MX", "preference": 10, "exchange": f"mail.{domain}"},
        {"type": "A", "name": "mail", "address": address},
    ]}
    queries += [f"{domain} MX", f"mail.{domain} A"]
    with open(f"{out}/zones/{domain}.zone", "w") as f:
        f.write(f"$ORIGIN {domain}.\n$TTL 300\n"
                f"@ IN SOA dns.mailflow. hostmaster.{domain}. 1 3600 600 86400 60\n"
                f"@ IN MX 10 mail.{domain}.\n"
                f"mail IN A {address}\n")
    zones.append(domain)
scenario = {
    "title": f"Benchmark: DNS with {len(names)} zones",
    "description": "Generated by benches/dns.sh: example.org and d1..dN.example.org, each with an MX and its A record. No hosts, no steps.",
    "domains": domains,
    "hosts": {},
}
with open(f"{out}/world.json", "w") as f:
    json.dump(scenario, f, indent=1)
with open(f"{out}/queries.txt", "w") as f:
    f.write("\n".join(queries) + "\n")
with open(f"{out}/zones.txt", "w") as f:
    f.write("\n".join(zones) + "\n")
EOF
}

# Runs dnsperf against $1; sets QPS, COMPLETED, LOST. $2 = the query file.
run_dnsperf() {
    local ip=$1 queries=$2
    taskset -c "$CLIENT_CPU" dnsperf -s "$ip" -p "$PORT" -d "$queries" -l "$SECONDS_PER_RUN" -q "$QUERIES_OUTSTANDING" \
        >"$WORK/dnsperf.out" 2>&1 || { cat "$WORK/dnsperf.out" >&2; die "dnsperf failed against $ip"; }
    QPS=$(awk '/Queries per second:/ { printf "%.0f", $4 }' "$WORK/dnsperf.out")
    COMPLETED=$(awk '/Queries completed:/ { print $3 }' "$WORK/dnsperf.out")
    LOST=$(awk '/Queries lost:/ { print $3 }' "$WORK/dnsperf.out")
    [[ -n $QPS && -n $COMPLETED ]] || { cat "$WORK/dnsperf.out" >&2; die "could not read dnsperf's figures"; }
    # A right answer for each question type, not just a fast one: dnsperf
    # counts NOERROR answers.
    grep -q "NOERROR $COMPLETED " "$WORK/dnsperf.out" || { cat "$WORK/dnsperf.out" >&2; die "some answers from $ip were not NOERROR"; }
}

# One mailflow run on world $1. Sets MF_QPS, MF_LOST, MF_EVENTS, MF_COMPLETED.
bench_mailflow() {
    local n=$1 ip
    free_octet
    ip="127.$OCTET.0.1" # the world's first address is its DNS server
    rm -f "$WORK/mailflow.out" "$WORK/mailflow.err" "$WORK/report.json"
    taskset -c "$SERVER_CPU" "$MAILFLOW" serve "$WORK/$n/world.json" --fast --quiet --no-web \
        --subnet "127.$OCTET.0.0/16" --report "$WORK/report.json" \
        >"$WORK/mailflow.out" 2>"$WORK/mailflow.err" &
    SERVER_PID=$!
    wait_for_dns "$ip" "mail.example.org"
    local before
    before=$(dig +short -p "$PORT" "@$ip" A mail.d1.example.org | wc -l)
    ((before == 1)) || die "mailflow does not answer for d1.example.org"
    local cpu_before
    cpu_before=$(cpu_ms "$SERVER_PID")
    run_dnsperf "$ip" "$WORK/$n/queries.txt"
    MF_QPS=$QPS MF_LOST=$LOST MF_COMPLETED=$COMPLETED
    MF_CPU=$(per_query $(($(cpu_ms "$SERVER_PID") - cpu_before)) "$COMPLETED")
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || die "mailflow exited with an error: $(cat "$WORK/mailflow.err")"
    SERVER_PID=""
    [[ -s $WORK/report.json ]] || die "mailflow wrote no report"
    MF_EVENTS=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["events"])' "$WORK/report.json")
    # Two events (question and answer) per answered query, plus the
    # readiness digs and the world's own start-up events.
    ((MF_EVENTS >= 2 * MF_COMPLETED)) || die "mailflow traced $MF_EVENTS events for $MF_COMPLETED answered queries: some queries were not traced"
}

# One NSD run on world $1. Sets NSD_QPS, NSD_LOST.
bench_nsd() {
    local n=$1 ip dir=$WORK/$n/nsd
    free_octet
    ip="127.$OCTET.0.53"
    rm -rf "$dir" && mkdir -p "$dir"
    {
        echo "server:"
        echo "    ip-address: $ip@$PORT"
        echo "    do-ip6: no"
        echo "    server-count: 1"
        echo "    username: \"\""
        echo "    chroot: \"\""
        echo "    zonesdir: \"$WORK/$n/zones\""
        echo "    database: \"\""
        echo "    zonelistfile: \"$dir/zone.list\""
        echo "    xfrdfile: \"$dir/xfrd.state\""
        echo "    pidfile: \"$dir/nsd.pid\""
        echo "    logfile: \"$dir/nsd.log\""
        echo "    verbosity: 0"
        echo "    hide-version: yes"
        # Response rate limiting (on by default) would drop answers to a
        # load generator that asks the same names thousands of times a
        # second; mailflow has none, so neither does the baseline.
        echo "    rrl-ratelimit: 0"
        echo "    rrl-whitelist-ratelimit: 0"
        echo "remote-control:"
        echo "    control-enable: no"
        while read -r zone; do
            printf 'zone:\n    name: "%s"\n    zonefile: "%s.zone"\n' "$zone" "$zone"
        done <"$WORK/$n/zones.txt"
    } >"$dir/nsd.conf"
    nsd-checkconf "$dir/nsd.conf" || die "nsd-checkconf rejected $dir/nsd.conf"
    taskset -c "$SERVER_CPU" nsd -d -c "$dir/nsd.conf" >"$WORK/nsd.out" 2>"$WORK/nsd.err" &
    SERVER_PID=$!
    wait_for_dns "$ip" "mail.example.org"
    local cpu_before
    cpu_before=$(cpu_ms "$SERVER_PID")
    run_dnsperf "$ip" "$WORK/$n/queries.txt"
    NSD_QPS=$QPS NSD_LOST=$LOST
    NSD_CPU=$(per_query $(($(cpu_ms "$SERVER_PID") - cpu_before)) "$COMPLETED")
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# Process $1 and all its descendants (NSD forks a main process, which
# forks the server process that answers).
process_tree() {
    local pid
    echo "$1"
    for pid in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        process_tree "$pid"
    done
}

# CPU time (user + system, in ms) used so far by process $1 and its
# descendants: fields 14 and 15 of /proc/PID/stat, in clock ticks. A
# steadier figure than queries/s on a busy machine: the work per query.
cpu_ms() {
    local hz total=0 pid ticks
    hz=$(getconf CLK_TCK)
    for pid in $(process_tree "$1"); do
        ticks=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + ticks))
    done
    echo $((total * 1000 / hz))
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
median_of() { tr ' ' '\n' <<<"$1" | grep . | median; }
per_query() { awk -v ms="$1" -v n="$2" 'BEGIN { printf "%.1f", ms * 1000 / n }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "== dnsperf: $QUERIES_OUTSTANDING queries outstanding, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds"
echo "   server on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU, $(nproc) CPUs, $(uname -r), $(nsd -v 2>&1 | head -1), $(dpkg-query -W -f='dnsperf ${Version}' dnsperf 2>/dev/null || echo dnsperf)"
declare -A MF NS RATIO MFC NSC
for n in $ZONES; do
    generate "$n"
    "$MAILFLOW" check "$WORK/$n/world.json" >/dev/null || die "the generated world for $n zones is not valid"
    for round in $(seq 1 "$ROUNDS"); do
        if ((round % 2)); then
            bench_mailflow "$n"
            bench_nsd "$n"
        else
            bench_nsd "$n"
            bench_mailflow "$n"
        fi
        MF[$n]+="$MF_QPS "
        NS[$n]+="$NSD_QPS "
        RATIO[$n]+="$(ratio "$MF_QPS" "$NSD_QPS") "
        MFC[$n]+="$MF_CPU "
        NSC[$n]+="$NSD_CPU "
        printf "   %5s zones, round %d: mailflow %7s q/s (%s us CPU/query, lost %s, %s events for %s answers)  NSD %7s q/s (%s us CPU/query, lost %s)  ratio %s\n" \
            "$((n + 1))" "$round" "$MF_QPS" "$MF_CPU" "$MF_LOST" "$MF_EVENTS" "$MF_COMPLETED" "$NSD_QPS" "$NSD_CPU" "$NSD_LOST" "$(ratio "$MF_QPS" "$NSD_QPS")"
    done
done

echo
echo "== medians of $ROUNDS rounds (mailflow traced every query: >= 2 events per answer)"
printf "   %-38s %13s %10s %16s   %s\n" "zones" "mailflow q/s" "NSD q/s" "ratio (>= 0.50)" "server CPU per query, mailflow / NSD"
for n in $ZONES; do
    printf "   %-38s %13s %10s %16s   %s us / %s us\n" "example.org + d1..d$n.example.org" "$(median_of "${MF[$n]}")" "$(median_of "${NS[$n]}")" \
        "$(median_of "${RATIO[$n]}")" "$(median_of "${MFC[$n]}")" "$(median_of "${NSC[$n]}")"
done
echo "   (ratio: the median of the rounds' mailflow/NSD ratios)"
