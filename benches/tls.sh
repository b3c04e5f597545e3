#!/usr/bin/env bash
# The TLS benchmark (issue 10 item 8): mailflow against Dovecot with TLS and
# Postfix's smtp-sink, in the same run, with the same load generator
# (benches/tlsload.rs, rustls with resumption off), server pinned to core 0
# and load generator to core 1, median of ROUNDS rounds in alternating order.
#
#   sudo bash benches/tls.sh
#   sudo CLIENTS=10 SECONDS_PER_RUN=5 ROUNDS=3 bash benches/tls.sh
#
# Rows (see benches/README-tls.md):
#   handshake  full TLS handshakes/s on IMAPS (993 + 10000): connect, handshake,
#              read the greeting through TLS, close_notify
#   imaps      IMAPS sessions/s: TLS, LOGIN, SELECT INBOX, FETCH 1:* (FLAGS
#              BODY.PEEK[]), LOGOUT (target: mailflow >= 3x Dovecot)
#   imap       the same session in plaintext on 143 + 10000 (what TLS costs)
#   smtp       SMTP intake: EHLO, STARTTLS, EHLO, SMTP_MESSAGES x (MAIL, RCPT,
#              DATA), QUIT on 25 + 10000; smtp-sink cannot do TLS, so it is
#              measured in plaintext (row smtp-plain), next to mailflow in
#              plaintext on the same generator
#
# Two mailflows: "mailflow" with --data (its mailboxes as Maildir on disk,
# as Dovecot keeps them; the CA kept there) for the IMAP rows, and
# "mailflow-mem" without --data for the SMTP rows: with --data every
# accepted message is fsync'd before its 250 (durability), which would make
# intake a disk benchmark (smtp-sink keeps nothing; smtp-intake.sh also
# measures mailflow without --data). mailflow-mem is started afresh for
# each SMTP run on a new $NET.(10+n).2 (every run starts from an empty
# server, with no TIME_WAIT sockets of an earlier run), stopped after it,
# and its --report checked: every message it said 250 to is in its mailbox.
#
# The certificates: `mailflow ca --data DIR` makes the world's CA (kept in
# DIR/tls/), mailflow serves with the same --data DIR, and openssl signs a
# certificate for Dovecot with that CA's key (ECDSA P-256 like mailflow's,
# names mx.bench.test and Dovecot's address). The load generator trusts only
# that CA and checks the name mx.bench.test, for both servers. mailflow-mem
# makes a new CA at each start and keeps it nowhere: the client trusts the
# self-signed mailflow CA certificate that server sends after its own.
#
# Needs (nothing is installed by this script): root (Dovecot's master must
# start as root), Debian's dovecot-imapd (Dovecot 2.3), openssl, curl,
# taskset (util-linux), python3, a Rust toolchain; Postfix's smtp-sink
# (Debian package postfix; the service need not run) for the smtp-sink row,
# which is left out without it.
#
# Everything listens on $NET.x.y (loopback) only; everything this script starts is
# stopped by its process id at the end, and its temporary folder removed
# (KEEP=1 keeps it).
set -euo pipefail

CLIENTS=${CLIENTS:-10}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
MESSAGES=${MESSAGES:-20}         # in each reader's INBOX
SMTP_MESSAGES=${SMTP_MESSAGES:-10} # per SMTP session
SIZE=${SIZE:-1024}
NET=${NET:-127.68}
KEEP=${KEEP:-0}
USERS=$CLIENTS
PASS=bench-secret
NAME=mx.bench.test

