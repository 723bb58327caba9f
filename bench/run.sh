#!/usr/bin/env bash
# bench/run.sh: `npm run bench`. Installs the peers, builds ferrymail, runs every measurement
# interleaved (server order rotates every round) on loopback, and writes BENCHMARKS.md, the
# plots in bench/plots/ and the raw results in bench/results/. See bench/README.md.
#
# Env: BENCH_QUICK=1 (small counts, one round: a few minutes), BENCH_ROUNDS, BENCH_WARMUP (2000
#   messages per server and kind before the first round), BENCH_CS ("1 20 100"),
#   BENCH_RS ("1 10"), BENCH_KINDS ("accept relay local"), BENCH_MODES ("conn", full: "conn reuse"),
#   BENCH_SERVERS (default: all), BENCH_MEM_NS ("1000 10000"), BENCH_SKIP ("latency mem core disk"),
#   BENCH_NO_REPORT=1 (keep BENCHMARKS.md as it is), BENCH_RUN (scratch, /tmp/ferrymail-bench-run),
#   FERRY_EXTRA_TOML (appended to ferrymail's config).
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
for f in common postfix haraka smtp-server sink ferrymail measure; do
  # shellcheck source=/dev/null
  source "$BENCH_DIR/lib/$f.sh"
done

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  ROUNDS=${BENCH_ROUNDS:-1}; M_C1=200; M_C20=1000; M_C100=2000; LAT_N=${BENCH_LAT_N:-500}
  MODES=${BENCH_MODES:-conn}
else
  ROUNDS=${BENCH_ROUNDS:-3}; M_C1=500; M_C20=2000; M_C100=3000; LAT_N=${BENCH_LAT_N:-2000}
  MODES=${BENCH_MODES:-conn reuse}
fi
CS=${BENCH_CS:-1 20 100}
RS=${BENCH_RS:-1 10}
KINDS=${BENCH_KINDS:-accept relay local}
SERVERS=${BENCH_SERVERS:-sink postfix haraka smtp-server ferrymail}
MEM_NS=${BENCH_MEM_NS:-1000 10000}
SKIP=${BENCH_SKIP:-}
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }
skipped() { has "$SKIP" "$1"; }

# ---- cleanup: everything we started, by the pids we recorded, and our Postfix instance ----
cleanup() {
  local n
  for n in nexthop sink quietsink smtp-server haraka-hold haraka-mta ferrymail ferrymail-hold; do stop_one "$n"; done
  pf_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- installs: Postfix (smtp-source, smtp-sink, the peer), Haraka, smtp-server, ferrymail ----
install_postfix() {
  [ -x "$SMTP_SOURCE" ] && [ -x "$SMTP_SINK" ] && command -v postconf > /dev/null && return 0
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  local was_running=0; pgrep -x master > /dev/null && was_running=1
  log "installing postfix from apt (for smtp-source, smtp-sink and the Postfix peer)"
  echo "postfix postfix/main_mailer_type select Local only" | $sudo debconf-set-selections
  echo "postfix postfix/mailname string localhost" | $sudo debconf-set-selections
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postfix > /dev/null ||
    die "apt-get install postfix failed"
  # the package starts the system instance on port 25: we do not want it (we run our own)
  if [ "$was_running" = 0 ] && $sudo postfix status > /dev/null 2>&1; then $sudo postfix stop > /dev/null 2>&1; fi
  return 0
}

check_ports() {
  local p
  for p in $P_CEILING $P_NEXTHOP $P_PF_MTA $P_PF_HOLD $P_HARAKA_HOLD $P_HARAKA_MTA $P_SS $P_FERRY $P_FERRY_HOLD; do
    port_taken "$p" && die "port $p is already in use (another benchmark running?)"
  done
  return 0
}

[ "$(id -u)" = 0 ] || die "run as root: Postfix's own instance and smtp-sink -u need it"
install_postfix
[ -x "$TSX" ] || (cd "$ROOT" && npm ci --no-audit --no-fund) || die "npm ci failed"
hk_install
ss_install
log "building ferrymail (npm run build)"
mkdir -p "$RUN/logs"
(cd "$ROOT" && npm run build) > "$RUN/logs/build.log" 2>&1 || log "npm run build reported errors (see $RUN/logs/build.log)"
if has "$SERVERS" ferrymail && ! ferrymail_ready; then
  log "ferrymail is not runnable yet ($FERRY_MAIN serve): measured without it"
  SERVERS=$(echo " $SERVERS " | sed 's/ ferrymail / /; s/^ //; s/ $//')
fi

ulimit -n "$(ulimit -Hn)" 2> /dev/null
[ "$(ulimit -n)" -ge 20000 ] 2> /dev/null || ulimit -n 20000 2> /dev/null ||
  log "ulimit -n is $(ulimit -n): the 10,000-connection test will be limited by it"

check_ports
csv_init
log "starting the servers (scratch: $RUN)"
pf_setup; pf_start
hk_setup
ss_start
sink_start
quiet_start
hk_start mta "$P_HARAKA_MTA"
fm_config
if has "$SERVERS" ferrymail; then
  fm_start || die "ferrymail did not start (see $FM/serve.log)"
  fmh_start || die "ferrymail (hold) did not start (see $FMH/serve.log)"
fi

# the disk under every durable queue, before and after (a shared machine's disk drifts)
disk_probe() {
  skipped disk && return 0
  "$TSX" "$BENCH_DIR/tools/fsync.ts" "$RUN" 300 2> /dev/null |
    sed "s/^{/{\"when\":\"$1\",/" >> "$RES/fsync.jsonl"
  log "disk ($1): $(tail -1 "$RES/fsync.jsonl" 2> /dev/null)"
}
disk_probe start

# takes_part KIND SERVER: whether SERVER has something to measure in KIND
takes_part() {
  case "$1:$2" in
    relay:sink | relay:smtp-server | local:sink | local:smtp-server | local:haraka | mem:sink) return 1 ;;
  esac
  return 0
}

