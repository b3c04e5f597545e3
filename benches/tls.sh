#!/usr/bin/env bash
# The TLS benchmark (issue 10): TLS handshakes per second and IMAPS
# sessions per second of mailflow and of Dovecot with TLS, measured in the
# same run with the same clients, and the ratio mailflow/Dovecot.
#
#   sudo benches/tls.sh                                  # defaults below
#   sudo benches/tls.sh --clients 4 --seconds 10 --rounds 3
#
# What it does (see benches/README-tls.md):
#  1. starts `mailflow serve` on a world whose mail host serves IMAP and
#     IMAPS (port 10993), with --data in a mktemp -d folder, and saves the
#     world's CA with `mailflow ca --data DIR -o ca.pem` (as the banner says);
#  2. starts a throwaway Dovecot (config written under the same folder,
#     never /etc/dovecot) with `ssl = required` and IMAPS on 10993, with a
#     certificate made by openssl: the same key type as mailflow's (ECDSA
#     P-256), valid for its address;
#  3. gives each of the ten readers the same messages (SMTP for mailflow,
#     Maildir files for Dovecot);
#  4. measures, `--rounds` times in alternating order, each server pinned to
#     core 0 and the clients to core 1 (taskset), the medians printed:
#     - handshakes/s: `--clients` parallel `openssl s_time -new` (a full
#       TLS handshake per connection, certificate checked against the CA);
#     - IMAPS sessions/s: `--clients` parallel Python processes, each in a
#       loop: connect, TLS handshake (IMAP4_SSL, CA checked), LOGIN,
#       SELECT INBOX, FETCH 1 BODY[], LOGOUT.
#
# Everything listens on loopback only; everything it starts is stopped by
# its process id when the script ends, and the temporary folder is removed.
set -euo pipefail

CLIENTS=4
SECONDS_PER_RUN=10
ROUNDS=3
MESSAGES=5
USERS=10
NET=127.67           # mailflow: 127.67.0.0/24 (mx at .2), Dovecot: 127.67.1.2
PASS=bench-secret
KEEP=0

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "tls.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

while (($#)); do
    case $1 in
        --clients) CLIENTS=$2; shift 2 ;;
        --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --net) NET=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
MAILFLOW=${MAILFLOW:-$REPO/target/release/mailflow}
[[ -x $MAILFLOW ]] || die "build mailflow first: cargo build --release (or set MAILFLOW=path)"
command -v dovecot >/dev/null || die "Dovecot is missing: apt-get install dovecot-imapd"
command -v openssl >/dev/null || die "openssl is missing"
((EUID == 0)) || die "run as root (Dovecot switches users)"
MF_ADDR=$NET.0.2 DC_ADDR=$NET.1.2 IMAP_PORT=10143 IMAPS_PORT=10993 SMTP_PORT=10025
CORES=$(nproc)
if ((CORES >= 2)) && command -v taskset >/dev/null; then
    SERVER_CPU=(taskset -c 0) CLIENT_CPU=(taskset -c 1)
else
    SERVER_CPU=() CLIENT_CPU=()
fi

TMP=$(mktemp -d /tmp/mailflow-tls.XXXXXX)
chmod 755 "$TMP"
declare -A STARTED=()
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

# ------------------------------------------------------------- the mail --
mkdir -p "$TMP/messages"
for ((m = 1; m <= MESSAGES; m++)); do
    {
        printf 'From: sender@elsewhere.test\r\nTo: readers@bench.test\r\nSubject: TLS bench %d\r\n' "$m"
        printf 'Message-ID: <tls-bench-%d@elsewhere.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n' "$m"
        for ((l = 1; l <= 30; l++)); do printf 'Line %02d of message %d, about sixty bytes of ordinary text.\r\n' "$l" "$m"; done
    } >"$TMP/messages/$m.eml"
done

