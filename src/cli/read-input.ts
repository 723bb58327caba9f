/**
 * @module cli/read-input
 * Reading a message from sendmail's standard input. Without `-i`, a line holding a single dot ends the
 * input, as classic sendmail does (the dot line and anything after it are not part of the message, and
 * reading stops there so an interactive writer is not waited for). With `-i`, only end of file ends it.
 * No dot-unstuffing: this is not SMTP.
 */
import type { Readable } from 'node:stream';

export type InputResult = { ok: true; data: Buffer } | { ok: false; tooBig: true };

const LINE_START = 0;
const DOT = 1;
const DOT_CR = 2;
const OTHER = 3;

/** Reads `stream` to its end or to a dot line; gives up once more than `maxBytes` have arrived. */
export function readInput(
  stream: Readable,
  opts: { ignoreDots: boolean; maxBytes: number },
): Promise<InputResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let state = LINE_START;
    let dotAt = -1;
    let done = false;
    const finish = (r: InputResult) => {
      if (done) return;
      done = true;
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.pause();
      resolve(r);
    };
    const onData = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      if (!opts.ignoreDots) {
        for (let i = 0; i < buf.length; i++) {
          const b = buf[i];
          if (b === 0x0a) {
            if (state === DOT || state === DOT_CR) {
              chunks.push(buf);
              finish({ ok: true, data: Buffer.concat(chunks).subarray(0, dotAt) });
              return;
            }
            state = LINE_START;
          } else if (state === LINE_START && b === 0x2e) {
            state = DOT;
            dotAt = total + i;
          } else if (state === DOT && b === 0x0d) state = DOT_CR;
          else state = OTHER;
        }
      }
      chunks.push(buf);
      total += buf.length;
      if (total > opts.maxBytes) finish({ ok: false, tooBig: true });
    };
    const onEnd = () => {
      const data = Buffer.concat(chunks);
      // A last line "." without its newline still ends the message.
      finish({
        ok: true,
        data: !opts.ignoreDots && (state === DOT || state === DOT_CR) ? data.subarray(0, dotAt) : data,
      });
    };
    const onError = (err: Error) => {
      if (done) return;
      done = true;
      reject(err);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}
