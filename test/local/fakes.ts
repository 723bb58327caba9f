/**
 * @module test/local/fakes
 * A MaildirFs over the real file system that fails one chosen operation with a chosen errno code,
 * and records directory fsyncs.
 */
import * as fs from 'node:fs/promises';
import { constants } from 'node:fs';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MaildirFs, MaildirFile } from '../../src/local/maildir.js';

export type FailPoint = 'write' | 'sync' | 'rename' | 'open-tmp' | 'mkdir' | 'sync-new';

export interface RecordingFs extends MaildirFs {
  synced: string[];
  failures: number;
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected failure`), { code });
}

export function faultyFs(fail?: { at: FailPoint; code: string; times?: number }): RecordingFs {
  let left = fail?.times ?? Infinity;
  const trip = (at: FailPoint): void => {
    if (fail && fail.at === at && left > 0) {
      left--;
      self.failures++;
      throw errno(fail.code);
    }
  };
  const self: RecordingFs = {
    synced: [],
    failures: 0,
    async mkdir(path, options) {
      trip('mkdir');
      return fs.mkdir(path, options);
    },
    async open(path, flags, mode) {
      // Directories are opened read-only for fsync; only the message file is created.
      const isTmpFile = typeof flags === 'number' && (flags & constants.O_CREAT) !== 0;
      if (isTmpFile) trip('open-tmp');
      const h = await fs.open(path, flags, mode);
      const file: MaildirFile = {
        async write(buffer, offset, length, position) {
          trip('write');
          return h.write(buffer, offset, length, position);
        },
        async sync() {
          if (isTmpFile) trip('sync');
          else {
            if (path.endsWith('/new')) trip('sync-new');
            self.synced.push(path);
          }
          return h.sync();
        },
        close: () => h.close(),
      };
      return file;
    },
    async rename(from, to) {
      trip('rename');
      return fs.rename(from, to);
    },
    unlink: (p) => fs.unlink(p),
  };
  return self;
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ferrymail-local-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Files in `<maildir>/{tmp,new,cur}`. */
export async function listMaildir(dir: string): Promise<{ tmp: string[]; new: string[]; cur: string[] }> {
  const ls = async (sub: string): Promise<string[]> => (await readdir(join(dir, sub))).sort();
  return { tmp: await ls('tmp'), new: await ls('new'), cur: await ls('cur') };
}
