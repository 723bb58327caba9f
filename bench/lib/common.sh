# shellcheck shell=bash
# bench/lib/common.sh: settings and helpers shared by the benchmark scripts (sourced, not run).
#
# Every server listens on 127.0.0.1 in the 26000-26999 range; every process the benchmark
# starts is recorded in $RUN/pids/NAME (its process group: it is started under setsid) and
# stopped by that id only (stop_one / stop_all).

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
ROOT=${ROOT:-$(cd "$BENCH_DIR/.." && pwd)}
RUN=${BENCH_RUN:-/tmp/ferrymail-bench-run}
SMTP_SOURCE=${SMTP_SOURCE:-/usr/sbin/smtp-source}
SMTP_SINK=${SMTP_SINK:-/usr/sbin/smtp-sink}
TSX="$ROOT/node_modules/.bin/tsx"

# ports (fixed, loopback only)
P_CEILING=26001     # smtp-sink as a receiver: the ceiling of smtp-source + loopback
P_NEXTHOP=26100     # smtp-sink as the next hop of relays (started per run, counts messages)
P_QUIET=26101       # smtp-sink as the next hop of ferrymail's accept-run mail (always up, not counted)
P_PF_MTA=26010      # Postfix smtpd -> queue -> relay to P_NEXTHOP, or virtual(8) Maildir for bench.test
P_PF_HOLD=26011     # Postfix smtpd -> queue -> hold (durable accept, no delivery)
P_HARAKA_HOLD=26020 # Haraka outbound queue (fsync per message), delivery paused
P_HARAKA_MTA=26021  # Haraka outbound queue (fsync per message), delivering to P_NEXTHOP
P_SS=26030          # nodemailer smtp-server, fsync then 250
P_FERRY=26040       # ferrymail: queue, then delivers (relay and local runs)
P_FERRY_HOLD=26041  # ferrymail with [queue] hold = true (durable accept, no delivery; like Postfix's hold)

FROM_ADDR=bench@sender.test
REMOTE_RCPT=user@example.net   # relay runs: routed to P_NEXTHOP by every MTA
ACCEPT_RCPT=user@accept.test   # accept and latency runs (held by Postfix and Haraka; ferrymail -> P_QUIET)
LOCAL_RCPT=user@bench.test     # delivered into a local Maildir
MSG_LEN=${BENCH_MSG_LEN:-4096}

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_port PORT [SECONDS]: until something accepts connections on 127.0.0.1:PORT
wait_port() {
  local port=$1 t=${2:-30} i
  for ((i = 0; i < t * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# wait_port_free PORT [SECONDS]: until nothing listens on 127.0.0.1:PORT
wait_port_free() {
  local port=$1 t=${2:-15} i
  for ((i = 0; i < t * 10; i++)); do
    ss -Hltn "sport = :$port" 2>/dev/null | grep -q . || return 0
    sleep 0.1
  done
  return 1
}

# port_taken PORT: true when something already listens there (not ours: refuse to run)
port_taken() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# start_bg NAME LOGFILE CMD...: run CMD in its own session (process group), remember its pid
start_bg() {
  local name=$1 logf=$2; shift 2
  mkdir -p "$RUN/pids"
  setsid "$@" > "$logf" 2>&1 < /dev/null &
  echo $! > "$RUN/pids/$name"
}

# stop_one NAME: TERM the process group we started under NAME, KILL it after 5 s
stop_one() {
  local f="$RUN/pids/$1" pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f"); rm -f "$f"
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  return 0
}

pid_of() { cat "$RUN/pids/$1" 2>/dev/null; }

# now: seconds since the epoch with nanoseconds
now() { date +%s.%N; }
# fdiv A B [SCALE]: A / B as a decimal
fdiv() { awk -v a="$1" -v b="$2" -v s="${3:-1}" 'BEGIN { if (b == 0) print 0; else printf "%.*f\n", s, a / b }'; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a - b }'; }
load1() { cut -d' ' -f1 /proc/loadavg; }
