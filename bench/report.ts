/**
 * @module bench/report
 * Turns one benchmark run (bench/results/: throughput.csv, latency.csv, mem.csv, core.json,
 * meta.json) into BENCHMARKS.md and SVG plots:
 * `tsx bench/report.ts RESULTS_DIR BENCHMARKS_MD [PLOTS_DIR]` (plots default to bench/plots/, which
 * is committed with BENCHMARKS.md; the raw results are not).
 * Every cell is a median over the run's interleaved rounds; ratios are ferrymail / peer within
 * the same run, which is what the targets of the performance issue are about.
 */
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  parseCsv,
  groupCells,
  fmt,
  fmtCell,
  fmtRatio,
  ratio,
  mdTable,
  type Row,
  type Cell,
} from './report/table.js';
import { linePlot, type Series } from './report/svg.js';

const benchDir = dirname(fileURLToPath(import.meta.url));
const [
  resultsDir = join(benchDir, 'results'),
  outFile = 'BENCHMARKS.md',
  plotsDir = join(benchDir, 'plots'),
] = process.argv.slice(2);
const read = (name: string): string | undefined =>
  existsSync(join(resultsDir, name)) ? readFileSync(join(resultsDir, name), 'utf8') : undefined;
const meta = JSON.parse(read('meta.json') ?? '{}') as Record<string, unknown>;
const tput = parseCsv(read('throughput.csv') ?? '');
const lat = parseCsv(read('latency.csv') ?? '');
const mem = parseCsv(read('mem.csv') ?? '');
const fsyncRuns = (read('fsync.jsonl') ?? '')
  .split('\n')
  .filter((l) => l.trim().startsWith('{'))
  .map((l) => JSON.parse(l) as Record<string, unknown>);
const coreText = read('core.json')?.trim();
const core = coreText ? (JSON.parse(coreText) as Record<string, number | string>) : undefined;
const ferryMeasured = meta.ferrymail_measured === true;
const NOT_YET = 'not yet measured';

const PEERS = ['sink', 'postfix', 'postfix-relay', 'haraka', 'smtp-server', 'ferrymail'];
const NAMES: Record<string, string> = {
  sink: 'smtp-sink (ceiling)',
  postfix: 'Postfix',
  'postfix-relay': 'Postfix, relaying',
  haraka: 'Haraka',
  'smtp-server': 'smtp-server',
  ferrymail: '**ferrymail**',
};
const num = (r: Row, k: string): number => (r[k] === undefined || r[k] === '' ? NaN : Number(r[k]));
const sortNum = (a: string, b: string): number => Number(a) - Number(b);
const uniq = (rows: readonly Row[], k: string): string[] => [...new Set(rows.map((r) => r[k] ?? ''))];
const order = (servers: readonly string[]): string[] =>
  [...servers].sort((a, b) => PEERS.indexOf(a) - PEERS.indexOf(b));

// ---- throughput -----------------------------------------------------------------------------
const tkey = (r: Row): string => [r.kind, r.mode, r.R, r.server, r.C].join('|');
const failedRun = (r: Row): boolean => r.rc !== '0' || num(r, 'count') < num(r, 'M');
const rateCells = groupCells(tput, tkey, (r) => num(r, 'rate'), failedRun);
const acceptCells = groupCells(tput, tkey, (r) => num(r, 'accept_rate'), failedRun);
const rateOf = (kind: string, mode: string, R: string, server: string, C: string): number | undefined =>
  rateCells.get([kind, mode, R, server, C].join('|'))?.median;

const outDir = dirname(resolve(outFile));
const link = (path: string): string => relative(outDir, resolve(path));
const readme = join(benchDir, 'README.md');
const plots: string[] = [];
function plot(file: string, title: string, kind: string, mode: string, R: string): string {
  const rows = tput.filter((r) => r.kind === kind && r.mode === mode && r.R === R);
  const series: Series[] = order(uniq(rows, 'server')).map((s) => ({
    name: s,
    points: uniq(rows, 'C').map((C) => ({ x: Number(C), y: rateOf(kind, mode, R, s, C) ?? NaN })),
  }));
  mkdirSync(plotsDir, { recursive: true });
  const path = join(plotsDir, file);
  writeFileSync(
    path,
    linePlot(series, { title, xLabel: 'concurrent sessions (smtp-source -s)', yLabel: 'messages/s' }),
  );
  plots.push(path);
  return `![${title}](${link(path)})`;
}