[[ $NET =~ ^127\.[0-9]+$ ]] || { echo "tls.sh: NET must look like 127.68 (loopback only)" >&2; exit 2; }
((CLIENTS >= 1 && CLIENTS <= 10)) || { echo "tls.sh: CLIENTS 1..10 (the world has ten readers)" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
declare -A ADDR=([mailflow]=$NET.0.2 [dovecot]=$NET.1.2 [mailflow-mem]=$NET.2.2 [smtp-sink]=$NET.9.1)
IMAP_PORT=10143
IMAPS_PORT=10993
SMTP_PORT=10025

say() { printf '\n== %s\n' "$*" >&2; }
die() { echo "tls.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tools --
[[ $(id -u) == 0 ]] || die "run as root: Dovecot's master process must start as root to switch to its own users"
command -v dovecot >/dev/null && [[ -x /usr/lib/dovecot/imap && -x /usr/lib/dovecot/imap-login ]] \
    || die "Dovecot's IMAP server is missing: apt-get install dovecot-imapd"
DOVECOT_VERSION=$(dovecot --version)
[[ $DOVECOT_VERSION == 2.3.* ]] || die "Dovecot $DOVECOT_VERSION: this script writes Dovecot 2.3 configuration (Debian 12)"
for tool in openssl curl taskset python3; do
    command -v $tool >/dev/null || die "$tool is missing"
done
SINK=/usr/sbin/smtp-sink
if [[ ! -x $SINK ]]; then
    echo "tls.sh: $SINK is missing (Debian package postfix): no smtp-sink row" >&2
    SINK=
fi
if (($(nproc) >= 2)); then
    SERVER_CPU=(taskset -c 0)
    LOAD_CPU=(taskset -c 1)
else
    echo "tls.sh: only one core: server and load generator share it" >&2
    SERVER_CPU=()
    LOAD_CPU=()
fi

say "building mailflow (release) and the load generator"
if [[ -n ${MAILFLOW_BIN:-} ]]; then
    MAILFLOW=$MAILFLOW_BIN
else
    (cd "$REPO" && nice -n 19 cargo build --release --quiet --bin mailflow) || die "could not build mailflow"
    MAILFLOW=$CARGO_TARGET_DIR/release/mailflow
fi
TLSLOAD=$(cd "$REPO" && nice -n 19 cargo bench --bench tlsload --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*tlsload[^"]*"' | tail -1 | cut -d'"' -f4)
[[ -x $TLSLOAD ]] || die "could not build benches/tlsload.rs (try: cargo bench --bench tlsload --no-run)"
"$MAILFLOW" check "$REPO/benches/tls-world.json" >/dev/null

# ------------------------------------------------------- the temp folder --
TMP=$(mktemp -d /tmp/mailflow-tls.XXXXXX)
chmod 755 "$TMP"
declare -A STARTED=()   # pid -> signal that stops it
declare -A ROOT=()      # server -> pid of its (master) process
cleanup() {
    local status=$? pid
    for pid in "${!STARTED[@]}"; do kill "-${STARTED[$pid]}" "$pid" 2>/dev/null || true; done
    for pid in "${!STARTED[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if ((KEEP)); then echo "tls.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    die "$3 is not listening on $1:$2"
}
port_free() { ! (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# --------------------------------------------------- CA and certificates --
say "the world's CA (mailflow ca --data) and a certificate for Dovecot signed by it"
DATA=$TMP/mailflow-data
"$MAILFLOW" ca --data "$DATA" -o "$TMP/ca.pem" >/dev/null
[[ -s $DATA/tls/ca-key.pem ]] || die "mailflow ca did not keep the CA's key in $DATA/tls"
mkdir -p "$TMP/dovecot-tls"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$NAME/O=dovecot for mailflow benches" \
    -keyout "$TMP/dovecot-tls/key.pem" -out "$TMP/dovecot-tls/req.pem" 2>/dev/null
printf 'subjectAltName=DNS:%s,IP:%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n' "$NAME" "${ADDR[dovecot]}" >"$TMP/dovecot-tls/ext.cnf"
openssl x509 -req -in "$TMP/dovecot-tls/req.pem" -CA "$DATA/tls/ca.pem" -CAkey "$DATA/tls/ca-key.pem" -CAcreateserial \
    -days 2 -extfile "$TMP/dovecot-tls/ext.cnf" -out "$TMP/dovecot-tls/cert.pem" 2>/dev/null
# Dovecot sends its certificate and the CA, as mailflow does.
cat "$TMP/dovecot-tls/cert.pem" "$DATA/tls/ca.pem" >"$TMP/dovecot-tls/chain.pem"
chmod 644 "$TMP/dovecot-tls/"*.pem

# ------------------------------------------------------------- the mail --
mkdir -p "$TMP/messages"
for ((m = 1; m <= MESSAGES; m++)); do
    {
        printf 'From: Sender <sender@elsewhere.test>\nTo: Readers <readers@bench.test>\n'
        printf 'Subject: Benchmark message %d\nDate: Mon, 01 Jan 2024 09:%02d:00 +0000\n' "$m" $((m % 60))
        printf 'Message-ID: <bench-%d@elsewhere.test>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n' "$m"
        printf 'Message %d of the TLS benchmark.\n.a line that starts with a dot\na3 OK a line that looks like a tagged reply\n' "$m"
        for ((l = 1; l <= 24; l++)); do
            printf 'Line %02d: the quick brown fox jumps over the lazy dog, twice over.\n' "$l"
        done
    } >"$TMP/messages/$m.eml"
done

# imaps_count ADDR USER: messages in USER's INBOX, asked over IMAPS with curl
# trusting the world's CA (so this also checks each server's certificate).
imaps_count() {
    curl -s --max-time 10 --cacert "$TMP/ca.pem" --resolve "$NAME:$IMAPS_PORT:$1" "imaps://$NAME:$IMAPS_PORT/" \
        --user "$2:$PASS" -X 'STATUS INBOX (MESSAGES)' | sed -n 's/.*MESSAGES \([0-9]*\).*/\1/p'
}

# ------------------------------------------------------------ Dovecot --
start_dovecot() {
    local addr=${ADDR[dovecot]} dir=$TMP/dovecot
    say "starting Dovecot $DOVECOT_VERSION on $addr (IMAP $IMAP_PORT, IMAPS $IMAPS_PORT), config in $dir"
    port_free "$addr" "$IMAP_PORT" && port_free "$addr" "$IMAPS_PORT" || die "something already listens on $addr (try NET=127.N)"
    mkdir -p "$dir/run" "$dir/state" "$dir/mail"
    local uid gid u m home
    uid=$(id -u dovecot) gid=$(id -g dovecot)
    : >"$dir/users"
    for ((u = 1; u <= USERS; u++)); do
        home=$dir/mail/reader$u
        echo "reader$u@bench.test:{PLAIN}$PASS::::$home::" >>"$dir/users"
        mkdir -p "$home/Maildir/cur" "$home/Maildir/new" "$home/Maildir/tmp"
        for ((m = 1; m <= MESSAGES; m++)); do
            cp "$TMP/messages/$m.eml" "$home/Maildir/cur/$((1704096000 + m)).M${m}P1.bench:2,"
        done
    done
    chown -R dovecot:dovecot "$dir/mail"
    local dh=
    [[ -r /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
    cat >"$dir/dovecot.conf" <<EOF
# A throwaway Dovecot for benches/tls.sh: loopback only, nothing from
# /etc/dovecot, Dovecot's default performance settings (one login process
# and one mail process per connection), TLS with Dovecot's default
# protocols and ciphers; the certificate is signed by the world's CA.
protocols = imap
listen = $addr
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
ssl = yes
ssl_cert = <$TMP/dovecot-tls/chain.pem
ssl_key = <$TMP/dovecot-tls/key.pem
$dh
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
    address = $addr
    port = $IMAPS_PORT
    ssl = yes
  }
}
EOF
    "${SERVER_CPU[@]}" dovecot -c "$dir/dovecot.conf" || { cat "$dir/dovecot.log" >&2 2>/dev/null; die "Dovecot did not start"; }
    for _ in $(seq 50); do [[ -s $dir/run/master.pid ]] && break; sleep 0.1; done
    local pid
    pid=$(cat "$dir/run/master.pid")
    STARTED[$pid]=TERM
    ROOT[dovecot]=$pid
    wait_port "$addr" "$IMAPS_PORT" "Dovecot IMAPS"
    for ((u = 1; u <= USERS; u++)); do
        m=$(imaps_count "$addr" "reader$u@bench.test")
        [[ $m == "$MESSAGES" ]] || die "Dovecot: reader$u has '$m' messages over IMAPS, expected $MESSAGES (see $dir/dovecot.log; KEEP=1 keeps it)"
    done
}

# ----------------------------------------------------------- mailflow --
start_mailflow() {
    local addr=${ADDR[mailflow]}
    say "starting mailflow on $addr (SMTP $SMTP_PORT, IMAP $IMAP_PORT, IMAPS $IMAPS_PORT), --data $DATA"
    port_free "$addr" "$SMTP_PORT" || die "something already listens on $addr:$SMTP_PORT (try NET=127.N)"
    "${SERVER_CPU[@]}" "$MAILFLOW" serve "$REPO/benches/tls-world.json" --fast --quiet --subnet "${addr%.*}.0/24" --data "$DATA" \
        >"$TMP/mailflow.out" 2>"$TMP/mailflow.err" &
    STARTED[$!]=INT
    ROOT[mailflow]=$!
    wait_port "$addr" "$SMTP_PORT" "mailflow SMTP"
    wait_port "$addr" "$IMAPS_PORT" "mailflow IMAPS"
    local rcpts=() m u
    for ((u = 1; u <= USERS; u++)); do rcpts+=(--mail-rcpt "reader$u@bench.test"); done
    for ((m = 1; m <= MESSAGES; m++)); do
        curl -s --max-time 10 --crlf "smtp://$addr:$SMTP_PORT/bench.client" \
            --mail-from sender@elsewhere.test "${rcpts[@]}" --upload-file "$TMP/messages/$m.eml" \
            || die "mailflow did not accept message $m over SMTP (see $TMP/mailflow.err; KEEP=1 keeps it)"
    done
    for ((u = 1; u <= USERS; u++)); do
        m=$(imaps_count "$addr" "reader$u@bench.test")
        [[ $m == "$MESSAGES" ]] || die "mailflow: reader$u has '$m' messages over IMAPS, expected $MESSAGES"
    done
}

# A second mailflow, mailboxes in memory, for the SMTP rows. Without --data
# its CA is made at start and kept nowhere, so the load generator's trust
# anchor is the CA certificate this server sends after its own (checked to
# be self-signed and to be the mailflow world CA); the client still checks
# the chain and the name mx.bench.test on every connection.
MEM_STARTS=0
start_mailflow_mem() {
    MEM_STARTS=$((MEM_STARTS + 1))
    ADDR[mailflow-mem]=$NET.$((10 + MEM_STARTS)).2
    local addr=${ADDR[mailflow-mem]}
    rm -f "$TMP/mailflow-mem-report.json"
    say "starting mailflow-mem on $addr (SMTP $SMTP_PORT, mailboxes in memory)"
    port_free "$addr" "$SMTP_PORT" || die "something already listens on $addr:$SMTP_PORT (try NET=127.N)"
    "${SERVER_CPU[@]}" "$MAILFLOW" serve "$REPO/benches/tls-world.json" --fast --quiet --subnet "${addr%.*}.0/24" \
        --report "$TMP/mailflow-mem-report.json" >"$TMP/mailflow-mem.out" 2>"$TMP/mailflow-mem.err" &
    STARTED[$!]=INT
    ROOT[mailflow-mem]=$!
    wait_port "$addr" "$SMTP_PORT" "mailflow-mem SMTP"
    openssl s_client -starttls smtp -connect "$addr:$SMTP_PORT" -showcerts </dev/null 2>/dev/null \
        | awk '/BEGIN CERTIFICATE/ { cert = "" } { cert = cert $0 "\n" } /END CERTIFICATE/ { last = cert } END { printf "%s", last }' \
        | sed '/^$/d' >"$TMP/ca-mem.pem"
    openssl verify -CAfile "$TMP/ca-mem.pem" "$TMP/ca-mem.pem" >/dev/null 2>&1 \
        && openssl x509 -in "$TMP/ca-mem.pem" -noout -subject | grep -q 'mailflow' \
        || die "mailflow-mem did not send a self-signed mailflow CA after its certificate (see $TMP/ca-mem.pem)"
}

# stop_mailflow_mem ALL_MESSAGES: stops mailflow-mem (SIGINT, as Ctrl-C) and
# checks its --report: ALL_MESSAGES (the load generator's count of 250s,
# warm-up included) must all be stored.
stop_mailflow_mem() {
    local pid=${ROOT[mailflow-mem]} stored
    kill -INT "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    unset "STARTED[$pid]"
    [[ -s $TMP/mailflow-mem-report.json ]] || die "mailflow-mem wrote no --report (see $TMP/mailflow-mem.err; KEEP=1 keeps it)"
    stored=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["stored_messages"])' "$TMP/mailflow-mem-report.json")
    STORED=$((STORED + stored))
    ACCEPTED=$((ACCEPTED + $1))
    ((stored == $1)) || echo "  [mailflow-mem] MISSING MAIL: $stored messages stored of the $1 accepted" >&2
}
STORED=0
ACCEPTED=0

start_sink() {
    local addr=${ADDR[smtp-sink]}
    say "starting smtp-sink on $addr:$SMTP_PORT (plaintext: it has no TLS)"
    port_free "$addr" "$SMTP_PORT" || die "something already listens on $addr:$SMTP_PORT (try NET=127.N)"
    "${SERVER_CPU[@]}" "$SINK" -u nobody "$addr:$SMTP_PORT" 1000 &
    STARTED[$!]=TERM
    ROOT[smtp-sink]=$!
    wait_port "$addr" "$SMTP_PORT" smtp-sink
}

# --------------------------------------------------------------- runs --
CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID: CPU time (clock ticks) of PID, its live children and the
# children it has reaped: for Dovecot all its processes (see retrieval.sh).
cpu_ticks() {
    local root=$1 sum=0 stat pid fields
    for stat in /proc/[0-9]*/stat; do
        pid=${stat#/proc/}
        pid=${pid%/stat}
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

field() {
    local kv
    for kv in $2; do
        [[ $kv == "$1="* ]] && { echo "${kv#*=}"; return; }
    done
    echo 0
}

declare -A RESULTS   # "row server" -> newline-separated RESULT lines

# run_row ROW SERVER: one run of the load generator.
run_row() {
    [[ $2 == mailflow-mem ]] && start_mailflow_mem
    local row=$1 server=$2 addr=${ADDR[$2]} args
    case $row in
        handshake) args=(handshake --addr "$addr:$IMAPS_PORT") ;;
        imaps) args=(imaps --addr "$addr:$IMAPS_PORT" --user 'reader{i}@bench.test' --pass "$PASS") ;;
        imap) args=(imap --addr "$addr:$IMAP_PORT" --user 'reader{i}@bench.test' --pass "$PASS") ;;
        smtp) args=(smtp --addr "$addr:$SMTP_PORT" --messages "$SMTP_MESSAGES" --size "$SIZE") ;;
        smtp-plain) args=(smtp --plain --addr "$addr:$SMTP_PORT" --messages "$SMTP_MESSAGES" --size "$SIZE") ;;
    esac
    local load before after out line
    load=$(cut -d' ' -f1 /proc/loadavg)
    before=$(cpu_ticks "${ROOT[$server]}")
    local ca=$TMP/ca.pem
    [[ $server == mailflow-mem ]] && ca=$TMP/ca-mem.pem
    out=$("${LOAD_CPU[@]}" "$TLSLOAD" "${args[@]}" --ca "$ca" --name "$NAME" \
        --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" 2>/dev/null)
    after=$(cpu_ticks "${ROOT[$server]}")
    grep -v '^RESULT' <<<"$out" | sed "s/^/  [$server] /" >&2
    line=$(grep '^RESULT' <<<"$out") || die "the load generator printed no RESULT line"
    line+=" server_cpu_ms_per_session=$(awk -v t=$((after - before)) -v h="$CLK_TCK" -v n="$(field all_sessions "$line")" 'BEGIN { printf "%.3f", n ? t * 1000 / h / n : 0 }')"
    line+=" load=$load"
    [[ $server == mailflow-mem ]] && stop_mailflow_mem "$(field all_messages "$line")"
    RESULTS["$row $server"]+="$line"$'\n'
}

# The RESULT line with the median sessions/s among a row's rounds.
median_line() {
    local lines=$1 count
    count=$(grep -c . <<<"$lines")
    grep . <<<"$lines" | while read -r l; do echo "$(field sessions_per_s "$l") $l"; done \
        | sort -n -k1,1 | sed -n "$(((count + 1) / 2))p" | cut -d' ' -f2-
}

total_errors() {
    local sum=0 l
    while read -r l; do [[ -n $l ]] && sum=$((sum + $(field errors "$l"))); done <<<"$1"
    echo "$sum"
}

start_dovecot
start_mailflow
[[ -n $SINK ]] && start_sink

# row -> servers measured in it
declare -A SERVERS=([handshake]="dovecot mailflow" [imaps]="dovecot mailflow" [imap]="dovecot mailflow" [smtp]="mailflow-mem" [smtp-plain]="mailflow-mem")
[[ -n $SINK ]] && SERVERS[smtp-plain]="smtp-sink mailflow-mem"
ROWS=(handshake imaps imap smtp smtp-plain)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "measuring: $CLIENTS clients, $SECONDS_PER_RUN s (+$WARMUP s warm-up) per run, $ROUNDS rounds; server on ${SERVER_CPU[*]:-any core}, load on ${LOAD_CPU[*]:-any core}; load average $LOAD_BEFORE"
for ((r = 1; r <= ROUNDS; r++)); do
    for row in "${ROWS[@]}"; do
        read -r -a order <<<"${SERVERS[$row]}"
        # Every other round the other order, so drift does not favour one.
        if ((r % 2 == 0)); then
            read -r -a order <<<"$(printf '%s\n' "${order[@]}" | tac | tr '\n' ' ')"
        fi
        for server in "${order[@]}"; do
            echo "round $r/$ROUNDS: $row $server (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
            run_row "$row" "$server"
        done
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# -------------------------------------------------------------- table --
echo
echo "TLS benchmark $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $LOAD_BEFORE before / $LOAD_AFTER after"
echo "$CLIENTS clients, $SECONDS_PER_RUN s per run (+$WARMUP s warm-up), median of $ROUNDS rounds; Dovecot $DOVECOT_VERSION; $MESSAGES messages per IMAP reader; SMTP: $SMTP_MESSAGES x $SIZE bytes per session"
printf '%-10s %-12s %10s %10s %7s %8s %8s %12s %6s  %s\n' row server sessions/s msgs/s errors "p50 ms" "p95 ms" "CPU ms/sess" load "TLS (version/suite/group)"
for row in "${ROWS[@]}"; do
    for server in ${SERVERS[$row]}; do
        lines=${RESULTS["$row $server"]}
        line=$(median_line "$lines")
        printf '%-10s %-12s %10s %10s %7s %8.2f %8.2f %12.3f %6s  %s\n' "$row" "$server" \
            "$(field sessions_per_s "$line")" "$(field messages_per_s "$line")" "$(total_errors "$lines")" \
            "$(field p50_ms "$line")" "$(field p95_ms "$line")" "$(field server_cpu_ms_per_session "$line")" \
            "$(field load "$line")" "$(field tls "$line")"
    done
done
echo
ratio() {
    local a b
    a=$(field "$3" "$(median_line "${RESULTS["$1 ${4:-mailflow}"]}")")
    b=$(field "$3" "$(median_line "${RESULTS["$1 $2"]}")")
    awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'
}
cpu_ratio() {
    local a b
    a=$(field server_cpu_ms_per_session "$(median_line "${RESULTS["$1 mailflow"]}")")
    b=$(field server_cpu_ms_per_session "$(median_line "${RESULTS["$1 $2"]}")")
    awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "inf" }'
}
for row in handshake imaps imap; do
    echo "ratio $row sessions/s mailflow / dovecot: $(ratio "$row" dovecot sessions_per_s)x (server CPU per session: $(cpu_ratio "$row" dovecot)x less)"
done
imaps_ratio=$(ratio imaps dovecot sessions_per_s)
imaps_errors=$(total_errors "${RESULTS["imaps mailflow"]}")
verdict=$(awk -v r="$imaps_ratio" -v e="$imaps_errors" 'BEGIN { print (r != "inf" && r >= 3 && e == 0) ? "met" : "NOT met" }')
echo "target (IMAPS sessions/s mailflow >= 3x Dovecot, 0 errors): $verdict"
smtp_tls=$(field messages_per_s "$(median_line "${RESULTS["smtp mailflow-mem"]}")")
smtp_plain=$(field messages_per_s "$(median_line "${RESULTS["smtp-plain mailflow-mem"]}")")
echo "smtp: mailflow-mem stored $STORED messages of the $ACCEPTED it accepted (250) in all SMTP runs$( ((STORED == ACCEPTED)) && echo ": all" || echo ": MISSING SOME")"
echo "smtp: mailflow with STARTTLS / mailflow plaintext, messages/s: $(awk -v a="$smtp_tls" -v b="$smtp_plain" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')x"
if [[ -n $SINK ]]; then
    sink=$(field messages_per_s "$(median_line "${RESULTS["smtp-plain smtp-sink"]}")")
    echo "smtp: mailflow with STARTTLS / smtp-sink plaintext, messages/s: $(awk -v a="$smtp_tls" -v b="$sink" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')x; mailflow plaintext / smtp-sink plaintext: $(ratio smtp-plain smtp-sink messages_per_s mailflow-mem)x"
fi
