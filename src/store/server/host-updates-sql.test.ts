import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostUpdatesTable } from '../schema-server.ts';
import { HOST_UPDATE_COLUMNS, UPSERT_CHUNK_ROWS, upsertHostUpdates } from './host-updates-sql.ts';

const row = (updateId: string): HostUpdatesTable => ({
  host_key: 'web01',
  update_id: updateId,
  revision: 200,
  kb: '5044444',
  title: null,
  applicability: 'needed',
  delivery: 'none',
  decision: null,
  decided_by: null,
  deferred_until: null,
  hresult: null,
  attempts: 0,
  last_attempt_at: null,
  installed_at: null,
  reported_at: '2026-12-06T00:00:00.000Z',
  report_json: '{}',
});

test('the upsert lists every column once per row and keeps the server-owned columns on conflict', () => {
  const { sql, parameters } = upsertHostUpdates([row('a'), row('b')], 'sqlite');
  assert.match(
    sql,
    /^insert into "host_updates" \("host_key", "update_id", .*"report_json"\) values \(\?(, \?){15}\), \(\?(, \?){15}\) on conflict \("host_key", "update_id"\) do update set /,
  );
  const set = sql.slice(sql.indexOf('do update set '));
  for (const kept of ['title', 'decision', 'decided_by', 'deferred_until', 'host_key', 'update_id'])
    assert.doesNotMatch(set, new RegExp(`"${kept}" =`), `${kept} is not replaced by a report`);
  assert.match(set, /"applicability" = excluded\."applicability"/);
  assert.equal(parameters.length, 2 * HOST_UPDATE_COLUMNS.length);
  assert.deepEqual(parameters.slice(16, 18), ['web01', 'b'], 'parameters follow the rows in column order');
});

test('PostgreSQL gets numbered placeholders that run on across rows', () => {
  const { sql } = upsertHostUpdates([row('a'), row('b')], 'postgres');
  assert.match(sql, /values \(\$1, \$2, .*\$16\), \(\$17, .*\$32\) on conflict/);
  assert.doesNotMatch(sql, /\?/);
});

test('no rows, or more than a statement may bind, is a caller error', () => {
  assert.throws(() => upsertHostUpdates([], 'sqlite'), RangeError);
  assert.throws(
    () =>
      upsertHostUpdates(
        Array.from({ length: UPSERT_CHUNK_ROWS + 1 }, (_, i) => row(String(i))),
        'sqlite',
      ),
    RangeError,
  );
});
