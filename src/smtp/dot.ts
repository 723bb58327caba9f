/**
 * @module smtp/dot
 * The DATA stream of RFC 5321 §4.1.1.4 and §4.5.2: an incremental decoder that removes dot-stuffing
 * and finds the end-of-data `CRLF.CRLF`, and its encoder twin for the sender-SMTP.
 *
 * Invariant (DESIGN 5, SMTP smuggling): only CRLF "." CRLF ends the data. A bare LF or a bare CR is
 * never a line end: the decoder keeps it as data, flags it, and goes on looking for the real
 * terminator; the receiver then rejects the whole message. So `\n.\n`, `\r.\r`, `\r\n.\n` and
 * friends can never end a message early or start a smuggled transaction.
 *
 * The decoder does not copy: it emits subarrays of the input buffers, so callers must not reuse
 * the buffers they push. It is correct whatever the chunking, one byte at a time or megabytes.
 */

const CR = 13;
const LF = 10;
const DOT = 46;

const enum S {
  /** At the start of a line (after CRLF, or at the very start of the data). */
  LineStart,
  /** Inside a line. */
  Mid,
  /** Saw CR inside a line; an LF must follow. */
  Cr,
  /** Saw "." at the start of a line. */
  Dot,
  /** Saw "." CR at the start of a line: LF ends the data. */
  DotCr,
}

export interface DotDecoderOptions {
  /** Stop keeping data past this many decoded bytes (the rest is still scanned for the terminator). */
  maxBytes?: number;
  /** Longest line in octets including CRLF (RFC 5321 §4.5.3.1.6: 1000); 0 for no check. */
  maxLineLength?: number;
}

export interface DotPushResult {
  /** Decoded data, as subarrays of the input. Empty once maxBytes is exceeded. */
  chunks: Buffer[];
  /** Bytes of the input used, including the terminator when `done`. */
  consumed: number;
  /** True once CRLF.CRLF was seen; bytes after `consumed` belong to the command stream. */
  done: boolean;
}

export class DotDecoder {
  private state: S = S.LineStart;
  private lineLen = 0;
  private readonly maxBytes: number;
  private readonly maxLine: number;
  /** Decoded bytes so far (including any past maxBytes, which are not kept). */
  size = 0;
  bareLf = false;
  bareCr = false;
  longLine = false;

  constructor(opts: DotDecoderOptions = {}) {
    this.maxBytes = opts.maxBytes ?? Infinity;
    this.maxLine = opts.maxLineLength ?? 0;
  }

  get tooBig(): boolean {
    return this.size > this.maxBytes;
  }

  /** Any reason to refuse the message once the terminator arrives. */
  get defect(): 'bare-lf' | 'bare-cr' | 'long-line' | 'too-big' | null {
    if (this.bareLf) return 'bare-lf';
    if (this.bareCr) return 'bare-cr';
    if (this.tooBig) return 'too-big';
    if (this.longLine) return 'long-line';
    return null;
  }

