# shellcheck shell=bash
# bench/lib/sink.sh: smtp-sink as a receiver on 127.0.0.1:$P_CEILING (sourced): it answers
# 250 to everything and stores nothing, so its rate is the ceiling of smtp-source + loopback.

sink_start() {
  start_bg sink "$RUN/logs/sink-ceiling.log" "$SMTP_SINK" -u nobody -m 2000 "127.0.0.1:$P_CEILING" 2000
  wait_port "$P_CEILING" 10 || die "smtp-sink did not listen on $P_CEILING"
}

sink_stop() { stop_one sink; }

# the quiet next hop of ferrymail's accept-run mail (ferrymail relays while it accepts)
quiet_start() {
  start_bg quietsink "$RUN/logs/sink-quiet.log" "$SMTP_SINK" -u nobody -m 2000 "127.0.0.1:$P_QUIET" 2000
  wait_port "$P_QUIET" 10 || die "smtp-sink did not listen on $P_QUIET"
}

quiet_stop() { stop_one quietsink; }