function throughputSection(kind: string, what: string, withAccept: boolean): string {
  const rows = tput.filter((r) => r.kind === kind);
  if (rows.length === 0) return 'No runs.\n';
  const out: string[] = [];
  for (const mode of uniq(rows, 'mode')) {
    for (const R of uniq(
      rows.filter((r) => r.mode === mode),
      'R',
    ).sort(sortNum)) {
      const sel = rows.filter((r) => r.mode === mode && r.R === R);
      const Cs = uniq(sel, 'C').sort(sortNum);
      const servers = order(uniq(sel, 'server'));
      const modeText =
        mode === 'reuse'
          ? 'each session reuses its connection (smtp-source -d)'
          : 'one message per connection';
      out.push(`#### ${R} recipient${R === '1' ? '' : 's'} per message, ${modeText}: ${what}\n`);
      const body: string[][] = servers.map((s) =>
        [NAMES[s] ?? s].concat(
          Cs.map((C) => {
            const k = [kind, mode, R, s, C].join('|');
            const main = fmtCell(rateCells.get(k), 0);
            return withAccept ? `${main}<br>accept ${fmt(acceptCells.get(k)?.median ?? NaN)}` : main;
          }),
        ),
      );
      if (!servers.includes('ferrymail')) body.push([NAMES.ferrymail as string, ...Cs.map(() => NOT_YET)]);
      for (const peer of servers.filter((s) => s !== 'ferrymail')) {
        body.push(
          [`ferrymail / ${peer}`].concat(
            Cs.map((C) =>
              servers.includes('ferrymail')
                ? fmtRatio(ratio(rateOf(kind, mode, R, 'ferrymail', C), rateOf(kind, mode, R, peer, C)))
                : NOT_YET,
            ),
          ),
        );
      }
      out.push(mdTable(['messages/s', ...Cs.map((C) => `C=${C}`)], body), '');
      if (kind === 'accept' || (kind === 'relay' && R === '1')) {
        const how = mode === 'reuse' ? 'sessions reused (-d)' : 'one msg per connection';
        out.push(
          plot(`${kind}-${mode}-r${R}.svg`, `${kind}: ${R} rcpt/msg, ${how}, 4 KiB`, kind, mode, R),
          '',
        );
      }
    }
  }
  return out.join('\n');
}

// ---- targets --------------------------------------------------------------------------------
interface Target {
  what: string;
  measured: string;
  verdict: string;
}
function ratioTarget(what: string, kind: string, peer: string, Cs: string[], want: number): Target {
  if (!ferryMeasured) return { what, measured: NOT_YET, verdict: NOT_YET };
  const parts: string[] = [];
  let worst = Infinity;
  for (const mode of uniq(
    tput.filter((r) => r.kind === kind),
    'mode',
  )) {
    for (const R of uniq(
      tput.filter((r) => r.kind === kind && r.mode === mode),
      'R',
    ).sort(sortNum)) {
      for (const C of Cs) {
        const x = ratio(rateOf(kind, mode, R, 'ferrymail', C), rateOf(kind, mode, R, peer, C));
        if (!Number.isFinite(x)) continue;
        worst = Math.min(worst, x);
        parts.push(`${fmtRatio(x)} (C=${C}, R=${R}${mode === 'reuse' ? ', -d' : ''})`);
      }
    }
  }
  if (parts.length === 0) return { what, measured: 'n/a', verdict: 'n/a' };
  const verdict =
    worst >= want
      ? 'met'
      : `**missed**: worst ${fmtRatio(worst)}, ${fmt((1 - worst / want) * 100, 0)}% short`;
  return { what, measured: parts.join(', '), verdict };
}

function memCell(server: string, N: string): Row | undefined {
  return mem.find((r) => r.server === server && r.N === N);
}

