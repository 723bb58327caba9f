# shellcheck shell=bash
# bench/lib/sink.sh: smtp-sink as a receiver on 127.0.0.1:$P_CEILING (sourced): it answers
# 250 to everything and stores nothing, so its rate is the ceiling of smtp-source + loopback.

sink_start() {
  start_bg sink "$RUN/logs/sink-ceiling.log" "$SMTP_SINK" -u nobody -m 2000 "127.0.0.1:$P_CEILING" 2000
  wait_port "$P_CEILING" 10 || die "smtp-sink did not listen on $P_CEILING"
}

sink_stop() { stop_one sink; }