# ----------------------------------------------------------- mailflow --
port_free "$MF_ADDR" "$SMTP_PORT" || die "something already listens on $MF_ADDR:$SMTP_PORT (try --net)"
python3 - "$REPO/benches/retrieval-world.json" "$TMP/tls-world.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
s["title"] = "TLS benchmark world"
s["hosts"]["mx.bench.test"]["services"] = ["smtp", "imap", "imaps"]
json.dump(s, open(sys.argv[2], "w"), indent=2)
EOF
say "starting mailflow on $MF_ADDR (IMAPS $IMAPS_PORT)"
"${SERVER_CPU[@]}" "$MAILFLOW" serve "$TMP/tls-world.json" --fast --quiet --no-web --subnet "$NET.0.0/24" --data "$TMP/mailflow-data" \
    >"$TMP/mailflow.out" 2>"$TMP/mailflow.err" &
STARTED[$!]=INT
wait_port "$MF_ADDR" "$IMAPS_PORT" "mailflow IMAPS"
"$MAILFLOW" ca --data "$TMP/mailflow-data" -o "$TMP/mailflow-ca.pem"
rcpts=()
for ((u = 1; u <= USERS; u++)); do rcpts+=(--mail-rcpt "reader$u@bench.test"); done
for ((m = 1; m <= MESSAGES; m++)); do
    curl -s --max-time 10 "smtp://$MF_ADDR:$SMTP_PORT/bench.client" --mail-from sender@elsewhere.test "${rcpts[@]}" \
        --upload-file "$TMP/messages/$m.eml" || die "mailflow did not accept message $m"
done

# ------------------------------------------------------------ Dovecot --
say "starting Dovecot $(dovecot --version | cut -d' ' -f1) on $DC_ADDR (IMAPS $IMAPS_PORT, ssl = required)"
port_free "$DC_ADDR" "$IMAPS_PORT" || die "something already listens on $DC_ADDR:$IMAPS_PORT (try --net)"
DC=$TMP/dovecot
mkdir -p "$DC/run" "$DC/state" "$DC/mail"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=dovecot.bench.test/O=tls.sh" \
    -addext "subjectAltName=IP:$DC_ADDR,DNS:dovecot.bench.test" -keyout "$DC/key.pem" -out "$DC/cert.pem" 2>/dev/null
cp "$DC/cert.pem" "$TMP/dovecot-ca.pem"
uid=$(id -u dovecot) gid=$(id -g dovecot)
: >"$DC/users"
for ((u = 1; u <= USERS; u++)); do
    home=$DC/mail/reader$u
    echo "reader$u@bench.test:{PLAIN}$PASS::::$home::" >>"$DC/users"
    mkdir -p "$home/Maildir/cur" "$home/Maildir/new" "$home/Maildir/tmp"
    for ((m = 1; m <= MESSAGES; m++)); do cp "$TMP/messages/$m.eml" "$home/Maildir/cur/$((1704096000 + m)).M${m}P1.bench:2,S"; done
done
chown -R dovecot:dovecot "$DC/mail"
cat >"$DC/dovecot.conf" <<EOF
# A throwaway Dovecot for benches/tls.sh: loopback only, TLS required,
# nothing from /etc/dovecot; performance settings are Dovecot's defaults.
protocols = imap
listen = $DC_ADDR
base_dir = $DC/run
state_dir = $DC/state
log_path = $DC/dovecot.log
info_log_path = $DC/dovecot.log
ssl = required
ssl_cert = <$DC/cert.pem
ssl_key = <$DC/key.pem
ssl_min_protocol = TLSv1.2
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
  args = scheme=PLAIN username_format=%u $DC/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC/users
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = $DC_ADDR
    port = $IMAPS_PORT
  }
}
EOF
"${SERVER_CPU[@]}" dovecot -c "$DC/dovecot.conf" || { cat "$DC/dovecot.log" >&2 2>/dev/null; die "Dovecot did not start"; }
for _ in $(seq 50); do [[ -s $DC/run/master.pid ]] && break; sleep 0.1; done
STARTED[$(cat "$DC/run/master.pid")]=TERM
wait_port "$DC_ADDR" "$IMAPS_PORT" "Dovecot IMAPS"