function targets(): Target[] {
  const t: Target[] = [
    ratioTarget('durable accept >= 2.0x Postfix (20, 100 sessions)', 'accept', 'postfix', ['20', '100'], 2),
    ratioTarget('durable accept >= 3x Haraka (20, 100 sessions)', 'accept', 'haraka', ['20', '100'], 3),
    ratioTarget(
      'durable accept >= 3x smtp-server (20, 100 sessions)',
      'accept',
      'smtp-server',
      ['20', '100'],
      3,
    ),
    ratioTarget('relay end to end >= 2.0x Postfix', 'relay', 'postfix', uniq(tput, 'C').sort(sortNum), 2),
    ratioTarget('accept within 50% of smtp-sink (100 sessions)', 'accept', 'sink', ['100'], 0.5),
  ];
  const m1k = memCell('ferrymail', '1000');
  const m10k = memCell('ferrymail', '10000');
  if (!ferryMeasured || (!m1k && !m10k)) {
    t.push({ what: '<= 16 KiB RSS per idle connection', measured: NOT_YET, verdict: NOT_YET });
    t.push({ what: '10,000 concurrent connections served', measured: NOT_YET, verdict: NOT_YET });
  } else {
    const per = [m1k, m10k].filter((r): r is Row => r !== undefined);
    const worst = Math.max(...per.map((r) => num(r, 'rss_per_conn_kib')));
    t.push({
      what: '<= 16 KiB RSS per idle connection',
      measured: per.map((r) => `${fmt(num(r, 'rss_per_conn_kib'))} KiB (N=${r.N})`).join(', '),
      verdict: worst <= 16 ? 'met' : `**missed** by ${fmt(worst - 16)} KiB`,
    });
    t.push({
      what: '10,000 concurrent connections served',
      measured: m10k ? `${m10k.idle} idle after EHLO, ${m10k.failed} failed` : 'not run',
      verdict: m10k && m10k.idle === '10000' ? 'met' : '**missed**',
    });
  }
  const p99 = (s: string): number => latCells.get(s)?.p99.median ?? NaN;
  if (!ferryMeasured || !latCells.has('ferrymail')) {
    t.push({ what: "p99 latency at 1 session <= Postfix's", measured: NOT_YET, verdict: NOT_YET });
  } else {
    // the stricter of Postfix's two set-ups: its hold queue, and relaying (ferrymail's own work)
    const f = p99('ferrymail');
    const hold = p99('postfix');
    const relaying = p99('postfix-relay');
    const best = Math.min(...[hold, relaying].filter((x) => Number.isFinite(x)));
    t.push({
      what: "p99 latency at 1 session <= Postfix's",
      measured: `${fmt(f, 2)} ms vs ${fmt(hold, 2)} ms (Postfix, hold) and ${fmt(relaying, 2)} ms (Postfix, relaying)`,
      verdict: !Number.isFinite(best) ? 'n/a' : f <= best ? 'met' : `**missed** by ${fmt(f - best, 2)} ms`,
    });
  }
  return t;
}

// ---- latency, memory, core ------------------------------------------------------------------
const latCells = new Map<string, { median: Cell; p99: Cell; errors: number }>();
for (const s of uniq(lat, 'server')) {
  const rs = lat.filter((r) => r.server === s);
  latCells.set(s, {
    median: groupCells(
      rs,
      () => s,
      (r) => num(r, 'median_ms'),
    ).get(s) as Cell,
    p99: groupCells(
      rs,
      () => s,
      (r) => num(r, 'p99_ms'),
    ).get(s) as Cell,
    errors: rs.reduce((a, r) => a + (num(r, 'errors') || 0), 0),
  });
}

function latencySection(): string {
  if (lat.length === 0) return 'No runs.\n';
  const servers = order([...latCells.keys()]);
  const rows = servers.map((s) => {
    const c = latCells.get(s);
    return [NAMES[s] ?? s, fmtCell(c?.median, 2), fmtCell(c?.p99, 2), String(c?.errors ?? '')];
  });
  if (!latCells.has('ferrymail')) rows.push([NAMES.ferrymail as string, NOT_YET, NOT_YET, '']);
  const n = lat[0]?.n ?? '?';
  return `${n} transactions per run, one session, lock-step (MAIL, RCPT, DATA, 4 KiB, then the 250), timed from MAIL to the 250 after the data.\n\n${mdTable(['server', 'median ms', 'p99 ms', 'errors'], rows)}\n`;
}

