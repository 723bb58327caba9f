# shellcheck shell=bash
# bench/lib/measure.sh: one measurement run at a time, each appending one CSV row (sourced).
#
# Servers are named sink, postfix, haraka, smtp-server, ferrymail; what each one is in each
# kind of run (hold queue, relay, Maildir...) is decided here and described in bench/README.md.
#   throughput.csv  round,kind,mode,server,C,R,M,wall_s,count,rate,accept_s,accepted,accept_rate,rc,load1
#   latency.csv     round,server,n,ok,median_ms,p99_ms,mean_ms,max_ms,errors,load1
#   mem.csv         server,N,idle,failed,procs_before,rss_before_kib,pss_before_kib,procs_during,rss_during_kib,pss_during_kib,rss_per_conn_kib,pss_per_conn_kib,setup_ms

RES=$RUN/results
TMO=${BENCH_TIMEOUT:-180}

csv_init() {
  mkdir -p "$RES" "$RUN/logs"
  rm -f "$RES/core.json" "$RES/fsync.jsonl" "$RES/meta.json"
  echo "round,kind,mode,server,C,R,M,wall_s,count,rate,accept_s,accepted,accept_rate,rc,load1" > "$RES/throughput.csv"
  echo "round,server,n,ok,median_ms,p99_ms,mean_ms,max_ms,errors,load1" > "$RES/latency.csv"
  echo "server,N,idle,failed,procs_before,rss_before_kib,pss_before_kib,procs_during,rss_during_kib,pss_during_kib,rss_per_conn_kib,pss_per_conn_kib,setup_ms" > "$RES/mem.csv"
}

# ---- the next hop: smtp-sink on P_NEXTHOP (counting with -c when asked) --------------------
NEXTHOP_LOG=$RUN/logs/nexthop.log
nexthop_start() {
  stop_one nexthop
  wait_port_free "$P_NEXTHOP" 10
  start_bg nexthop "$NEXTHOP_LOG" timeout -k 5 $((TMO + 60)) "$SMTP_SINK" -u nobody -c -m 1000 "127.0.0.1:$P_NEXTHOP" 1000
  wait_port "$P_NEXTHOP" 10 || die "smtp-sink did not listen on $P_NEXTHOP"
  NEXTHOP_BASE=$(nexthop_count)   # wait_port's probe is a session, not a message, but be exact
}
nexthop_count() {
  local c
  c=$(tail -c 300 "$NEXTHOP_LOG" 2> /dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2)
  echo "${c:-0}"
}
nexthop_stop() { stop_one nexthop; }

# ---- which port, recipient and reset for each (kind, server) -------------------------------
server_port() { # KIND SERVER
  case "$1:$2" in
    latency:postfix-relay) echo "$P_PF_MTA" ;;
    latency:*) server_port accept "$2" ;;
    accept:sink) echo "$P_CEILING" ;;
    accept:postfix) echo "$P_PF_HOLD" ;;
    accept:haraka) echo "$P_HARAKA_HOLD" ;;
    accept:smtp-server) echo "$P_SS" ;;
    accept:ferrymail) echo "$P_FERRY_HOLD" ;;
    *:postfix) echo "$P_PF_MTA" ;;
    *:haraka) echo "$P_HARAKA_MTA" ;;
    *:ferrymail) echo "$P_FERRY" ;;
    *) return 1 ;;
  esac
}

# server_reset KIND SERVER: before every run, an empty queue (and mailboxes) where the server
# keeps mail it does not deliver; the delivering servers (Haraka's relay instance, ferrymail)
# end every relay run with an empty queue anyway and stay up and warm
server_reset() {
  case "$2" in
    postfix | postfix-relay) pf_purge ;;
    haraka)
      if [ "$1" = accept ] || [ "$1" = latency ]; then
        hk_stop hold "$P_HARAKA_HOLD"; hk_start hold "$P_HARAKA_HOLD"; hk_warmup hold "$P_HARAKA_HOLD"
      fi ;;
    smtp-server) find "$RUN/smtp-server/spool" -type f -delete 2> /dev/null ;;
    ferrymail)
      fm_purge_mail
      # the hold instance keeps what it accepts (a few MB a run) and stays up and warm, as Postfix
      if ! kill -0 "$(pid_of ferrymail-hold)" 2> /dev/null; then
        fmh_start || die "ferrymail (hold) did not start (see $FMH/serve.log)"
      fi
      if ! fm_alive; then
        log "ferrymail is not running: restarting it (see $FM/serve.log)"
        fm_start || die "ferrymail did not start (see $FM/serve.log)"
      fi ;;
  esac
  sync
  return 0
}

# server_flush SERVER: restart a delivering server on an empty queue
server_flush() {
  log "flushing $1 after a timeout"
  case "$1" in
    postfix) pf_purge ;;
    haraka) hk_stop mta "$P_HARAKA_MTA"; hk_start mta "$P_HARAKA_MTA" ;;
    ferrymail) fm_stop; fm_start || die "ferrymail did not start (see $FM/serve.log)" ;;
  esac
}

