/**
 * @module queue/fs-record
 * The on-disk record format of the file-system queue (queue/fs-store.ts), and a scanner that
 * reads a segment file back, stopping at the first record that is not whole and intact.
 *
 * A segment is a sequence of records, each:
 *
 * ```
 *  0  u32  magic 0x464D5131 ("FMQ1": format version 1)
 *  4  u8   type: 1 PUT (message: envelope + states, then data), 2 STATE (recipient states), 3 REMOVE
 *  5  u32  meta length M (UTF-8 JSON)
 *  9  u32  data length D (message bytes, PUT only)
 * 13  u32  CRC-32 of bytes 4..13, the meta and the data
 * 17  M bytes JSON meta, then D bytes data
 * ```
 *
 * All integers big-endian. A record is only ever acknowledged after it is fully written and
 * fsynced, so the first bad record (short, wrong magic, wrong CRC) marks the torn tail of a write
 * that was never acknowledged: the scanner stops there and reports where. Zeros where a record
 * would begin are the unused part of a segment zero-filled ahead (queue/fs-log.ts): a clean end.
 */

import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { Envelope, RecipientState } from './types.js';

export const RECORD_MAGIC = 0x464d5131;
export const HEADER_BYTES = 17;
export const RECORD_PUT = 1;
export const RECORD_STATE = 2;
export const RECORD_REMOVE = 3;
export type RecordType = typeof RECORD_PUT | typeof RECORD_STATE | typeof RECORD_REMOVE;

/** Meta lengths past this are treated as corruption, not allocated. */
const MAX_META_BYTES = 16 * 1024 * 1024;
const BLOCK_BYTES = 1024 * 1024;

export interface PutMeta {
  envelope: Envelope;
  recipients: RecipientState[];
}
export interface StateMeta {
  id: string;
  recipients: RecipientState[];
}
export interface RemoveMeta {
  id: string;
}

