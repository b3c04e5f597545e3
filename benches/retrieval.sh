#!/usr/bin/env bash
# The retrieval benchmark: IMAP and POP3 sessions per second of mailflow
# and of Dovecot, measured in the same run with the same load generator
# (benches/mailload.rs), and the ratio mailflow/Dovecot. Then, in the same
# run, Dovecot's own IMAP tester, imaptest, against both servers: its
# default random mix of commands from many sessions at once, every answer
# checked (errors must be 0), and its logins and commands per second.
#
#   sudo benches/retrieval.sh                  # the full comparison
#   sudo benches/retrieval.sh --only-dovecot   # Dovecot only
#   benches/retrieval.sh --clients 10 --seconds 10 --rounds 3 --messages 20
#
# What it does (see benches/README-retrieval.md):
#  1. installs Debian's dovecot-imapd and dovecot-pop3d if missing (needs
#     root), and makes sure no Dovecot started by the package stays up;
#  2. starts a throwaway Dovecot from a config it writes under a mktemp -d
#     folder (never the system config), listening on 127.66.1.2, IMAP 10143
#     and POP3 10110, with ten users reader1..reader10@bench.test;
#  3. starts `mailflow serve benches/retrieval-world.json --fast --quiet
#     --subnet 127.66.0.0/24` (mx.bench.test at 127.66.0.2, same ports);
#  4. gives every reader the same messages: Maildir files for Dovecot, SMTP
#     (curl) for mailflow, and checks the counts over POP3;
#  5. runs the load generator against each server, the server pinned to
#     core 0 and the load generator to core 1 (taskset), `--rounds` times
#     in alternating order, and prints the median of each row and the ratio;
#  6. runs imaptest against each server the same way (after the load
#     generator, because imaptest appends, flags and expunges mail), and
#     prints its totals, errors and the ratio. imaptest is not packaged by
#     Debian: give its path with --imaptest or $IMAPTEST (it is looked for
#     on PATH and in ../shared/tools/ too); without it this part is skipped.
#
# Ten users, one per client, for both protocols: a POP3 server locks a
# maildrop while a session has it (RFC 1939), so ten clients on one user
# would mostly be refused with [IN-USE].
#
# With --with-maildir and --with-tuned, two more rows: mailflow keeping its
# mailboxes as Maildir on disk (--data), and Dovecot tuned for speed.
#
# Everything listens on loopback only; everything it starts is stopped by
# its process id when the script ends, and the temporary folder is removed.
set -euo pipefail

ONLY_DOVECOT=0
CLIENTS=10
SECONDS_PER_RUN=10
WARMUP=1
ROUNDS=3
MESSAGES=20
USERS=10
NET=127.66              # mailflow: 127.66.0.0/24, Dovecot: 127.66.1.2
PASS=bench-secret
KEEP=0
WITH_MAILDIR=0
WITH_TUNED=0
IMAPTEST=${IMAPTEST:-}
IMAPTEST_MBOX=${IMAPTEST_MBOX:-}
IMAPTEST_CLIENTS=
IMAPTEST_SECONDS=
NO_IMAPTEST=0
ONLY_IMAPTEST=0

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    cat <<EOF
Options:
  --only-dovecot     measure Dovecot only (until mailflow serves IMAP and POP3)
  --clients N        concurrent clients per run (default $CLIENTS)
  --seconds S        measured seconds per run (default $SECONDS_PER_RUN)
  --warmup S         unmeasured seconds before each run (default $WARMUP)
  --rounds N         runs per row; the table shows the median (default $ROUNDS)
  --messages N       messages in each reader's INBOX (default $MESSAGES)
  --net A.B          the 127.A.B loopback block to use (default $NET)
  --with-maildir     also measure mailflow with --data (its mailboxes as Maildir on
                     disk, as Dovecot keeps them): row "mailflow-maildir"
  --with-tuned       also measure a Dovecot tuned for speed (login processes
                     reused, mail processes reused, auth cache): row "dovecot-tuned"
  --keep             keep the temporary folder (logs, config) and print its path
  --imaptest PATH    the imaptest binary (default: \$IMAPTEST, imaptest on PATH,
                     or ../shared/tools/imaptest next to the repository)
  --imaptest-clients N   imaptest's concurrent sessions (default: --clients)
  --imaptest-seconds S   seconds per imaptest run (default: --seconds)
  --no-imaptest      skip the imaptest part
  --only-imaptest    skip the load generator: imaptest only
EOF
}