# delivered_count SERVER: Maildir files so far (local runs)
delivered_count() {
  case "$1" in
    postfix) pf_delivered ;;
    ferrymail) fm_delivered ;;
    *) echo 0 ;;
  esac
}

# messages per run: enough for a run of seconds; smtp-server waits 100 ms before each greeting
msgs_for() { # SERVER C
  local m
  case "$2" in 1) m=$M_C1 ;; 20) m=$M_C20 ;; *) m=$M_C100 ;; esac
  if [ "$1" = smtp-server ] && [ "$MODE" = conn ]; then
    case "$2" in 1) m=$((m / 5)) ;; 20) m=$((m * 2 / 5)) ;; esac
  fi
  echo "$m"
}

# source_run PORT C R M RCPT LOG: smtp-source (one message per connection unless MODE=reuse);
# prints "rc accepted"
source_run() {
  local port=$1 c=$2 r=$3 m=$4 rcpt=$5 logf=$6 flags="" rc ok
  [ "$MODE" = reuse ] && flags=-d
  timeout -k 5 "$TMO" "$SMTP_SOURCE" -c $flags -s "$c" -m "$m" -l "$MSG_LEN" -r "$r" \
    -M source.bench.test -f "$FROM_ADDR" -t "$rcpt" "127.0.0.1:$port" > "$logf" 2>&1
  rc=$?
  # -c prints a running count of completed messages, separated by CRs
  ok=$(tr '\r' '\n' < "$logf" | grep -E '^[0-9]+$' | tail -1)
  echo "$rc ${ok:-0}"
}

# throughput_run ROUND KIND SERVER C R
#   accept: wall time of smtp-source; relay: until the next hop counted every accepted message;
#   local: until every accepted recipient has its Maildir file
throughput_run() {
  local round=$1 kind=$2 server=$3 c=$4 r=$5 port m rcpt tag logf t0 t1 ta rc ok target got deadline
  port=$(server_port "$kind" "$server") || return 0
  m=$(msgs_for "$server" "$c")
  case "$kind" in accept) rcpt=$ACCEPT_RCPT ;; relay) rcpt=$REMOTE_RCPT ;; local) rcpt=$LOCAL_RCPT ;; esac
  server_reset "$kind" "$server"
  [ "$kind" = relay ] && nexthop_start   # counts what arrives
  tag="$kind-$MODE-$server-c$c-r$r-$round"; logf="$RUN/logs/src-$tag.log"
  local watcher="" until_out="$RUN/until-count.out" target_file="$RUN/until-count.target"
  rm -f "$until_out" "$target_file"
  t0=$(now)
  if [ "$kind" = relay ]; then
    # the end of a relay run, to 2 ms: see bench/tools/until-count.mjs
    node "$BENCH_DIR/tools/until-count.mjs" "$NEXTHOP_LOG" "$NEXTHOP_BASE" "$target_file" \
      "$(awk -v t="$t0" -v d="$TMO" 'BEGIN { printf "%d\n", t + d }')" > "$until_out" 2> /dev/null &
    watcher=$!
  fi
  read -r rc ok < <(source_run "$port" "$c" "$r" "$m" "$rcpt" "$logf")
  ta=$(now); t1=$ta; got=$ok
  if [ -n "$watcher" ]; then
    echo "$ok" > "$target_file"
    wait "$watcher"
    t1=""; got=""
    read -r t1 got < "$until_out" 2> /dev/null
    if [ -z "$t1" ] || [ -z "$got" ]; then
      # the watcher failed: the old shell poll, 50 ms coarse
      log "$tag: until-count.mjs gave no result; timing the end with the shell (to 50 ms)"
      deadline=$(awk -v t="$t0" -v d="$TMO" 'BEGIN { printf "%d\n", t + d }')
      got=$(($(nexthop_count) - NEXTHOP_BASE))
      while [ "$got" -lt "$ok" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 0.05
        got=$(($(nexthop_count) - NEXTHOP_BASE))
      done
      t1=$(now)
    fi
    if [ "$got" -lt "$ok" ]; then log "$tag: timed out with $got/$ok"; rc=124; fi
  elif [ "$kind" != accept ] && [ "$ok" -gt 0 ]; then
    target=$((ok * r))
    deadline=$(awk -v t="$t0" -v d="$TMO" 'BEGIN { printf "%d\n", t + d }')
    while :; do
      got=$(delivered_count "$server")
      [ "$got" -ge "$target" ] && break
      [ "$(date +%s)" -ge "$deadline" ] && { log "$tag: timed out with $got/$target"; rc=124; break; }
      sleep 0.05
    done
    t1=$(now)
    got=$((got / r))   # local: report messages, as for the other kinds
  fi
  [ "$kind" = relay ] && nexthop_stop
  # mail left over by a run that timed out would be counted by the next one: drop it
  if [ "$rc" = 124 ] && [ "$kind" != accept ]; then server_flush "$server"; fi
  local wall acc_s rate acc_rate
  wall=$(fsub "$t1" "$t0"); acc_s=$(fsub "$ta" "$t0")
  rate=$(fdiv "$got" "$wall"); acc_rate=$(fdiv "$ok" "$acc_s")
  echo "$round,$kind,$MODE,$server,$c,$r,$m,$wall,$got,$rate,$acc_s,$ok,$acc_rate,$rc,$(load1)" >> "${OUT_CSV:-$RES/throughput.csv}"
  printf '  %-6s %-5s %-11s C=%-3s R=%-2s M=%-5s %8s msg/s (%s in %ss; accepted %s/%s at %s/s) rc=%s\n' \
    "$kind" "$MODE" "$server" "$c" "$r" "$m" "$rate" "$got" "$wall" "$ok" "$m" "$acc_rate" "$rc" >&2
}

