/**
 * @module queue/id
 * Queue ids: 14 characters of Crockford base32 (`0-9A-Z` without I, L, O, U), built from 45 bits of
 * milliseconds since the epoch (9 chars, good until the year 3084), a 10-bit counter (2 chars) and
 * 15 random bits (3 chars). Ids from one generator are strictly increasing, so sorting ids sorts
 * messages by arrival; the random part keeps ids from separate processes or nodes apart.
 * The alphabet is in ASCII order, so plain string comparison is time order.
 */

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_CHARS = 9;
const COUNTER_MAX = 1024;
const RANDOM_MAX = 32768;
const MAX_TIME = 2 ** 45 - 1;

/** Matches a queue id made by {@link QueueIdGenerator}. */
export const QUEUE_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{14}$/;

export function isQueueId(s: string): boolean {
  return QUEUE_ID_PATTERN.test(s);
}

export interface QueueIdGeneratorOptions {
  /** Milliseconds since the epoch. @default Date.now */
  now?: () => number;
  /** Uniform in [0, 1). @default Math.random */
  random?: () => number;
}

function encode(value: number, chars: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < chars; i++) {
    out = ALPHABET[v % 32]! + out;
    v = Math.floor(v / 32);
  }
  return out;
}

export class QueueIdGenerator {
  readonly #now: () => number;
  readonly #random: () => number;
  #lastTime = -1;
  #counter = 0;

  constructor(options: QueueIdGeneratorOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
  }

  next(): string {
    const now = Math.floor(this.#now());
    if (!Number.isFinite(now) || now < 0 || now > MAX_TIME) {
      throw new RangeError(`Cannot make a queue id: the clock must give 0..2^45 ms: current value is ${now}`);
    }
    // A clock that steps back, or more than 1024 ids in one ms, borrow the next millisecond:
    // ids stay strictly increasing and the drift is at most the burst length.
    if (now > this.#lastTime) {
      this.#lastTime = now;
      this.#counter = 0;
    } else if (this.#counter + 1 < COUNTER_MAX) {
      this.#counter++;
    } else {
      this.#lastTime++;
      this.#counter = 0;
    }
    const rnd = Math.min(RANDOM_MAX - 1, Math.floor(this.#random() * RANDOM_MAX));
    return encode(this.#lastTime, TIME_CHARS) + encode(this.#counter, 2) + encode(rnd, 3);
  }
}

/** The millisecond timestamp encoded in a queue id (its first 9 characters). */
export function queueIdTime(id: string): number {
  if (!isQueueId(id))
    throw new TypeError(`Cannot read the time of a queue id: not a queue id: ${JSON.stringify(id)}`);
  let v = 0;
  for (let i = 0; i < TIME_CHARS; i++) v = v * 32 + ALPHABET.indexOf(id[i]!);
  return v;
}
