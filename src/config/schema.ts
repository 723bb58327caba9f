/**
 * @module config/schema
 * The one description of ferrymail's config file. `SCHEMA` (data, see config/dsl.ts) gives validation,
 * defaults and docs/config.md; `FerrymailConfig` is the typed result of loading it. Durations are held in
 * milliseconds and sizes in bytes in the typed config; paths are absolute; domains are lowercased A-labels.
 * The types live in config/types.ts and are re-exported here; test/config/load.test.ts pins the defaults.
 */
import type { TableField } from './dsl.js';
import {
  checkAccount,
  checkDnsServer,
  checkDomain,
  checkHost,
  checkHostPort,
  checkMailboxish,
  checkNetwork,
  checkRouteKey,
  checkRouteTarget,
  checkSecret,
  HOST_PORT_EXPECT,
  isHostName,
  normalizeDomain,
  normalizeNetwork,
} from './values.js';
import type { FerrymailConfig, ListenerConfig, RouteConfig } from './types.js';

export type * from './types.js';

const domainList = {
  type: 'string',
  check: checkDomain,
  transform: normalizeDomain,
  description: '',
} as const;

const timeout = (def: string, description: string) =>
  ({ type: 'duration', default: def, minMs: 1000, description }) as const;

export const SCHEMA = {
  type: 'table',
  description: 'The ferrymail config file (TOML).',
  fields: {
    hostname: {
      type: 'string',
      dynamicDefault: (ctx) => (isHostName(ctx.hostname) ? ctx.hostname : 'localhost'),
      defaultDoc: 'the system host name',
      check: (v) => (isHostName(v) ? undefined : 'a host name such as "mx.example.test"'),
      example: '"mx.example.test"',
      description: "This host's name: in the greeting, the EHLO reply, Received: headers and Message-ID:.",
    },
    data_dir: {
      type: 'string',
      path: true,
      default: 'var',
      example: '"/var/spool/ferrymail"',
      description:
        "Where state lives: the queue under `queue/`, mailboxes under `mail/`, the sendmail pickup folder under `pickup/`, the control socket `control.sock`. Relative to the config file's folder.",
    },
    listeners: {
      type: 'list',
      minItems: 1,
      default: [{ address: '127.0.0.1:2525', mode: 'mx' }],
      description: 'Addresses to accept SMTP on, each an `[[listeners]]` table.',
      of: {
        type: 'table',
        description: '',
        fields: {
          address: {
            type: 'string',
            check: checkHostPort,
            expect: HOST_PORT_EXPECT,
            example: '"0.0.0.0:25"',
            description: 'Where to listen: `host:port`, `[::]:25` for IPv6. Port 0 picks a free port.',
          },
          mode: {
            type: 'string',
            enum: ['mx', 'submission', 'submissions'],
            default: 'mx',
            description:
              '`mx`: mail from other hosts (port 25). `submission`: from your users, STARTTLS and AUTH (port 587). `submissions`: the same over implicit TLS (port 465; needs `[tls]`).',
          },
          auth_required: {
            type: 'boolean',
            optional: true,
            defaultDoc: 'true for submission and submissions, false for mx',
            description: 'Refuse MAIL until the client has authenticated.',
          },
          allow_insecure_auth: {
            type: 'boolean',
            default: false,
            description: 'Offer AUTH on a connection without TLS. Only for tests on loopback.',
          },
        },
      },
    },
    tls: {
      type: 'table',
      optional: true,
      description:
        'Certificate and key (PEM). Enables STARTTLS and `submissions` listeners. Paths relative to the config file.',
      fields: {
        cert: { type: 'string', path: true, example: '"cert.pem"', description: 'Certificate chain (PEM).' },
        key: { type: 'string', path: true, example: '"key.pem"', description: 'Private key (PEM).' },
      },
    },
    domains: {
      type: 'table',
      description: 'Which mail this host accepts.',
      fields: {
        local: {
          type: 'list',
          of: domainList,
          default: ['localhost'],
          example: '["example.test"]',
          description: 'Final destination: mail lands in Maildirs under `data_dir/mail/<domain>/<user>/`.',
        },
        relay: {
          type: 'list',
          of: domainList,
          default: [],
          example: '["relay.test"]',
          description: 'Accepted from anyone and passed onward (backup MX, gateway).',
        },
      },
    },
    relay: {
      type: 'table',
      description: 'Who may send to any domain.',
      fields: {
        networks: {
          type: 'list',
          of: { type: 'string', check: checkNetwork, transform: normalizeNetwork, description: '' },
          default: ['127.0.0.1/32', '::1/128'],
          description:
            'Clients in these networks may relay to any domain without AUTH. A bare address means one host.',
        },
      },
    },
    routes: {
      type: 'map',
      default: {},
      keyCheck: checkRouteKey,
      keyDoc: 'a domain, or "*" for every domain without a route of its own',
      example:
        '{ "relay.test" = "127.0.0.1:2600", "*" = { host = "smarthost.example", port = 587, tls = "require" } }',
      description:
        'Next hop per destination domain instead of the MX lookup. A string: `host`, `host:port`, `[::1]:2600`, `lmtp:host:port` or `lmtp:/path/to.sock`; or a table with `host`, `port`, `tls` and `auth`.',
      of: {
        type: 'either',
        description: '',
        string: { type: 'string', check: checkRouteTarget, description: '' },
        other: {
          type: 'table',
          description: '',
          fields: {
            host: { type: 'string', check: checkHost, description: 'Host name or IP address.' },
            port: { type: 'integer', min: 1, max: 65535, optional: true, description: 'Default 25.' },
            tls: {
              type: 'string',
              enum: ['none', 'opportunistic', 'require', 'verify'],
              optional: true,
              description: 'Default: `delivery.tls`.',
            },
            auth: {
              type: 'table',
              optional: true,
              description: 'Log in to the smarthost.',
              fields: {
                user: { type: 'string', description: 'User name.' },
                password: {
                  type: 'string',
                  check: checkSecret,
                  description: 'Password, `env:VAR` or `file:path`.',
                },
              },
            },
          },
        },
      },
    },
    dns: {
      type: 'table',
      description: 'Name resolution for MX lookups.',
      fields: {
        servers: {
          type: 'list',
          of: { type: 'string', check: checkDnsServer, description: '' },
          default: [],
          example: '["127.0.0.1:5353"]',
          description:
            "Resolvers to ask instead of the system's (tests, split DNS). Empty: the system resolver.",
        },
      },
    },
    users: {
      type: 'table',
      description: 'Mailboxes in the local domains.',
      fields: {
        list: {
          type: 'list',
          of: { type: 'string', check: checkMailboxish, description: '' },
          default: [],
          example: '["alice", "bob@example.test"]',
          description:
            'Local users (a bare name is a user in every local domain). Empty: accept any local part, creating the mailbox on first delivery.',
        },
        case_sensitive: {
          type: 'boolean',
          default: false,
          description: 'Keep the case of local parts when picking the mailbox folder.',
        },
        detail_separator: {
          type: 'string',
          default: '+',
          check: (v) =>
            v.length <= 1 && !/[\s@"]/.test(v) ? undefined : 'one character such as "+", or "" for none',
          description: '`alice+lists@` is delivered to `alice`. Empty: no sub-addressing.',
        },
      },
    },
    aliases: {
      type: 'map',
      default: {},
      keyCheck: checkMailboxish,
      keyDoc: 'a local part or an address',
      example: '{ postmaster = "alice", "sales@example.test" = ["bob", "carol@example.org"] }',
      description:
        'Rewrite a local recipient to one or more addresses (a bare name stays in the same domain).',
      of: {
        type: 'either',
        description: '',
        string: { type: 'string', check: checkMailboxish, description: '' },
        other: {
          type: 'list',
          minItems: 1,
          of: { type: 'string', check: checkMailboxish, description: '' },
          description: '',
        },
      },
    },
    auth: {
      type: 'table',
      description: 'SMTP AUTH for submission.',
      fields: {
        users: {
          type: 'map',
          default: {},
          keyDoc: 'a user name',
          example: '{ alice = "scrypt:16384:8:1:…", bob = "env:BOB_PASSWORD" }',
          description:
            'User → password: plain text, a hash from `ferrymail hash-password` (`scrypt:…`), `env:VAR` or `file:path` (read at start, trailing newline removed).',
          of: { type: 'string', check: checkSecret, description: '' },
        },
      },
    },
    limits: {
      type: 'table',
      description: 'Bounds on what one client may cost (DESIGN invariant 6).',
      fields: {
        max_message_size: {
          type: 'size',
          default: 26214400,
          min: 1024,
          description: 'Largest message in bytes; advertised in EHLO SIZE.',
        },
        max_recipients: {
          type: 'integer',
          default: 1000,
          min: 1,
          description: 'RCPT commands accepted per transaction (RFC 5321 asks for at least 100).',
        },
        max_connections: {
          type: 'integer',
          default: 10000,
          min: 1,
          description: 'Inbound connections open at once, all clients (an idle session costs about 8 KiB).',
        },
        max_connections_per_ip: {
          type: 'integer',
          default: 256,
          min: 1,
          description:
            'Inbound connections open at once from one address. Clients in `relay.networks` are exempt ' +
            '(as Postfix exempts `$mynetworks`): they are your own hosts and gateways.',
        },
        max_errors: {
          type: 'integer',
          default: 10,
          min: 1,
          description: 'Bad commands before the session is closed with 421.',
        },
        max_received_headers: {
          type: 'integer',
          default: 100,
          min: 1,
          description: 'Hop count: a message with more Received: headers is refused as a loop.',
        },
        line_length: {
          type: 'integer',
          default: 1000,
          min: 1000,
          unit: 'bytes',
          description: 'Longest line of message text, CRLF included.',
        },
        command_line_length: {
          type: 'integer',
          default: 512,
          min: 512,
          unit: 'bytes',
          description: 'Longest command line, CRLF included.',
        },
        command_timeout: timeout('5m', 'Idle time allowed between commands.'),
        data_timeout: timeout('5m', 'Idle time allowed while the message text is arriving.'),
        tls_handshake_timeout: timeout('30s', 'Time allowed for a TLS handshake.'),
      },
    },
    delivery: {
      type: 'table',
      description: 'The sender-SMTP: how messages leave.',
      fields: {
        helo_name: {
          type: 'string',
          optional: true,
          check: (v) => (isHostName(v) ? undefined : 'a host name'),
          defaultDoc: 'hostname',
          description: 'Name to send in EHLO.',
        },
        mx_port: {
          type: 'integer',
          default: 25,
          min: 1,
          max: 65535,
          description: 'Port to connect to on MX hosts (change only for tests).',
        },
        tls: {
          type: 'string',
          enum: ['none', 'opportunistic', 'require', 'verify'],
          default: 'opportunistic',
          description:
            'TLS toward MX hosts: STARTTLS when offered (opportunistic), required, or required with a verified certificate.',
        },
        connect_timeout: timeout('30s', 'Time allowed to open a connection.'),
        greeting_timeout: timeout('5m', 'Wait for the 220 greeting (RFC 5321 §4.5.3.2.1).'),
        command_timeout: timeout('5m', 'Wait for the reply to EHLO, MAIL, RCPT (§4.5.3.2.2-3).'),
        data_init_timeout: timeout('2m', 'Wait for the 354 after DATA (§4.5.3.2.4).'),
        data_block_timeout: timeout(
          '3m',
          'Time allowed for each block of message text to be sent (§4.5.3.2.5).',
        ),
        data_done_timeout: timeout('10m', 'Wait for the reply after the final dot (§4.5.3.2.6).'),
        max_per_destination: {
          type: 'integer',
          default: 10,
          min: 1,
          description: 'Connections open at once to one destination.',
        },
      },
    },
    queue: {
      type: 'table',
      description: 'Retries and expiry.',
      fields: {
        retry: {
          type: 'list',
          of: { type: 'duration', description: '' },
          minItems: 1,
          default: ['1m', '5m', '15m', '30m', '1h', '2h', '4h'],
          description: 'Wait before each retry; the last step repeats until `max_age`.',
        },
        max_age: {
          type: 'duration',
          default: '5d',
          minMs: 1000,
          description: 'Return a message to its sender when still undelivered this long after arrival.',
        },
        delay_warning: {
          type: 'duration',
          default: '4h',
          description:
            'Tell the sender (a "delayed" DSN) once a recipient has waited this long. `"0"` turns it off.',
        },
        concurrency: { type: 'integer', default: 20, min: 1, description: 'Deliveries in progress at once.' },
        hold: {
          type: 'boolean',
          default: false,
          description:
            'Accept and queue mail durably but deliver none of it (maintenance, a holding backup MX; like ' +
            "Postfix's hold queue or Exim's queue_only). Set it back to false and send SIGHUP to deliver.",
        },
      },
    },
    log: {
      type: 'table',
      description: 'Logging (JSON lines on stdout; short readable lines when stdout is a terminal).',
      fields: {
        level: {
          type: 'string',
          enum: ['debug', 'info', 'warn', 'error'],
          default: 'info',
          description: 'Least severe level logged.',
        },
        format: {
          type: 'string',
          enum: ['json', 'pretty'],
          optional: true,
          defaultDoc: 'pretty on a terminal, else json',
          description: 'One JSON object a line, or text for people.',
        },
      },
    },
    metrics: {
      type: 'table',
      optional: true,
      description: 'Prometheus metrics at `/metrics` and a health check at `/health`, over HTTP.',
      fields: {
        address: {
          type: 'string',
          check: checkHostPort,
          expect: HOST_PORT_EXPECT,
          example: '"127.0.0.1:9025"',
          description: 'Where to serve them.',
        },
      },
    },
    user: {
      type: 'string',
      optional: true,
      check: checkAccount,
      example: '"ferrymail"',
      description: 'Switch to this user after binding the listeners (when started as root).',
    },
    group: {
      type: 'string',
      optional: true,
      check: checkAccount,
      example: '"ferrymail"',
      description: 'Switch to this group after binding the listeners.',
    },
    vrfy: {
      type: 'boolean',
      default: false,
      description: 'Answer VRFY truthfully. Off: VRFY gets `252` and tells nothing.',
    },
  },
} satisfies TableField;

// Compile-time guard: the schema's keys and the typed config's keys are the same sets, so neither can
// gain a key the other lacks. (`host`/`port` of listeners and metrics are derived from `address`.)
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Keys<T> = T extends { fields: infer F } ? keyof F : never;
type S = typeof SCHEMA.fields;
const schemaMatchesTypes: [
  Same<keyof S, keyof FerrymailConfig>,
  Same<Keys<S['listeners']['of']>, Exclude<keyof ListenerConfig, 'host' | 'port'>>,
  Same<Keys<S['limits']>, keyof FerrymailConfig['limits']>,
  Same<Keys<S['delivery']>, keyof FerrymailConfig['delivery']>,
  Same<Keys<S['queue']>, keyof FerrymailConfig['queue']>,
  Same<Keys<S['users']>, keyof FerrymailConfig['users']>,
  Same<Keys<S['log']>, keyof FerrymailConfig['log']>,
  Same<Keys<S['domains']>, keyof FerrymailConfig['domains']>,
  Same<Keys<S['tls']>, keyof NonNullable<FerrymailConfig['tls']>>,
  Same<Keys<S['metrics']>, Exclude<keyof NonNullable<FerrymailConfig['metrics']>, 'host' | 'port'>>,
  Same<Keys<S['routes']['of']['other']>, keyof RouteConfig>,
] = [true, true, true, true, true, true, true, true, true, true, true];
void schemaMatchesTypes;