function memorySection(): string {
  if (mem.length === 0) return 'No runs.\n';
  const rows = order(uniq(mem, 'server')).flatMap((s) =>
    mem
      .filter((r) => r.server === s)
      .sort((a, b) => sortNum(a.N ?? '', b.N ?? ''))
      .map((r) => [
        NAMES[s] ?? s,
        r.N ?? '',
        `${r.idle} / ${r.failed}`,
        `${r.procs_before} → ${r.procs_during}`,
        `${fmt(num(r, 'rss_before_kib') / 1024)} → ${fmt(num(r, 'rss_during_kib') / 1024)} MiB`,
        `**${fmt(num(r, 'rss_per_conn_kib'))}**`,
        fmt(num(r, 'pss_per_conn_kib')),
        fmt(num(r, 'setup_ms') / 1000, 2) + ' s',
      ]),
  );
  if (!mem.some((r) => r.server === 'ferrymail'))
    rows.push([NAMES.ferrymail as string, '1000, 10000', NOT_YET, '', '', '', '', '']);
  return (
    mdTable(
      [
        'server',
        'idle sessions',
        'idle / failed',
        'processes',
        'RSS before → during',
        'RSS KiB/conn',
        'PSS KiB/conn',
        'set-up',
      ],
      rows,
    ) +
    "\n\nPer connection = (during − before) / idle sessions, summed over the server's processes. For a server with a process per session (Postfix), RSS counts shared pages once per process: read PSS. Postfix is measured at 1,000 only: 10,000 smtpd processes would need about 12 GiB.\n"
  );
}

function coreSection(): string {
  if (!core) return `${NOT_YET} (bench/core.ts did not run).\n`;
  const rows = [
    [
      'command lines parsed (splitCommand + MAIL/RCPT/EHLO argument parsers, a mix of ' +
        String(core.command_mix) +
        ')',
      `${fmt(Number(core.commands_per_s) / 1e6, 2)} M lines/s`,
    ],
    [
      'DATA decoded (DotDecoder, 1 MiB dot-stuffed, 1,460-byte chunks)',
      `${fmt(Number(core.data_bytes_per_s_1460) / 2 ** 20, 0)} MiB/s`,
    ],
    [
      'DATA decoded (DotDecoder, 1 MiB dot-stuffed, 64 KiB chunks)',
      `${fmt(Number(core.data_bytes_per_s_64k) / 2 ** 20, 0)} MiB/s`,
    ],
    ['whole 4 KiB messages decoded', `${fmt(Number(core.messages_4k_per_s) / 1e3, 0)} k messages/s`],
  ];
  return `${mdTable(['operation (one core, no I/O)', 'rate'], rows)}\n\nMedian of ${core.trials} trials of ${core.trial_ms} ms each after a warm-up, ${String(core.node)}.\n`;
}

function diskSection(): string {
  if (fsyncRuns.length === 0) return 'Not measured.\n';
  type Op = { median_ms: number; p99_ms: number; ops_per_s: number };
  const rows = fsyncRuns.flatMap((r) => {
    const a = r.append_fdatasync as Op;
    const f = r.new_file_fsync as Op;
    return [
      [
        `${String(r.when)} of the run`,
        'append 4 KiB + fdatasync',
        fmt(a.median_ms, 2),
        fmt(a.p99_ms, 2),
        fmt(a.ops_per_s),
      ],
      ['', 'new 4 KiB file + fsync', fmt(f.median_ms, 2), fmt(f.p99_ms, 2), fmt(f.ops_per_s)],
    ];
  });
  return `\`bench/tools/fsync.ts\`, ${String(fsyncRuns[0]?.count ?? '?')} operations one at a time in the scratch folder: the floor under any queue that syncs once per message (no group commit).\n\n${mdTable(['when', 'operation', 'median ms', 'p99 ms', 'serial ops/s'], rows)}\n`;
}

const notesFile = join(benchDir, 'notes.md');
const notes = existsSync(notesFile) ? readFileSync(notesFile, 'utf8').trim() : '';

function loadRange(): string {
  const loads = tput.map((r) => num(r, 'load1')).filter((x) => Number.isFinite(x));
  return loads.length ? `${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)}` : 'n/a';
}