/** Encodes one record as buffers ready for writev: header, meta, then the data chunks as given (no copy). */
export function encodeRecord(
  type: RecordType,
  meta: object,
  data: readonly Buffer[] = [],
): { bufs: Buffer[]; bytes: number; metaBytes: number } {
  const json = JSON.stringify(meta);
  const metaBytes = Buffer.byteLength(json, 'utf8');
  let dataBytes = 0;
  for (const d of data) dataBytes += d.length;
  // Refuse here what the scanner would refuse on replay: a record must never be written unreadable.
  if (metaBytes > MAX_META_BYTES) {
    throw new RangeError(`Cannot queue: the envelope is ${metaBytes} bytes, over ${MAX_META_BYTES}`);
  }
  if (dataBytes > 0xffffffff)
    throw new RangeError(`Cannot queue: the message is ${dataBytes} bytes, over 4 GiB`);
  // Header and meta in one buffer: one allocation and one iovec fewer per record.
  const head = Buffer.allocUnsafe(HEADER_BYTES + metaBytes);
  head.writeUInt32BE(RECORD_MAGIC, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32BE(metaBytes, 5);
  head.writeUInt32BE(dataBytes, 9);
  head.write(json, HEADER_BYTES, 'utf8');
  let crc = crc32(head.subarray(4, 13));
  crc = crc32(head.subarray(HEADER_BYTES), crc);
  for (const d of data) crc = crc32(d, crc);
  head.writeUInt32BE(crc >>> 0, 13);
  return { bufs: [head, ...data], bytes: HEADER_BYTES + metaBytes + dataBytes, metaBytes };
}

export interface ScannedRecord {
  type: RecordType;
  meta: unknown;
  /** Offset of the record's first byte in the segment. */
  offset: number;
  /** Offset and length of the data (PUT). */
  dataOffset: number;
  dataBytes: number;
  /** Whole record length. */
  bytes: number;
}

export interface ScanResult {
  /** Offset just past the last good record. */
  end: number;
  /** Why the scan stopped before the end of the file, if it did. */
  torn?: string;
  /** The records end where the zero-filled, preallocated rest of the file begins. */
  zeroFilled?: true;
}

/** Reads ranges of a file through a 1 MiB window, so a sequential scan costs few reads. */
class Window {
  #buf = Buffer.alloc(0);
  #start = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}

  /** Bytes [start, start+len), or null if the file is shorter. The result is valid until the next call. */
  async get(start: number, len: number): Promise<Buffer | null> {
    if (start + len > this.size) return null;
    if (start >= this.#start && start + len <= this.#start + this.#buf.length) {
      return this.#buf.subarray(start - this.#start, start - this.#start + len);
    }
    const want = Math.min(Math.max(len, BLOCK_BYTES), this.size - start);
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await this.fh.read(buf, got, want - got, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    this.#buf = buf.subarray(0, got);
    this.#start = start;
    return got >= len ? this.#buf.subarray(0, len) : null;
  }
}

async function zerosToEnd(win: Window, from: number, size: number): Promise<boolean> {
  for (let off = from; off < size;) {
    const n = Math.min(BLOCK_BYTES, size - off);
    const chunk = await win.get(off, n);
    if (!chunk || !isZero(chunk)) return false;
    off += n;
  }
  return true;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Visits every intact record of a segment in order; stops at the first bad one. */
export async function scanSegment(
  fh: FileHandle,
  size: number,
  visit: (record: ScannedRecord) => void,
): Promise<ScanResult> {
  const win = new Window(fh, size);
  let pos = 0;
  while (pos < size) {
    const header = await win.get(pos, HEADER_BYTES);
    if (!header) {
      // Fewer zeros than a header: the records ended just short of the end of a fill.
      const rest = await win.get(pos, size - pos);
      return rest && isZero(rest) ? { end: pos, zeroFilled: true } : { end: pos, torn: 'short header' };
    }
    // Zeros to the end of the file: the unused, preallocated part of the segment
    // (queue/fs-log.ts), a clean end. Zeros with data after them are damage (or the torn tail of
    // a batch whose start never reached the disk), reported as such.
    if (isZero(header)) {
      return (await zerosToEnd(win, pos, size))
        ? { end: pos, zeroFilled: true }
        : { end: pos, torn: 'zeros followed by data' };
    }
    if (header.readUInt32BE(0) !== RECORD_MAGIC) return { end: pos, torn: 'bad magic' };
    const type = header.readUInt8(4);
    const metaBytes = header.readUInt32BE(5);
    const dataBytes = header.readUInt32BE(9);
    const expected = header.readUInt32BE(13);
    if (type !== RECORD_PUT && type !== RECORD_STATE && type !== RECORD_REMOVE)
      return { end: pos, torn: 'bad type' };
    if (metaBytes > MAX_META_BYTES) return { end: pos, torn: 'bad meta length' };
    const bytes = HEADER_BYTES + metaBytes + dataBytes;
    if (pos + bytes > size) return { end: pos, torn: 'short record' };
    let crc = crc32(header.subarray(4, 13));
    const metaBuf = await win.get(pos + HEADER_BYTES, metaBytes);
    if (!metaBuf) return { end: pos, torn: 'short meta' };
    const metaText = metaBuf.toString('utf8');
    crc = crc32(metaBuf, crc);
    const dataOffset = pos + HEADER_BYTES + metaBytes;
    for (let off = 0; off < dataBytes;) {
      const n = Math.min(BLOCK_BYTES, dataBytes - off);
      const chunk = await win.get(dataOffset + off, n);
      if (!chunk) return { end: pos, torn: 'short data' };
      crc = crc32(chunk, crc);
      off += n;
    }
    if (crc >>> 0 !== expected) return { end: pos, torn: 'checksum mismatch' };
    let meta: unknown;
    try {
      meta = JSON.parse(metaText);
    } catch {
      return { end: pos, torn: 'bad meta JSON' };
    }
    visit({ type, meta, offset: pos, dataOffset, dataBytes, bytes });
    pos += bytes;
  }
  return { end: pos };
}
