/**
 * @module config/types
 * The typed config, as `loadConfig` returns it: durations in milliseconds, sizes in bytes, paths
 * absolute, domains as lowercased A-labels. Re-exported by config/schema.ts, whose SCHEMA describes
 * the same keys as data.
 */

export type ListenerMode = 'mx' | 'submission' | 'submissions';

export interface ListenerConfig {
  /** As written: `127.0.0.1:2525`, `[::1]:2525`. */
  address: string;
  /** From `address`, brackets removed. */
  host: string;
  port: number;
  mode: ListenerMode;
  /** Filled in by the loader: true for submission(s), false for mx, unless set. */
  auth_required?: boolean;
  /** Offer AUTH before STARTTLS (tests only). Default false. */
  allow_insecure_auth?: boolean;
}

export type RouteTls = 'none' | 'opportunistic' | 'require' | 'verify';

export interface RouteConfig {
  host: string;
  port?: number;
  tls?: RouteTls;
  auth?: { user: string; password: string };
}

export interface LimitsConfig {
  max_message_size: number;
  max_recipients: number;
  max_connections: number;
  max_connections_per_ip: number;
  max_errors: number;
  max_received_headers: number;
  /** Longest text line in DATA, in bytes including CRLF (RFC 5321 §4.5.3.1.6: at least 1000). */
  line_length: number;
  /** Longest command line, including CRLF (RFC 5321 §4.5.3.1.4: at least 512). */
  command_line_length: number;
  /** ms: idle time allowed between commands (RFC 5321 §4.5.3.2.7). */
  command_timeout: number;
  /** ms: idle time allowed while receiving DATA. */
  data_timeout: number;
  /** ms: time allowed for a TLS handshake. */
  tls_handshake_timeout: number;
}

export interface DeliveryConfig {
  /** Name sent in EHLO; default: hostname. */
  helo_name?: string;
  mx_port: number;
  tls: RouteTls;
  /** ms, each: RFC 5321 §4.5.3.2 client timeouts. */
  connect_timeout: number;
  greeting_timeout: number;
  command_timeout: number;
  data_init_timeout: number;
  data_block_timeout: number;
  data_done_timeout: number;
  max_per_destination: number;
}

export interface QueueConfig {
  /** ms to wait before each retry; the last step repeats until `max_age`. */
  retry: number[];
  /** ms: a message still undelivered this long after arrival is returned to its sender. */
  max_age: number;
  /** ms: send a "delayed" DSN once a recipient has waited this long; undefined: never. */
  delay_warning?: number;
  concurrency: number;
  /** Queue everything, deliver nothing. */
  hold: boolean;
}

export interface FerrymailConfig {
  hostname: string;
  /** Absolute. */
  data_dir: string;
  listeners: ListenerConfig[];
  /** Absolute paths of readable files. */
  tls?: { cert: string; key: string };
  domains: { local: string[]; relay: string[] };
  relay: { networks: string[] };
  routes: Record<string, string | RouteConfig>;
  dns: { servers: string[] };
  users: { list: string[]; case_sensitive: boolean; detail_separator: string };
  aliases: Record<string, string | string[]>;
  /** user → plain password or `scrypt:…` hash (env: and file: already read). */
  auth: { users: Record<string, string> };
  limits: LimitsConfig;
  delivery: DeliveryConfig;
  queue: QueueConfig;
  log: { level: 'debug' | 'info' | 'warn' | 'error'; format?: 'json' | 'pretty' };
  metrics?: { address: string; host: string; port: number };
  user?: string;
  group?: string;
  vrfy: boolean;
}