// ---- the document ---------------------------------------------------------------------------
const when = (s: unknown): string => (typeof s === 'string' ? s.replace('T', ' ').replace('Z', ' UTC') : '?');
const quick = meta.quick === true;
const tgt = targets();
const doc = `# ferrymail benchmarks

Written by \`bench/report.ts\` at the end of \`npm run bench\` from the files in \`bench/results/\`:
rerun the benchmark rather than edit this file. How to run it and what each number means:
[bench/README.md](${link(readme)}).

- **Command:** \`${String(meta.command ?? 'npm run bench')}\`${quick ? ' (quick mode: small message counts, 200-2,000 messages a run; the full mode runs 500-3,000 and adds connection reuse)' : ''}
- **Date:** ${when(meta.started)} to ${when(meta.finished)}
- **Machine:** ${String(meta.machine ?? '?')}; everything on 127.0.0.1, load generator on the same cores
- **Versions:** Node ${String(meta.node ?? '?')}, Postfix ${String(meta.postfix ?? '?')}, Haraka ${String(meta.haraka ?? '?')}, nodemailer smtp-server ${String(meta.smtp_server ?? '?')}, ferrymail ${String(meta.ferrymail ?? '?')}${ferryMeasured ? '' : ` (${NOT_YET}: the server was not runnable when this run was made)`}
- **Method:** ${String(meta.rounds ?? '?')} interleaved round(s): within a round every server takes its turn for each case, in an order that rotates from round to round. A cell is the **median** over rounds (min–max). Messages of ${String(meta.msg_len ?? 4096)} bytes from \`smtp-source\`. The machine is shared and noisy (1-minute load average at the end of the runs: ${loadRange()}): only the ratios within one run mean something.

## Targets (ferrymail / peer, this run)

${mdTable(
  ['target', 'measured', 'verdict'],
  tgt.map((t) => [t.what, t.measured, t.verdict]),
)}

## What each server does

| name | accept (a), latency (e), memory (d) | relay (b) | local delivery (c) |
| --- | --- | --- | --- |
| smtp-sink | Postfix's test receiver: 250 to everything, stores nothing (the ceiling of client and loopback) | | |
| Postfix | smtpd, cleanup writes and fsyncs the queue file, then the **hold** queue: durable, no delivery | queue, then \`smtp\` to smtp-sink | \`virtual(8)\` into Maildirs |
| Postfix, relaying | (latency only) the relaying smtpd: the queue file is fsynced, then \`smtp\` relays it to a quiet smtp-sink | | |
| Haraka | loopback clients relay; its outbound queue file is fsynced before the 250; delivery **disabled** (\`outbound.ini\`) | the same queue, delivering to smtp-sink | |
| smtp-server | nodemailer \`smtp-server\`, handler writes, **fsyncs** and renames the file, then 250 | | |
| ferrymail | its queue log (250 only after the group commit's fdatasync), \`[queue] hold = true\`: durable, no delivery (the counterpart of Postfix's hold queue) | queue, then its sender-SMTP to smtp-sink | Maildir under \`data_dir/mail\` |

## (a) Durable accept rate

\`smtp-source\` → server; messages/s = messages / wall time of smtp-source.

${throughputSection('accept', 'durable accept', false)}
## (b) Relay, end to end

\`smtp-source\` → server → \`smtp-sink\`; messages/s = messages / time until the sink has counted every accepted message (the queue is empty). Below it, the accept rate while relaying.

${throughputSection('relay', 'relay end to end', true)}
## (c) Local delivery into Maildirs

\`smtp-source\` → server → Maildir; messages/s = messages / time until every recipient's file is in \`new/\`.

${throughputSection('local', 'local delivery', true)}
## (d) Memory per idle connection

${memorySection()}
## (e) Latency at one session

${latencySection()}
## (f) The protocol core

${coreSection()}
## The disk

${diskSection()}${
  notes
    ? `
## Notes (hand-written, from \`${link(notesFile)}\`: reasons behind the numbers; they may describe an earlier run)

${notes}
`
    : ''
}`;

writeFileSync(outFile, doc);
console.error(`report: wrote ${outFile} and ${plots.length} plot(s)`);
