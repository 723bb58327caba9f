# shellcheck shell=bash
# bench/lib/smtp-server.sh: nodemailer smtp-server with a durable handler (sourced).
# bench/peers/smtp-server/server.mjs on 127.0.0.1:$P_SS: each message is written, fsynced and
# renamed into $RUN/smtp-server/spool/new before the 250. Nothing is delivered.

SS_PKG=$BENCH_DIR/peers/smtp-server

ss_install() {
  [ -d "$SS_PKG/node_modules/smtp-server" ] && return 0
  log "npm install in bench/peers/smtp-server"
  (cd "$SS_PKG" && npm install --no-audit --no-fund --loglevel=error) || die "npm install of smtp-server failed"
}

ss_start() {
  rm -rf "$RUN/smtp-server/spool"; mkdir -p "$RUN/smtp-server"
  start_bg smtp-server "$RUN/smtp-server/server.log" node "$SS_PKG/server.mjs" "$P_SS" "$RUN/smtp-server/spool"
  wait_port "$P_SS" 20 || { cat "$RUN/smtp-server/server.log" >&2; die "smtp-server did not listen on $P_SS"; }
}

ss_stop() { stop_one smtp-server; wait_port_free "$P_SS" 10; }