# servers_for KIND ROUND: the servers that take part, rotated by ROUND so that drifts of a
# shared machine's load spread over all of them
servers_for() {
  local kind=$1 round=$2 list="" s
  for s in $SERVERS; do takes_part "$kind" "$s" && list="$list $s"; done
  read -r -a arr <<< "$list"
  local n=${#arr[@]} i
  for ((i = 0; i < n; i++)); do echo "${arr[$(((i + round - 1) % n))]}"; done
}

# warm-up, not recorded: JIT compilers, caches, the first Maildirs. 200 messages left V8's
# optimising compiler short of the hot paths (ferrymail accepted 40% faster after a few thousand
# messages than after 200), so the Node servers ran their first rounds cold; Postfix, in C, needs none.
WARMUP=${BENCH_WARMUP:-2000}
log "warm-up ($WARMUP messages per server and kind, not recorded)"
(
  M_C20=$WARMUP OUT_CSV=$RES/warmup.csv MODE=conn
  for s in $SERVERS; do
    for kind in accept relay local; do takes_part "$kind" "$s" && throughput_run 0 "$kind" "$s" 20 1; done
  done
) 2> "$RUN/logs/warmup.log"

for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round/$ROUNDS"
  for MODE in $MODES; do
    for kind in $KINDS; do
      [ "$MODE" = reuse ] && [ "$kind" != accept ] && continue
      for R in $RS; do
        for C in $CS; do
          for s in $(servers_for "$kind" "$round"); do throughput_run "$round" "$kind" "$s" "$C" "$R"; done
        done
      done
    done
  done
  if ! skipped latency; then
    MODE=conn
    # postfix-relay: Postfix on its relaying port (accept.test goes on to the quiet sink), the
    # same work as ferrymail's; "postfix" is its hold queue
    lat_servers=$(servers_for latency "$round")
    has "$SERVERS" postfix && lat_servers="$lat_servers postfix-relay"
    for s in $lat_servers; do latency_run "$round" "$s"; done
  fi
done

disk_probe end

if ! skipped mem; then
  log "memory with idle sessions"
  for N in $MEM_NS; do
    for s in $(servers_for mem 1); do
      # Postfix runs one smtpd process per session (about 1 MiB PSS each): 10,000 would need
      # ~12 GiB and a process limit of 10,000; it is measured at 1,000 only
      [ "$s" = postfix ] && [ "$N" -gt 1000 ] && continue
      mem_run "$s" "$N"
    done
  done
fi

if ! skipped core; then
  log "protocol core micro-benchmark (bench/core.ts)"
  core_args=(); [ "$QUICK" = 1 ] && core_args=(--quick)
  "$TSX" "$BENCH_DIR/core.ts" "${core_args[@]}" > "$RES/core.json" 2> "$RUN/logs/core.err" ||
    log "core.ts did not run: $(tail -c 300 "$RUN/logs/core.err")"
fi

cleanup
FINISHED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat > "$RES/meta.json" << EOF
{
  "command": "$( [ "$QUICK" = 1 ] && echo "BENCH_QUICK=1 ")$( [ -n "${BENCH_ROUNDS:-}" ] && echo "BENCH_ROUNDS=$BENCH_ROUNDS ")npm run bench",
  "started": "$STARTED",
  "finished": "$FINISHED",
  "quick": $( [ "$QUICK" = 1 ] && echo true || echo false),
  "rounds": $ROUNDS,
  "modes": "$MODES",
  "msg_len": $MSG_LEN,
  "machine": "$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")",
  "node": "$(node -v)",
  "postfix": "$(postconf -h mail_version 2> /dev/null)",
  "haraka": "$(node -p "require('$HARAKA_PKG/node_modules/Haraka/package.json').version" 2> /dev/null)",
  "smtp_server": "$(node -p "require('$SS_PKG/node_modules/smtp-server/package.json').version" 2> /dev/null)",
  "ferrymail": "$(node -p "require('$ROOT/package.json').version") ($(cd "$ROOT" && git rev-parse --short HEAD 2> /dev/null || echo unknown))",
  "ferrymail_measured": $(has "$SERVERS" ferrymail && echo true || echo false)
}
EOF
if [ "${BENCH_NO_REPORT:-0}" = 1 ]; then
  log "results in $RES (BENCHMARKS.md and bench/results/ left alone)"
  exit 0
fi
mkdir -p "$BENCH_DIR/results"
rm -f "$BENCH_DIR/results/"*.csv "$BENCH_DIR/results/"*.json "$BENCH_DIR/results/"*.jsonl "$BENCH_DIR/results/"*.svg
cp "$RES"/*.csv "$RES/meta.json" "$BENCH_DIR/results/"
for f in core.json fsync.jsonl; do [ -f "$RES/$f" ] && cp "$RES/$f" "$BENCH_DIR/results/"; done
rm -f "$BENCH_DIR/plots/"*.svg
"$TSX" "$BENCH_DIR/report.ts" "$BENCH_DIR/results" "$ROOT/BENCHMARKS.md" "$BENCH_DIR/plots" || die "report failed"
log "wrote BENCHMARKS.md, bench/plots/ and bench/results/"