while (($#)); do
    case "$1" in
        --only-dovecot) ONLY_DOVECOT=1 ;;
        --clients) CLIENTS=$2; shift ;;
        --seconds) SECONDS_PER_RUN=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --messages) MESSAGES=$2; shift ;;
        --net) NET=$2; shift ;;
        --keep) KEEP=1 ;;
        --with-maildir) WITH_MAILDIR=1 ;;
        --with-tuned) WITH_TUNED=1 ;;
        --imaptest) IMAPTEST=$2; shift ;;
        --imaptest-clients) IMAPTEST_CLIENTS=$2; shift ;;
        --imaptest-seconds) IMAPTEST_SECONDS=$2; shift ;;
        --no-imaptest) NO_IMAPTEST=1 ;;
        --only-imaptest) ONLY_IMAPTEST=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "retrieval.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if ((CLIENTS > USERS)); then
    USERS=$CLIENTS
fi
IMAPTEST_CLIENTS=${IMAPTEST_CLIENTS:-$CLIENTS}
((ONLY_IMAPTEST && NO_IMAPTEST)) && { echo "retrieval.sh: --only-imaptest and --no-imaptest leave nothing to run" >&2; exit 2; }
IMAPTEST_SECONDS=${IMAPTEST_SECONDS:-$SECONDS_PER_RUN}
[[ $NET =~ ^127\.[0-9]+$ ]] || { echo "retrieval.sh: --net must look like 127.66 (loopback only)" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
# Each server gets its own address: mailflow's worlds are 127.A.B.0/24
# blocks (DNS at .1, mx.bench.test at .2), Dovecots listen on 127.A.B.2.
declare -A ADDR=([mailflow]=$NET.0.2 [dovecot]=$NET.1.2 [mailflow-maildir]=$NET.2.2 [dovecot-tuned]=$NET.3.2)
IMAP_PORT=10143
POP3_PORT=10110
SMTP_PORT=10025

say() { printf '\n== %s\n' "$*" >&2; }
die() { echo "retrieval.sh: $*" >&2; exit 1; }

if [[ $(id -u) != 0 ]]; then
    die "run as root: Dovecot's master process must start as root to switch to its own users"
fi

# ---------------------------------------------------------------- tools --
need_packages=()
command -v dovecot >/dev/null && [[ -x /usr/lib/dovecot/imap && -x /usr/lib/dovecot/pop3 ]] \
    || need_packages+=(dovecot-imapd dovecot-pop3d)
command -v curl >/dev/null || need_packages+=(curl)
command -v taskset >/dev/null || need_packages+=(util-linux)
if ((${#need_packages[@]})); then
    say "installing ${need_packages[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >&2
    # The package may try to start the system service (it cannot where
    # there is no init, or policy-rc.d forbids it). If one did start, stop
    # that one process, by the pid it wrote: this benchmark never uses it.
    for pidfile in /run/dovecot/master.pid /var/run/dovecot/master.pid; do
        if [[ -f $pidfile ]] && pid=$(cat "$pidfile") && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dovecot ]]; then
            echo "stopping the Dovecot service the package started (pid $pid)" >&2
            kill "$pid" || true
        fi
    done
fi
DOVECOT_VERSION=$(dovecot --version)
[[ $DOVECOT_VERSION == 2.3.* ]] \
    || die "Dovecot $DOVECOT_VERSION: this script writes Dovecot 2.3 configuration (Debian 12); 2.4 changed the syntax"

# imaptest (Dovecot's IMAP tester; it needs libdovecot from dovecot-core,
# which dovecot-imapd brings).
if ((!NO_IMAPTEST)); then
    if [[ -z $IMAPTEST ]]; then
        IMAPTEST=$(command -v imaptest || true)
        [[ -n $IMAPTEST || ! -x $REPO/../shared/tools/imaptest ]] || IMAPTEST=$(cd "$REPO/../shared/tools" && pwd)/imaptest
    fi
    if [[ -z $IMAPTEST || ! -x $IMAPTEST ]]; then
        echo "retrieval.sh: no imaptest binary (--imaptest PATH or \$IMAPTEST): skipping the imaptest part" >&2
        NO_IMAPTEST=1
    elif help=$("$IMAPTEST" --help 2>&1 || true) && [[ $help != *"imaptest ["* ]]; then
        echo "retrieval.sh: $IMAPTEST does not run (it needs libdovecot: apt-get install dovecot-core): skipping the imaptest part" >&2
        NO_IMAPTEST=1
    fi
fi

CORES=$(nproc)
if ((CORES >= 2)); then
    SERVER_CPU=(taskset -c 0)
    LOAD_CPU=(taskset -c 1)
else
    echo "retrieval.sh: only $CORES core: server and load generator share it (figures are not comparable to 2-core runs)" >&2
    SERVER_CPU=()
    LOAD_CPU=()
fi

say "building the load generator"
MAILLOAD=$(cd "$REPO" && cargo bench --bench mailload --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*mailload[^"]*"' | tail -1 | cut -d'"' -f4)
[[ -x $MAILLOAD ]] || die "could not build benches/mailload.rs (try: cargo bench --bench mailload --no-run)"
if ((!ONLY_DOVECOT)) && [[ -n ${MAILFLOW_BIN:-} ]]; then
    # MAILFLOW_BIN=path measures that binary as it is (e.g. an older build).
    MAILFLOW=$MAILFLOW_BIN
elif ((!ONLY_DOVECOT)); then
    (cd "$REPO" && cargo build --release --quiet --bin mailflow) || die "could not build mailflow"
    MAILFLOW=$CARGO_TARGET_DIR/release/mailflow
fi

# ------------------------------------------------------- the temp folder --
TMP=$(mktemp -d /tmp/mailflow-retrieval.XXXXXX)
# Dovecot's own users (dovecot, dovenull) must reach the mail and sockets.
chmod 755 "$TMP"
# Processes this script started: pid -> how to stop it.
declare -A STARTED=()
cleanup() {
    local status=$? pid
    for pid in "${!STARTED[@]}"; do
        # mailflow stops on Ctrl-C (SIGINT); Dovecot's master on SIGTERM.
        kill "-${STARTED[$pid]}" "$pid" 2>/dev/null || true
    done
    for pid in "${!STARTED[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if ((KEEP)); then
        echo "retrieval.sh: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until HOST PORT accepts TCP connections (or gives up).
wait_port() {
    local host=$1 port=$2 what=$3
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "$what is not listening on $host:$port"
}

port_free() {
    ! (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ------------------------------------------------------------- the mail --
# MESSAGES messages of about 2 KiB each, the same for every reader and both
# servers. Each body has a line starting with "." (POP3 must dot-stuff it)
# and a line that looks like an IMAP tagged reply (a reader that does not
# count literal bytes would stop there).
mkdir -p "$TMP/messages"
for ((m = 1; m <= MESSAGES; m++)); do
    {
        printf 'From: Sender <sender@elsewhere.test>\n'
        printf 'To: Readers <readers@bench.test>\n'
        printf 'Subject: Benchmark message %d\n' "$m"
        printf 'Date: Mon, 01 Jan 2024 09:%02d:00 +0000\n' $((m % 60))
        printf 'Message-ID: <bench-%d@elsewhere.test>\n' "$m"
        printf 'MIME-Version: 1.0\n'
        printf 'Content-Type: text/plain; charset=us-ascii\n'
        printf '\n'
        printf 'Message %d of the retrieval benchmark.\n' "$m"
        printf '.a line that starts with a dot\n'
        printf 'a3 OK a line that looks like a tagged reply\n'
        for ((l = 1; l <= 24; l++)); do
            printf 'Line %02d: the quick brown fox jumps over the lazy dog, twice over.\n' "$l"
        done
    } >"$TMP/messages/$m.eml"
done
MESSAGE_BYTES=$(cat "$TMP"/messages/*.eml | wc -c)

# The mail imaptest APPENDs: the imaptest.mbox shipped next to imaptest
# (varied MIME messages), or else the benchmark's messages as an mbox.
if ((!NO_IMAPTEST)); then
    if [[ -z $IMAPTEST_MBOX ]]; then
        IMAPTEST_MBOX=$(dirname "$IMAPTEST")/imaptest.mbox
    fi
    if [[ ! -r $IMAPTEST_MBOX ]]; then
        IMAPTEST_MBOX=$TMP/imaptest.mbox
        for ((m = 1; m <= MESSAGES; m++)); do
            printf 'From sender@elsewhere.test Mon Jan  1 09:%02d:00 2024\n' $((m % 60))
            sed 's/^\(>*From \)/>\1/' "$TMP/messages/$m.eml"
            printf '\n'
        done >"$IMAPTEST_MBOX"
    fi
fi

# Counts a reader's messages over POP3 (LIST), to check the seeding.
pop3_count() {
    local host=$1 user=$2
    curl -s --max-time 10 "pop3://$host:$POP3_PORT/" --user "$user:$PASS" | grep -c '^[0-9]' || true
}

# ------------------------------------------------------------ Dovecot --
# start_dovecot NAME [tuned]: a Dovecot of its own in $TMP/NAME.
start_dovecot() {
    local name=$1 tuned=${2:-} addr=${ADDR[$1]}
    local dir=$TMP/$name
    say "starting $name ($DOVECOT_VERSION) on $addr (IMAP $IMAP_PORT, POP3 $POP3_PORT), config in $dir"
    port_free "$addr" "$IMAP_PORT" && port_free "$addr" "$POP3_PORT" \
        || die "something already listens on $addr:$IMAP_PORT or :$POP3_PORT (try --net)"
    mkdir -p "$dir/run" "$dir/state" "$dir/mail"
    local uid gid
    uid=$(id -u dovecot) gid=$(id -g dovecot)
    : >"$dir/users"
    for ((u = 1; u <= USERS; u++)); do
        local home=$dir/mail/reader$u
        # user:password:uid:gid:gecos:home:shell (uid/gid come from mail_uid)
        echo "reader$u@bench.test:{PLAIN}$PASS::::$home::" >>"$dir/users"
        mkdir -p "$home/Maildir/cur" "$home/Maildir/new" "$home/Maildir/tmp"
        for ((m = 1; m <= MESSAGES; m++)); do
            # Maildir names: time.unique.host, ":2," and no flags (unread).
            cp "$TMP/messages/$m.eml" "$home/Maildir/cur/$((1704096000 + m)).M${m}P1.bench:2,"
        done
    done
    chown -R dovecot:dovecot "$dir/mail"
    cat >"$dir/dovecot.conf" <<EOF
# A throwaway Dovecot $DOVECOT_VERSION for benches/retrieval.sh: loopback
# only, plain-text logins, nothing from /etc/dovecot. Unless "tuned" below,
# performance settings are Dovecot's defaults: one login process and one
# mail process per connection (its "high-security" mode).
protocols = imap pop3
listen = $addr
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
mail_uid = $uid
mail_gid = $gid
first_valid_uid = $uid
first_valid_gid = $gid
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
# imaptest opens many sessions to the same user from one address; the
# default limit (10 per user and IP) would refuse some. Not a speed setting.
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $dir/users
}
service imap-login {
  inet_listener imap {
    address = $addr
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = $addr
    port = $POP3_PORT
  }
  inet_listener pop3s {
    port = 0
  }
}
EOF
    if [[ $tuned == tuned ]]; then
        cat >>"$dir/dovecot.conf" <<EOF

# Tuned for speed (Dovecot's documented "high-performance" login mode):
# login processes serve many connections and stay up; mail processes are
# reused (every reader has the same uid here); logins are cached.
service imap-login {
  service_count = 0
  process_min_avail = $CORES
}
service pop3-login {
  service_count = 0
  process_min_avail = $CORES
}
service imap {
  service_count = 0
  process_min_avail = $CLIENTS
  process_limit = 100
}
service pop3 {
  service_count = 0
  process_min_avail = $CLIENTS
  process_limit = 100
}
auth_cache_size = 1M
EOF
    fi
    "${SERVER_CPU[@]}" dovecot -c "$dir/dovecot.conf" || { cat "$dir/dovecot.log" >&2 2>/dev/null; die "$name did not start"; }
    for _ in $(seq 50); do [[ -s $dir/run/master.pid ]] && break; sleep 0.1; done
    local pid
    pid=$(cat "$dir/run/master.pid")
    STARTED[$pid]=TERM
    ROOT[$name]=$pid
    wait_port "$addr" "$IMAP_PORT" "$name IMAP"
    wait_port "$addr" "$POP3_PORT" "$name POP3"
    local n
    for ((u = 1; u <= USERS; u++)); do
        n=$(pop3_count "$addr" "reader$u@bench.test")
        ((n == MESSAGES)) || die "$name: reader$u has $n messages, expected $MESSAGES (see $dir/dovecot.log; --keep keeps it)"
    done
}

# ----------------------------------------------------------- mailflow --
# start_mailflow NAME [mailflow serve options...]
start_mailflow() {
    local name=$1 addr=${ADDR[$1]}
    shift
    local subnet=${addr%.*}.0/24
    say "starting $name on $addr (SMTP $SMTP_PORT, IMAP $IMAP_PORT, POP3 $POP3_PORT) $*"
    port_free "$addr" "$SMTP_PORT" || die "something already listens on $addr:$SMTP_PORT (try --net)"
    local scenario=$REPO/benches/retrieval-world.json
    if ((USERS > 10)); then
        # More clients than the world's ten readers: a copy with more.
        scenario=$TMP/retrieval-world.json
        python3 - "$REPO/benches/retrieval-world.json" "$scenario" "$USERS" "$PASS" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
s["users"] = {f"reader{i}@bench.test": {"password": sys.argv[4]} for i in range(1, int(sys.argv[3]) + 1)}
json.dump(s, open(sys.argv[2], "w"), indent=2)
EOF
    fi
    "${SERVER_CPU[@]}" "$MAILFLOW" serve "$scenario" --fast --quiet --subnet "$subnet" "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    STARTED[$!]=INT
    ROOT[$name]=$!
    wait_port "$addr" "$SMTP_PORT" "$name SMTP"
    local missing=
    port_free "$addr" "$IMAP_PORT" && missing+=" IMAP"
    port_free "$addr" "$POP3_PORT" && missing+=" POP3"
    [[ -z $missing ]] || die "mailflow on this branch does not serve$missing yet (merge main once src/imap/server.rs and src/pop3/server.rs are there, or use --only-dovecot)"
    # One SMTP transaction per message, to all readers at once.
    local rcpts=() m u n
    for ((u = 1; u <= USERS; u++)); do rcpts+=(--mail-rcpt "reader$u@bench.test"); done
    for ((m = 1; m <= MESSAGES; m++)); do
        curl -s --max-time 10 --crlf "smtp://$addr:$SMTP_PORT/bench.client" \
            --mail-from sender@elsewhere.test "${rcpts[@]}" --upload-file "$TMP/messages/$m.eml" \
            || die "$name did not accept message $m over SMTP (see $TMP/$name.err; --keep keeps it)"
    done
    for ((u = 1; u <= USERS; u++)); do
        n=$(pop3_count "$addr" "reader$u@bench.test")
        ((n == MESSAGES)) || die "$name: reader$u has $n messages, expected $MESSAGES"
    done
}

# --------------------------------------------------------------- runs --
declare -A RESULTS   # "protocol server" -> newline-separated RESULT lines
declare -A ROOT      # server -> the pid of its (master) process
CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID: CPU time (user + system, in clock ticks) used so far by
# the process PID, its threads, its live children, and its children that
# have ended (the kernel adds those to the parent when it reaps them).
# Dovecot's master starts every process of Dovecot as its child, so the
# difference over a run is all of Dovecot's work, wherever it ran.
cpu_ticks() {
    local root=$1 sum=0 stat pid fields
    for stat in /proc/[0-9]*/stat; do
        pid=${stat#/proc/}
        pid=${pid%/stat}
        # Fields after the ") " that ends the command name: 2 ppid,
        # 12 utime, 13 stime, 14 cutime, 15 cstime.
        fields=$(cat "$stat" 2>/dev/null) || continue
        read -r -a fields <<<"${fields##*) }"
        if [[ $pid == "$root" ]]; then
            sum=$((sum + fields[11] + fields[12] + fields[13] + fields[14]))
        elif [[ ${fields[1]} == "$root" ]]; then
            sum=$((sum + fields[11] + fields[12]))
        fi
    done
    echo "$sum"
}

# reaped_ticks PID: CPU time of PID's children that have ended and been
# waited for (for the load generator, a child of this shell).
reaped_ticks() {
    local fields
    fields=$(cat "/proc/$1/stat")
    read -r -a fields <<<"${fields##*) }"
    echo $((fields[13] + fields[14]))
}

run_load() {
    local protocol=$1 server=$2 port
    [[ $protocol == imap ]] && port=$IMAP_PORT || port=$POP3_PORT
    local out before after load_before load_after
    before=$(cpu_ticks "${ROOT[$server]}")
    load_before=$(reaped_ticks $$)
    out=$("${LOAD_CPU[@]}" "$MAILLOAD" "$protocol" --addr "${ADDR[$server]}:$port" --user 'reader{i}@bench.test' --pass "$PASS" \
        --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" 2>/dev/null)
    load_after=$(reaped_ticks $$)
    after=$(cpu_ticks "${ROOT[$server]}")
    grep -v '^RESULT' <<<"$out" | sed "s/^/  [$server] /" >&2
    local line sessions wall
    line=$(grep '^RESULT' <<<"$out") || die "the load generator printed no RESULT line"
    sessions=$(field all_sessions "$line")
    wall=$(awk -v s="$SECONDS_PER_RUN" -v w="$WARMUP" 'BEGIN { print s + w }')
    # The server's CPU time per session (warm-up included, as in its CPU
    # time): less sensitive to other work on the machine than sessions/s.
    line+=" server_cpu_ms_per_session=$(awk -v t=$((after - before)) -v h="$CLK_TCK" -v n="$sessions" 'BEGIN { printf "%.3f", n ? t * 1000 / h / n : 0 }')"
    # How busy the load generator was (ended children of this shell): it
    # must not be the bottleneck.
    line+=" load_cpu_pct=$(awk -v t=$((load_after - load_before)) -v h="$CLK_TCK" -v w="$wall" 'BEGIN { printf "%.0f", t * 100 / h / w }')"
    echo "  [$server] server CPU per session $(field server_cpu_ms_per_session "$line") ms; load generator CPU $(field load_cpu_pct "$line")% of a core" >&2
    RESULTS["$protocol $server"]+="$line"$'\n'
}

# field NAME LINE: the value of NAME=... in a RESULT line.
field() {
    local kv
    for kv in $2; do
        [[ $kv == "$1="* ]] && { echo "${kv#*=}"; return; }
    done
    echo 0
}

# The RESULT line with the median sessions/s among a row's rounds.
median_line() {
    local lines=$1 count
    count=$(grep -c . <<<"$lines")
    grep . <<<"$lines" | while read -r l; do echo "$(field sessions_per_s "$l") $l"; done \
        | sort -n -k1,1 | sed -n "$(((count + 1) / 2))p" | cut -d' ' -f2-
}

# total_errors LINES: errors over all rounds.
total_errors() {
    local sum=0 l
    while read -r l; do
        [[ -n $l ]] && sum=$((sum + $(field errors "$l")))
    done <<<"$1"
    echo "$sum"
}

# ---------------------------------------------------------- imaptest --
declare -A IMAPTEST_RESULTS   # server -> newline-separated RESULT lines

# run_imaptest SERVER ROUND: one imaptest run (its default command mix),
# pinned like the load generator. Its output is kept in $TMP.
run_imaptest() {
    local server=$1 round=$2 out before after
    out=$TMP/imaptest-$server-$round.txt
    before=$(cpu_ticks "${ROOT[$server]}")
    "${LOAD_CPU[@]}" timeout $((IMAPTEST_SECONDS + 60)) "$IMAPTEST" host="${ADDR[$server]}" port="$IMAP_PORT" \
        user='reader%d@bench.test' users="1-$USERS" pass="$PASS" mbox="$IMAPTEST_MBOX" \
        clients="$IMAPTEST_CLIENTS" secs="$IMAPTEST_SECONDS" >"$out" 2>&1 || true
    after=$(cpu_ticks "${ROOT[$server]}")
    # The totals: a line of column names (Logi List Stat Sele Fetc ...),
    # two lines of percentages, then the counts.
    local totals
    totals=$(awk '/^Totals:/ { t = 1; n = 0; next }
        t { n++; if (n == 1) for (i = 1; i <= NF; i++) name[i] = $i
            if (n == 4) { for (i = 1; i <= NF; i++) { printf "%s=%s ", name[i], $i; sum += $i }; printf "commands=%d", sum; exit } }' "$out")
    [[ -n $totals ]] || die "imaptest printed no totals against $server (see $out; --keep keeps it)"
    local errors warnings logins line
    errors=$(grep -c '^Error:' "$out" || true)
    warnings=$(grep -c '^Warning:' "$out" || true)
    logins=$(field Logi "$totals")
    line="RESULT $totals errors=$errors warnings=$warnings"
    line+=" logins_per_s=$(awk -v n="$logins" -v s="$IMAPTEST_SECONDS" 'BEGIN { printf "%.1f", n / s }')"
    line+=" commands_per_s=$(awk -v n="$(field commands "$totals")" -v s="$IMAPTEST_SECONDS" 'BEGIN { printf "%.1f", n / s }')"
    line+=" server_cpu_ms_per_login=$(awk -v t=$((after - before)) -v h="$CLK_TCK" -v n="$logins" 'BEGIN { printf "%.3f", n ? t * 1000 / h / n : 0 }')"
    echo "  [$server] imaptest: $(field logins_per_s "$line") logins/s, $(field commands_per_s "$line") commands/s, $errors errors, $warnings warnings" >&2
    if ((errors)); then
        grep '^Error:' "$out" | sed -E 's/^Error: [^:]*: //; s/: [*] .*//; s/[0-9]+/N/g' | cut -c1-120 | sort | uniq -c | sort -rn | head -5 \
            | sed "s/^/  [$server] /" >&2
    fi
    IMAPTEST_RESULTS[$server]+="$line"$'\n'
}

# The RESULT line with the median logins/s among a row's imaptest rounds.
imaptest_median() {
    local lines=$1 count
    count=$(grep -c . <<<"$lines")
    grep . <<<"$lines" | while read -r l; do echo "$(field logins_per_s "$l") $l"; done \
        | sort -n -k1,1 | sed -n "$(((count + 1) / 2))p" | cut -d' ' -f2-
}

# The rows' order: Dovecots first, then mailflows.
SERVERS=(dovecot)
start_dovecot dovecot
if ((WITH_TUNED)); then
    start_dovecot dovecot-tuned tuned
    SERVERS+=(dovecot-tuned)
fi
if ((!ONLY_DOVECOT)); then
    start_mailflow mailflow
    SERVERS+=(mailflow)
    if ((WITH_MAILDIR)); then
        start_mailflow mailflow-maildir --data "$TMP/mailflow-data"
        SERVERS+=(mailflow-maildir)
    fi
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "measuring: $CLIENTS clients, $SECONDS_PER_RUN s (+$WARMUP s warm-up) per run, $ROUNDS rounds, $USERS readers x $MESSAGES messages ($MESSAGE_BYTES bytes per mailbox as files); server on ${SERVER_CPU[*]:-any core}, load on ${LOAD_CPU[*]:-any core}; load average before: $LOAD_BEFORE"
if ((!ONLY_IMAPTEST)); then
    for ((r = 1; r <= ROUNDS; r++)); do
        # Reverse the order every other round, so drift in the machine's speed
        # (other work on a shared machine) does not always favour the same one.
        order=("${SERVERS[@]}")
        if ((r % 2 == 0)); then
            order=()
            for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do order+=("${SERVERS[i]}"); done
        fi
        for protocol in imap pop3; do
            for server in "${order[@]}"; do
                echo "round $r/$ROUNDS: $protocol $server" >&2
                run_load "$protocol" "$server"
            done
        done
    done
fi
if ((!NO_IMAPTEST)); then
    say "imaptest ($IMAPTEST, mail from $IMAPTEST_MBOX): $IMAPTEST_CLIENTS sessions, $IMAPTEST_SECONDS s per run, $ROUNDS rounds"
    for ((r = 1; r <= ROUNDS; r++)); do
        order=("${SERVERS[@]}")
        if ((r % 2 == 0)); then
            order=()
            for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do order+=("${SERVERS[i]}"); done
        fi
        for server in "${order[@]}"; do
            echo "round $r/$ROUNDS: imaptest $server" >&2
            run_imaptest "$server" "$r"
        done
    done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# -------------------------------------------------------------- table --
if ((!ONLY_IMAPTEST)); then
    echo
    echo "Retrieval benchmark $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $LOAD_BEFORE before / $LOAD_AFTER after"
    echo "$CLIENTS clients, $USERS readers x $MESSAGES messages, $SECONDS_PER_RUN s per run, median of $ROUNDS rounds; Dovecot $DOVECOT_VERSION"
    printf '%-8s %-17s %11s %13s %12s %7s %8s %8s %12s %9s\n' protocol server sessions/s "fetch msgs/s" "fetch KiB/s" errors "p50 ms" "p95 ms" "CPU ms/sess" "load CPU"
    for protocol in imap pop3; do
        for server in "${SERVERS[@]}"; do
            lines=${RESULTS["$protocol $server"]}
            line=$(median_line "$lines")
            printf '%-8s %-17s %11s %13s %12.0f %7s %8.2f %8.2f %12.3f %8s%%\n' "$protocol" "$server" \
                "$(field sessions_per_s "$line")" "$(field fetch_msgs_per_s "$line")" \
                "$(awk -v b="$(field fetch_bytes_per_s "$line")" 'BEGIN { print b / 1024 }')" \
                "$(total_errors "$lines")" "$(field p50_ms "$line")" "$(field p95_ms "$line")" \
                "$(field server_cpu_ms_per_session "$line")" "$(field load_cpu_pct "$line")"
        done
    done
    if ((!ONLY_DOVECOT)); then
        echo
        all_met=1
        for protocol in imap pop3; do
            for server in "${SERVERS[@]}"; do
                [[ $server == mailflow* ]] || continue
                for base in "${SERVERS[@]}"; do
                    [[ $base == dovecot* ]] || continue
                    mf=$(field sessions_per_s "$(median_line "${RESULTS["$protocol $server"]}")")
                    dc=$(field sessions_per_s "$(median_line "${RESULTS["$protocol $base"]}")")
                    errors=$(total_errors "${RESULTS["$protocol $server"]}")
                    ratio=$(awk -v a="$mf" -v b="$dc" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')
                    verdict=$(awk -v r="$ratio" -v e="$errors" 'BEGIN { print (r != "inf" && r >= 2 && e == 0) ? "met" : "NOT met" }')
                    if [[ $server == mailflow && $base == dovecot ]]; then
                        [[ $verdict == met ]] || all_met=0
                        note="(target >= 2x with 0 errors: $verdict)"
                    else
                        note=""
                    fi
                    printf 'ratio %-4s sessions/s %-17s / %-14s %7sx %s\n' "$protocol" "$server" "$base" "$ratio" "$note"
                    mfc=$(field server_cpu_ms_per_session "$(median_line "${RESULTS["$protocol $server"]}")")
                    dcc=$(field server_cpu_ms_per_session "$(median_line "${RESULTS["$protocol $base"]}")")
                    printf '      %-4s CPU per session %-17s vs %-14s %6sx less\n' "$protocol" "$server" "$base" \
                        "$(awk -v a="$mfc" -v b="$dcc" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "inf" }')"
                done
            done
        done
        ((all_met)) && echo "target (mailflow >= 2x Dovecot, IMAP and POP3, 0 errors): met" \
            || echo "target (mailflow >= 2x Dovecot, IMAP and POP3, 0 errors): NOT met"
    fi
fi
if ((!NO_IMAPTEST)); then
    echo
    ((ONLY_IMAPTEST)) && echo "Retrieval benchmark, imaptest only, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $LOAD_BEFORE before / $LOAD_AFTER after; Dovecot $DOVECOT_VERSION"
    echo "imaptest (Dovecot's IMAP tester, its default random mix, every answer checked): $IMAPTEST_CLIENTS sessions over $USERS readers, $IMAPTEST_SECONDS s per run, median of $ROUNDS rounds"
    printf '%-17s %9s %11s %7s %9s %14s   %s\n' server logins/s commands/s errors warnings "CPU ms/login" "totals of the median round"
    for server in "${SERVERS[@]}"; do
        lines=${IMAPTEST_RESULTS[$server]}
        line=$(imaptest_median "$lines")
        sum_errors=0 sum_warnings=0
        while read -r l; do
            [[ -n $l ]] || continue
            sum_errors=$((sum_errors + $(field errors "$l")))
            sum_warnings=$((sum_warnings + $(field warnings "$l")))
        done <<<"$lines"
        printf '%-17s %9s %11s %7s %9s %14s   %s\n' "$server" "$(field logins_per_s "$line")" "$(field commands_per_s "$line")" \
            "$sum_errors" "$sum_warnings" "$(field server_cpu_ms_per_login "$line")" \
            "$(sed -E 's/^RESULT //; s/ errors=.*//' <<<"$line")"
    done
    if ((!ONLY_DOVECOT)); then
        for server in "${SERVERS[@]}"; do
            [[ $server == mailflow* ]] || continue
            for base in "${SERVERS[@]}"; do
                [[ $base == dovecot* ]] || continue
                mf=$(imaptest_median "${IMAPTEST_RESULTS[$server]}")
                dc=$(imaptest_median "${IMAPTEST_RESULTS[$base]}")
                printf 'ratio imaptest logins/s %-17s / %-14s %7sx   commands/s %7sx\n' "$server" "$base" \
                    "$(awk -v a="$(field logins_per_s "$mf")" -v b="$(field logins_per_s "$dc")" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')" \
                    "$(awk -v a="$(field commands_per_s "$mf")" -v b="$(field commands_per_s "$dc")" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')"
            done
        done
        errors=0
        for server in "${SERVERS[@]}"; do
            [[ $server == mailflow* ]] || continue
            while read -r l; do [[ -n $l ]] && errors=$((errors + $(field errors "$l"))); done <<<"${IMAPTEST_RESULTS[$server]}"
        done
        ((errors == 0)) && echo "imaptest errors against mailflow: 0 (target met)" || echo "imaptest errors against mailflow: $errors (target: 0, NOT met)"
    fi
fi
