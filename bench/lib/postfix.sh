# shellcheck shell=bash
# bench/lib/postfix.sh: a private Postfix instance for the benchmark (sourced).
#
# It never touches /etc/postfix nor the system instance: its main.cf/master.cf live in
# $RUN/postfix/etc, its queue in $RUN/postfix/spool, and it is driven with `postfix -c`.
#   127.0.0.1:$P_PF_MTA   smtpd -> queue (fsync) -> smtp to [127.0.0.1]:$P_NEXTHOP, or virtual(8)
#                         Maildir delivery for bench.test under $RUN/postfix/vmail/bench.test/<user>/
#   127.0.0.1:$P_PF_HOLD  the same smtpd, every message put on hold: durable accept, no delivery
# accept.test (the accept and latency runs' domain) is relayed to the quiet sink $P_QUIET when
# it arrives on $P_PF_MTA: Postfix accepting while relaying, as ferrymail always does

PF=$RUN/postfix
PF_ETC=$PF/etc

pf_setup() {
  command -v postconf > /dev/null || die "postfix is not installed"
  pf_stop
  rm -rf "$PF"
  mkdir -p "$PF_ETC" "$PF/spool" "$PF/data" "$PF/vmail"
  chown postfix "$PF/data"
  chown nobody:nogroup "$PF/vmail"
  # Debian's master.cf, minus the port-25 listener, plus ours; no chroot (it needs copies
  # of /etc files that only the init script makes)
  cp /etc/postfix/master.cf "$PF_ETC/master.cf"
  # smtp-source -r N sends to user@, 2user@ ... Nuser@ (a regexp map may not substitute here)
  local u
  for u in user 2user 3user 4user 5user 6user 7user 8user 9user 10user; do
    printf '%s@bench.test bench.test/%s/\n' "$u" "$u"
  done > "$PF_ETC/vmailbox"
  printf 'accept.test smtp:[127.0.0.1]:%s\n' "$P_QUIET" > "$PF_ETC/transport"
  cat > "$PF_ETC/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$P_NEXTHOP
transport_maps = texthash:$PF_ETC/transport
default_transport = smtp
relay_transport = relay
smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination
alias_maps =
alias_database =
biff = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
default_process_limit = 1200
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $PF/vmail
virtual_mailbox_maps = texthash:$PF_ETC/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
maillog_file_prefixes = /var, /dev/stdout, $RUN
maillog_file = $PF/maillog
EOF
  postconf -c "$PF_ETC" -F '*/*/chroot = n'
  postconf -c "$PF_ETC" -MX smtp/inet 2> /dev/null || true
  postconf -c "$PF_ETC" -M "127.0.0.1:$P_PF_MTA/inet = 127.0.0.1:$P_PF_MTA inet n - n - - smtpd"
  postconf -c "$PF_ETC" -M "127.0.0.1:$P_PF_HOLD/inet = 127.0.0.1:$P_PF_HOLD inet n - n - - smtpd -o syslog_name=postfix-hold -o { smtpd_data_restrictions = check_client_access static:HOLD }"
  postfix -c "$PF_ETC" check > "$PF/check.log" 2>&1 || { cat "$PF/check.log" >&2; die "postfix check failed"; }
}

pf_start() {
  postfix -c "$PF_ETC" start > "$PF/start.log" 2>&1 || { cat "$PF/start.log" >&2; die "postfix start failed"; }
  wait_port "$P_PF_MTA" 20 && wait_port "$P_PF_HOLD" 10 || die "postfix did not listen"
}

pf_stop() {
  [ -f "$PF_ETC/main.cf" ] || return 0
  postfix -c "$PF_ETC" status > /dev/null 2>&1 || return 0
  postfix -c "$PF_ETC" stop > /dev/null 2>&1
  wait_port_free "$P_PF_MTA" 15
}

pf_master_pid() { awk '{ print $1 }' "$PF/spool/pid/master.pid" 2>/dev/null; }

# between runs: empty every queue and the Maildirs
pf_purge() {
  postsuper -c "$PF_ETC" -d ALL > /dev/null 2>&1
  find "$PF/vmail" -mindepth 1 -delete 2> /dev/null
  : > "$PF/maillog" 2>/dev/null
  return 0
}

# messages still in the queue (any state)
pf_qsize() { find "$PF/spool/incoming" "$PF/spool/active" "$PF/spool/deferred" "$PF/spool/maildrop" -type f 2>/dev/null | wc -l; }

# Maildir files delivered for bench.test
pf_delivered() { find "$PF/vmail" -path '*/new/*' -type f 2>/dev/null | wc -l; }
