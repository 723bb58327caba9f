# shellcheck shell=bash
# bench/lib/haraka.sh: two Haraka instances for the benchmark (sourced).
#
# Both put loopback clients in relaying mode, so their mail goes to Haraka's own outbound
# queue (one file per message, written with its FsyncWriteStream: fsync before the 250):
#   hold  127.0.0.1:$P_HARAKA_HOLD  outbound.ini disabled=true: durable accept, no delivery
#         (Haraka then re-checks every queued message once a second: a small, real cost)
#   mta   127.0.0.1:$P_HARAKA_MTA   delivers to 127.0.0.1:$P_NEXTHOP (a get_mx hook, no DNS)
# Haraka runs as its default cluster: a master and one worker (smtp.ini nodes=1). The hold
# instance is restarted on an empty queue before each run (its queue would grow, with a timer
# per message), then warmed up with 100 messages so that it does not run on a cold JIT.

HARAKA_PKG=$BENCH_DIR/peers/haraka
HARAKA_BIN=$HARAKA_PKG/node_modules/Haraka/bin/haraka
HK=$RUN/haraka

hk_install() {
  [ -x "$HARAKA_BIN" ] && return 0
  log "npm install in bench/peers/haraka"
  (cd "$HARAKA_PKG" && npm install --no-audit --no-fund --loglevel=error) || die "npm install of Haraka failed"
}

# hk_make NAME PORT DISABLED(true|false)
hk_make() {
  local name=$1 port=$2 disabled=$3 dir=$HK/$1
  rm -rf "$dir"
  "$HARAKA_BIN" -i "$dir" > /dev/null || die "haraka -i $dir failed"
  cat > "$dir/plugins/bench_loopback.js" << JS
// ferrymail bench: loopback clients relay; rDNS without DNS; every domain goes to the next hop
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])
exports.hook_lookup_rdns = function (next, connection) {
    if (LOOPBACK.has(connection.remote.ip)) return next(OK, 'localhost')
    next()
}
exports.hook_connect_init = function (next, connection) {
    if (LOOPBACK.has(connection.remote.ip)) connection.relaying = true
    next()
}
exports.hook_get_mx = function (next, hmail, domain) {
    next(OK, { exchange: '127.0.0.1', port: $P_NEXTHOP, priority: 0 })
}
JS
  echo 'bench_loopback' > "$dir/config/plugins"
  printf 'listen=127.0.0.1:%s\nnodes=1\n' "$port" > "$dir/config/smtp.ini"
  echo "haraka-$name.bench.test" > "$dir/config/me"
  printf '[main]\nlevel=info\ntimestamps=true\n' > "$dir/config/log.ini"
  printf 'disabled=%s\nenable_tls=false\nconcurrency_max=100\n' "$disabled" > "$dir/config/outbound.ini"
}

hk_setup() {
  hk_install
  hk_make hold "$P_HARAKA_HOLD" true
  hk_make mta "$P_HARAKA_MTA" false
}

# hk_start NAME PORT: with an empty queue
hk_start() {
  local name=$1 port=$2
  rm -rf "$HK/$name/queue"
  start_bg "haraka-$name" "$HK/$name.log" node "$HARAKA_BIN" -c "$HK/$name"
  wait_port "$port" 30 || { tail -20 "$HK/$name.log" >&2; die "haraka $name did not listen on $port"; }
}

hk_warmup() {
  "$SMTP_SOURCE" -s 5 -m 100 -l "$MSG_LEN" -f "$FROM_ADDR" -t "$ACCEPT_RCPT" "127.0.0.1:$2" > /dev/null 2>&1
}

hk_stop() { stop_one "haraka-$1"; wait_port_free "$2" 10; }

hk_qsize() { find "$HK/$1/queue" -maxdepth 1 -type f 2>/dev/null | wc -l; }