# ------------------------------------------------------------ clients --
# handshakes ADDR CA: full handshakes per second, CLIENTS s_time in parallel.
handshakes() {
    local addr=$1 ca=$2 i total=0 n t
    for ((i = 0; i < CLIENTS; i++)); do
        "${CLIENT_CPU[@]}" openssl s_time -connect "$addr:$IMAPS_PORT" -new -time "$SECONDS_PER_RUN" -CAfile "$ca" -verify 1 \
            >"$TMP/s_time.$i" 2>&1 &
    done
    wait
    for ((i = 0; i < CLIENTS; i++)); do
        # "1234 connections in 10 real seconds, ..."
        read -r n t < <(sed -n 's/^\([0-9]*\) connections in \([0-9.]*\) real seconds.*/\1 \2/p' "$TMP/s_time.$i" | head -1)
        [[ -n ${n:-} ]] || { cat "$TMP/s_time.$i" >&2; die "openssl s_time failed against $addr"; }
        total=$(python3 -c "print($total + $n / max($t, 1e-9))")
    done
    printf '%.0f' "$total"
}

# sessions ADDR CA: IMAPS sessions (handshake, LOGIN, SELECT, FETCH, LOGOUT) per second.
sessions() {
    "${CLIENT_CPU[@]}" python3 - "$1" "$IMAPS_PORT" "$2" "$CLIENTS" "$SECONDS_PER_RUN" "$USERS" "$PASS" <<'EOF'
import imaplib, multiprocessing, ssl, sys, time
host, port, ca, clients, seconds, users, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), sys.argv[7]

def worker(i):
    ctx = ssl.create_default_context(cafile=ca)
    user = f"reader{i % users + 1}@bench.test"
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        imap = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)
        imap.login(user, password)
        typ, _ = imap.select("INBOX")
        typ, data = imap.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK" and b"TLS bench" in data[0][1], data
        imap.logout()
        done += 1
    return done

with multiprocessing.Pool(clients) as pool:
    start = time.monotonic()
    total = sum(pool.map(worker, range(clients)))
    print(round(total / (time.monotonic() - start)))
EOF
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

say "each run: $CLIENTS clients for ${SECONDS_PER_RUN}s; $ROUNDS rounds, alternating"
MF_H=() DC_H=() MF_S=() DC_S=()
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        MF_H+=("$(handshakes "$MF_ADDR" "$TMP/mailflow-ca.pem")"); DC_H+=("$(handshakes "$DC_ADDR" "$TMP/dovecot-ca.pem")")
        MF_S+=("$(sessions "$MF_ADDR" "$TMP/mailflow-ca.pem")"); DC_S+=("$(sessions "$DC_ADDR" "$TMP/dovecot-ca.pem")")
    else
        DC_H+=("$(handshakes "$DC_ADDR" "$TMP/dovecot-ca.pem")"); MF_H+=("$(handshakes "$MF_ADDR" "$TMP/mailflow-ca.pem")")
        DC_S+=("$(sessions "$DC_ADDR" "$TMP/dovecot-ca.pem")"); MF_S+=("$(sessions "$MF_ADDR" "$TMP/mailflow-ca.pem")")
    fi
    say "round $r: handshakes/s mailflow ${MF_H[-1]}, Dovecot ${DC_H[-1]}; IMAPS sessions/s mailflow ${MF_S[-1]}, Dovecot ${DC_S[-1]}"
done

mh=$(median "${MF_H[@]}") dh=$(median "${DC_H[@]}") ms=$(median "${MF_S[@]}") ds=$(median "${DC_S[@]}")
ratio() { python3 -c "print(f'{$1 / max($2, 1):.2f}')"; }
printf '\n%-28s %10s %10s %8s\n' "median of $ROUNDS rounds" mailflow Dovecot ratio
printf '%-28s %10s %10s %8s\n' "TLS handshakes/s" "$mh" "$dh" "$(ratio "$mh" "$dh")"
printf '%-28s %10s %10s %8s\n' "IMAPS sessions/s" "$ms" "$ds" "$(ratio "$ms" "$ds")"
