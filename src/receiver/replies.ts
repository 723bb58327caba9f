/**
 * @module receiver/replies
 * The receiver's named replies in one place (RFC 5321 section 4.2-4.3, enhanced codes RFC 3463), so the
 * wording and codes are consistent and testable.
 */
import { reply, type Reply } from '../smtp/reply.js';

export const R = {
  ok: () => reply(250, '2.0.0', 'Ok'),
  senderOk: (addr: string) => reply(250, '2.1.0', `Sender <${addr}> ok`),
  rcptOk: (addr: string) => reply(250, '2.1.5', `Recipient <${addr}> ok`),
  queued: (id: string) => reply(250, '2.0.0', `Ok: queued as ${id}`),
  bye: (host: string) => reply(221, '2.0.0', `${host} closing connection`, true),
  help: () =>
    reply(
      214,
      '2.0.0',
      'Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP STARTTLS AUTH\nSee RFC 5321',
    ),
  vrfy: () => reply(252, '2.5.0', 'Cannot VRFY user, but will accept message and attempt delivery'),
  expn: () => reply(252, '2.5.0', 'Cannot EXPN list, but will accept message and attempt delivery'),
  startData: () => reply(354, undefined, 'End data with <CR><LF>.<CR><LF>'),
  tlsGo: () => reply(220, '2.0.0', 'Ready to start TLS'),
  authOk: () => reply(235, '2.7.0', 'Authentication successful'),

  unknown: () => reply(500, '5.5.2', 'Command unrecognized'),
  lineTooLong: (max: number) =>
    reply(500, '5.5.2', `Line too long (the limit is ${max} octets including CRLF)`),
  bareLineEnd: () =>
    reply(500, '5.5.2', 'Bare CR or LF in command; every line must end with CRLF (RFC 5321 section 2.3.8)'),
  badEncoding: () => reply(500, '5.5.2', 'Command is not valid UTF-8'),
  syntax: (text: string) => reply(501, '5.5.4', text),
  notImplemented: (verb: string) => reply(502, '5.5.1', `${verb} is not implemented`),
  sequence: (text: string) => reply(503, '5.5.1', text),
  badParam: (text: string) => reply(555, '5.5.4', text),
  paramNotImpl: (text: string) => reply(504, '5.5.4', text),
  authRequired: () => reply(530, '5.7.0', 'Authentication required'),
  encryptionRequired: () =>
    reply(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  authFailed: () => reply(535, '5.7.8', 'Authentication credentials invalid'),
  authCancelled: () => reply(501, '5.0.0', 'Authentication cancelled'),
  tooManyRcpts: (max: number) => reply(452, '4.5.3', `Too many recipients (at most ${max} per message)`),
  noValidRcpts: () => reply(554, '5.5.1', 'No valid recipients'),
  sizeExceeded: (max: number) =>
    reply(552, '5.3.4', `Message size exceeds fixed maximum message size (${max} octets)`),
  bareInData: () =>
    reply(
      550,
      '5.6.0',
      'Message rejected: bare CR or LF in data; lines must end with CRLF (RFC 5321 section 2.3.8, SMTP smuggling)',
    ),
  longDataLine: (max: number) =>
    reply(500, '5.6.0', `Message rejected: a line is longer than ${max} octets (RFC 5321 section 4.5.3.1.6)`),
  diskFull: () => reply(452, '4.3.1', 'Insufficient system storage; please try again later'),
  localError: () => reply(451, '4.3.0', 'Local error in processing; please try again later'),
  tooManyErrors: () => reply(421, '4.7.0', 'Too many errors; closing connection', true),
  tooManyAuth: () => reply(421, '4.7.0', 'Too many authentication failures; closing connection', true),
  timeout: (host: string) => reply(421, '4.4.2', `${host} Error: timeout exceeded; closing connection`, true),
  shutdown: (host: string) => reply(421, '4.3.2', `${host} Service shutting down; closing connection`, true),
  tooManyConnections: (host: string) =>
    reply(421, '4.7.0', `${host} Too many connections; try again later`, true),
  tooManyFromAddress: (host: string) =>
    reply(421, '4.7.0', `${host} Too many connections from your address`, true),
  tlsUnavailable: () => reply(454, '4.7.0', 'TLS not available'),
  mustStartTls: () => reply(530, '5.7.0', 'Must issue a STARTTLS command first'),
} satisfies Record<string, (...args: never[]) => Reply>;