  push(buf: Buffer): DotPushResult {
    const chunks: Buffer[] = [];
    let segStart = 0; // start of the pending output segment in buf
    let i = 0;
    const n = buf.length;
    // Cached positions of the next LF / CR at or after i (-1: none left), so that input with no
    // CR at all (an attack) costs linear time, not one scan of the buffer per line.
    let lfPos = buf.indexOf(LF);
    let crPos = buf.indexOf(CR);
    const emit = (end: number) => {
      if (end > segStart) {
        const len = end - segStart;
        this.size += len;
        if (this.size <= this.maxBytes) chunks.push(buf.subarray(segStart, end));
      }
    };
    while (i < n) {
      switch (this.state) {
        case S.LineStart: {
          const c = buf[i] as number;
          this.lineLen = 0;
          if (c === DOT) {
            emit(i);
            i++;
            segStart = i; // the dot is dropped (stuffing); re-added below when it is content
            this.state = S.Dot;
          } else {
            this.state = S.Mid;
          }
          break;
        }
        case S.Mid: {
          // Fast path: jump to the next LF and check that the only CR is just before it.
          if (lfPos !== -1 && lfPos < i) lfPos = buf.indexOf(LF, i);
          if (crPos !== -1 && crPos < i) crPos = buf.indexOf(CR, i);
          const lf = lfPos;
          const cr = crPos;
          if (cr >= 0 && (lf < 0 || cr < lf - 1)) {
            // A CR that is not right before an LF (yet): handle it byte-wise. The CR counts
            // toward the line length here, whatever the chunking (the fast path counts it too).
            this.countLine(cr + 1 - i);
            i = cr + 1;
            this.state = S.Cr;
            break;
          }
          if (lf < 0) {
            this.countLine(n - i);
            i = n;
            break;
          }
          if (cr >= 0 && cr === lf - 1) {
            this.countLine(lf + 1 - i);
            i = lf + 1;
            this.state = S.LineStart;
          } else {
            this.bareLf = true;
            this.countLine(lf + 1 - i);
            i = lf + 1;
            this.state = S.Mid; // a bare LF is data, not a line end
          }
          break;
        }
        case S.Cr: {
          const c = buf[i] as number;
          if (c === LF) {
            this.countLine(1);
            i++;
            this.state = S.LineStart;
          } else {
            this.bareCr = true;
            this.state = S.Mid; // reprocess c as ordinary data (it may itself be CR)
          }
          break;
        }
        case S.Dot: {
          const c = buf[i] as number;
          if (c === CR) {
            i++;
            this.state = S.DotCr;
          } else {
            // ".x": a stuffed line; the dot was dropped, x is data.
            this.lineLen = 1;
            this.state = S.Mid;
          }
          break;
        }
        case S.DotCr: {
          const c = buf[i] as number;
          if (c === LF) {
            emit(segStart); // nothing pending: segStart was set after the dot
            this.state = S.LineStart;
            return { chunks, consumed: i + 1, done: true };
          }
          // ".\r" followed by something else: the dot was stuffing, "\r" is a bare CR in data.
          this.bareCr = true;
          // Re-emit the CR that we swallowed: it sits at i-1 in this buffer, or in the previous one.
          if (i >= 1 && buf[i - 1] === CR) {
            segStart = i - 1;
          } else {
            this.pushCr(chunks);
          }
          this.lineLen = 2;
          this.state = S.Mid;
          break;
        }
      }
    }
    if (this.state === S.Dot || this.state === S.DotCr) {
      // Hold nothing back: the dot is already dropped; a pending CR (DotCr) is re-added later if needed.
      const end = this.state === S.DotCr ? n - 1 : n;
      emit(Math.max(segStart, Math.min(end, n)));
      segStart = n;
      return { chunks, consumed: n, done: false };
    }
    emit(n);
    return { chunks, consumed: n, done: false };
  }

  private pushCr(chunks: Buffer[]): void {
    this.size += 1;
    if (this.size <= this.maxBytes) chunks.push(Buffer.from([CR]));
  }

  private countLine(k: number): void {
    if (this.maxLine === 0) return;
    this.lineLen += k;
    if (this.lineLen > this.maxLine) this.longLine = true;
  }
}

/**
 * Encode a message for the DATA phase: CRLF line ends everywhere (a bare CR or LF in the stored
 * message becomes CRLF, so we never hand a smuggling sequence to the next hop), a dot added to
 * every line that starts with one, and the terminator `CRLF.CRLF` appended.
 */
export function dotEncode(message: Buffer): Buffer {
  const out: Buffer[] = [];
  let start = 0;
  let lineStart = true;
  const n = message.length;
  for (let i = 0; i < n; i++) {
    const c = message[i] as number;
    if (lineStart && c === DOT) {
      out.push(message.subarray(start, i), DOT_BUF);
      start = i;
    }
    lineStart = false;
    if (c === CR) {
      if (message[i + 1] === LF) {
        i++;
        lineStart = true;
        continue;
      }
      out.push(message.subarray(start, i), CRLF_BUF); // bare CR
      start = i + 1;
      lineStart = true;
    } else if (c === LF) {
      out.push(message.subarray(start, i), CRLF_BUF); // bare LF
      start = i + 1;
      lineStart = true;
    }
  }
  out.push(message.subarray(start));
  out.push(n === 0 || lineStart ? END_BUF : CRLF_END_BUF);
  return Buffer.concat(out);
}

const DOT_BUF = Buffer.from('.');
const CRLF_BUF = Buffer.from('\r\n');
const END_BUF = Buffer.from('.\r\n');
const CRLF_END_BUF = Buffer.from('\r\n.\r\n');
