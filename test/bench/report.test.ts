import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseCsv,
  groupCells,
  cellOf,
  fmt,
  fmtCell,
  ratio,
  fmtRatio,
  mdTable,
} from '../../bench/report/table.js';
import { linePlot, niceStep, escapeXml } from '../../bench/report/svg.js';

test('parseCsv keys cells by the header and skips blank lines', () => {
  const rows = parseCsv('a,b,c\n1,2,3\n\n4,5\n');
  assert.deepEqual(rows, [
    { a: '1', b: '2', c: '3' },
    { a: '4', b: '5', c: '' },
  ]);
  assert.deepEqual(parseCsv(''), []);
});

test('groupCells takes the median per group and counts failed runs', () => {
  const rows = parseCsv('s,rate,rc\nx,10,0\nx,30,0\nx,20,1\ny,5,0\n');
  const cells = groupCells(
    rows,
    (r) => r.s ?? '',
    (r) => Number(r.rate),
    (r) => r.rc !== '0',
  );
  const x = cells.get('x');
  assert.ok(x);
  assert.equal(x.median, 20);
  assert.equal(x.min, 10);
  assert.equal(x.max, 30);
  assert.equal(x.failed, 1);
  assert.equal(cells.get('y')?.median, 5);
});

test('numbers, cells and ratios are formatted for people', () => {
  assert.equal(fmt(1234.5), '1,235');
  assert.equal(fmt(12.345), '12.3');
  assert.equal(fmt(12.345, 2), '12.35');
  assert.equal(fmt(NaN), 'n/a');
  assert.equal(fmtCell(cellOf([100])), '**100**');
  assert.equal(fmtCell(cellOf([100, 300, 200])), '**200** (100–300)');
  assert.match(fmtCell(cellOf([100], 1)), /1 failed/);
  assert.equal(fmtCell(undefined), '');
  assert.equal(fmtRatio(ratio(300, 100)), '3.00x');
  assert.equal(fmtRatio(ratio(300, 0)), 'n/a');
  assert.equal(fmtRatio(ratio(undefined, 100)), 'n/a');
});

test('mdTable draws a header rule', () => {
  assert.equal(mdTable(['a', 'b'], [['1', '2']]), '| a | b |\n| --- | --- |\n| 1 | 2 |');
});

test('niceStep picks round steps', () => {
  assert.equal(niceStep(1000, 5), 200);
  assert.equal(niceStep(2400, 5), 500);
  assert.equal(niceStep(0), 1);
});

test('linePlot draws one path per series with two or more points, escaped names, and a legend', () => {
  const svg = linePlot(
    [
      {
        name: 'a<b>',
        points: [
          { x: 1, y: 10 },
          { x: 20, y: 100 },
          { x: 100, y: 90 },
        ],
      },
      {
        name: 'single',
        points: [
          { x: 20, y: 50 },
          { x: 100, y: NaN },
        ],
      },
    ],
    { title: 'T & U', xLabel: 'sessions', yLabel: 'messages/s' },
  );
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal((svg.match(/<path /g) ?? []).length, 1);
  assert.equal((svg.match(/<circle /g) ?? []).length, 4);
  assert.ok(svg.includes(escapeXml('a<b>')) && !svg.includes('a<b>'));
  assert.ok(svg.includes('T &#38; U'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.ok(!/NaN/.test(svg));
});
