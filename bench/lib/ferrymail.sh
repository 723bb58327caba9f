# shellcheck shell=bash
# bench/lib/ferrymail.sh: ferrymail under benchmark (sourced).
#
# One instance on 127.0.0.1:$P_FERRY, started once from the project's build (an MTA runs for
# days: it stays warm, like Postfix), with DESIGN.md's contract keys: bench.test is local
# (Maildir), example.net (relay runs) is routed to the counting next hop $P_NEXTHOP, every other
# domain (accept runs: accept.test) to the always-up quiet sink $P_QUIET, and 127.0.0.1 may
# relay. Extra TOML can be appended with FERRY_EXTRA_TOML (new tables only: TOML forbids
# defining [limits] or [delivery] twice).

FM=$RUN/ferrymail
FERRY_MAIN=$ROOT/dist/src/cli/main.js

# ferrymail_ready: built, and `serve` exists (false while the server is being written)
ferrymail_ready() {
  [ -f "$FERRY_MAIN" ] || return 1
  node "$FERRY_MAIN" serve --help > /dev/null 2>&1
}

fm_config() {
  mkdir -p "$FM"
  cat > "$FM/ferrymail.toml" << EOF
# written by bench/lib/ferrymail.sh
hostname = "ferrymail.bench.test"
data_dir = "$FM/data"

[[listeners]]
address = "127.0.0.1:$P_FERRY"
mode = "mx"

[domains]
local = ["bench.test"]

[relay]
networks = ["127.0.0.1/32"]

[routes]
"example.net" = "127.0.0.1:$P_NEXTHOP"
"*" = "127.0.0.1:$P_QUIET"

# the load generator is one address: Postfix exempts \$mynetworks from its per-client limits
# (smtpd_client_event_limit_exceptions), so ferrymail's are raised to match
[limits]
max_connections = 20000
max_connections_per_ip = 20000

[delivery]
tls = "none"
EOF
  [ -n "${FERRY_EXTRA_TOML:-}" ] && printf '\n%s\n' "$FERRY_EXTRA_TOML" >> "$FM/ferrymail.toml"
  return 0
}

fm_start() {
  rm -rf "$FM/data"
  [ -f "$FM/ferrymail.toml" ] || fm_config
  start_bg ferrymail "$FM/serve.log" node "$FERRY_MAIN" serve --config "$FM/ferrymail.toml"
  wait_port "$P_FERRY" 30 || { tail -20 "$FM/serve.log" >&2; return 1; }
}

fm_stop() { stop_one ferrymail; wait_port_free "$P_FERRY" 10; }

# fm_alive: still running (restart it otherwise: a crash must not stall the benchmark)
fm_alive() { kill -0 "$(pid_of ferrymail)" 2> /dev/null; }

# Maildir files delivered for bench.test
fm_delivered() { find "$FM/data/mail" -path '*/new/*' -type f 2>/dev/null | wc -l; }

# between runs: empty the mailboxes' new/ folders (the Maildirs themselves stay)
fm_purge_mail() { find "$FM/data/mail" -path '*/new/*' -type f -delete 2> /dev/null; return 0; }

# ---- the hold instance: durable accept only, as Postfix's hold queue (accept and latency runs) ----
FMH=$RUN/ferrymail-hold

fmh_start() {
  rm -rf "$FMH/data"
  mkdir -p "$FMH"
  [ -f "$FM/ferrymail.toml" ] || fm_config
  sed -e "s#^data_dir = .*#data_dir = \"$FMH/data\"#" -e "s#127.0.0.1:$P_FERRY\"#127.0.0.1:$P_FERRY_HOLD\"#" \
    "$FM/ferrymail.toml" > "$FMH/ferrymail.toml"
  printf '\n[queue]\nhold = true\n' >> "$FMH/ferrymail.toml"
  start_bg ferrymail-hold "$FMH/serve.log" node "$FERRY_MAIN" serve --config "$FMH/ferrymail.toml"
  wait_port "$P_FERRY_HOLD" 30 || { tail -20 "$FMH/serve.log" >&2; return 1; }
}

fmh_stop() { stop_one ferrymail-hold; wait_port_free "$P_FERRY_HOLD" 10; }