# latency_run ROUND SERVER: one session, one message at a time
latency_run() {
  local round=$1 server=$2 port out
  port=$(server_port latency "$server") || return 0
  server_reset latency "$server"
  out=$(LATENCY_RCPT=$ACCEPT_RCPT timeout -k 5 300 "$TSX" "$BENCH_DIR/tools/latency.ts" 127.0.0.1 "$port" "$LAT_N" "$MSG_LEN" 2> "$RUN/logs/latency-$server-$round.err")
  if [ -z "$out" ]; then
    log "latency $server: no result ($(head -c 200 "$RUN/logs/latency-$server-$round.err"))"
    echo "$round,$server,$LAT_N,0,,,,,$LAT_N,$(load1)" >> "$RES/latency.csv"
    return 0
  fi
  node -e '
    const r = JSON.parse(process.argv[1]);
    const [round, server, load] = process.argv.slice(2);
    console.log([round, server, r.n, r.ok, r.median_ms, r.p99_ms, r.mean_ms, r.max_ms, r.errors, load].join(","));
  ' "$out" "$round" "$server" "$(load1)" >> "$RES/latency.csv"
  printf '  latency %-11s %s\n' "$server" "$out" >&2
}

# server_root SERVER: the process whose tree's memory counts
server_root() {
  case "$1" in
    postfix) pf_master_pid ;;
    haraka) pid_of haraka-hold ;;
    smtp-server) pid_of smtp-server ;;
    ferrymail) pid_of ferrymail-hold ;;
  esac
}
mem_of() { "$TSX" "$BENCH_DIR/tools/memsample.ts" "$(server_root "$1")"; }

# mem_run SERVER N: RSS and PSS before, and with N idle sessions after EHLO (the largest of
# 3 samples 1 s apart: Node's RSS moves with GC), per connection
mem_run() {
  local server=$1 n=$2 port logf cpid k a b c ok failed ms n0 r0 p0
  port=$(server_port accept "$server") || return 0
  case "$server" in
    postfix) pf_stop; pf_start ;;
    haraka) hk_stop hold "$P_HARAKA_HOLD"; hk_start hold "$P_HARAKA_HOLD" ;;
    smtp-server) ss_stop; ss_start ;;
    ferrymail) fmh_stop; fmh_start || return 0 ;;
  esac
  sleep 2
  read -r n0 r0 p0 < <(mem_of "$server")
  logf="$RUN/logs/idle-$server-$n.log"
  # the client holds the sessions until we have sampled, then we stop it (bounded anyway)
  timeout -k 5 200 "$TSX" "$BENCH_DIR/tools/idle.ts" 127.0.0.1 "$port" "$n" 60 > "$logf" 2>&1 &
  cpid=$!
  for ((k = 0; k < 1500; k++)); do grep -q '^READY' "$logf" && break; kill -0 "$cpid" 2> /dev/null || break; sleep 0.1; done
  local n1=0 r1=0 p1=0
  for k in 1 2 3; do
    sleep 1
    read -r a b c < <(mem_of "$server")
    [ "$b" -gt "$r1" ] && { n1=$a; r1=$b; p1=$c; }
  done
  kill "$cpid" 2> /dev/null
  wait "$cpid" 2> /dev/null
  ok=$(grep -o '^READY idle=[0-9]*' "$logf" | cut -d= -f2); ok=${ok:-0}
  failed=$(grep -o '^READY.*failed=[0-9]*' "$logf" | grep -o 'failed=[0-9]*' | cut -d= -f2); failed=${failed:-$n}
  ms=$(grep -o '^READY.*ms=[0-9]*' "$logf" | grep -o 'ms=[0-9]*' | cut -d= -f2)
  local div=$ok; [ "$div" -gt 0 ] || div=1
  echo "$server,$n,$ok,$failed,$n0,$r0,$p0,$n1,$r1,$p1,$(fdiv $((r1 - r0)) "$div"),$(fdiv $((p1 - p0)) "$div"),${ms:-}" >> "$RES/mem.csv"
  printf '  memory %-11s N=%-5s idle=%s failed=%s RSS %s -> %s KiB (%s KiB/conn), PSS %s KiB/conn, procs %s -> %s, set-up %s ms\n' \
    "$server" "$n" "$ok" "$failed" "$r0" "$r1" "$(fdiv $((r1 - r0)) "$div")" "$(fdiv $((p1 - p0)) "$div")" "$n0" "$n1" "${ms:-?}" >&2
}
