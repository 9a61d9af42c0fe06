/**
 * The progress update's hand-built SQL, as text for both dialects (the rows it writes are checked on
 * both stores through the API: test/server-fleet.test.ts, an action's progress).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { updateActionHostSql } from './fleet-repo.ts';

test("an action host's progress update: one statement per dialect, the row named by action and host", () => {
  assert.equal(
    updateActionHostSql('sqlite'),
    'update "action_hosts" set "state" = ?, "phase" = ?, "percent" = ?, "hresult" = ?, "message" = ?, ' +
      '"progress_json" = ?, "updated_at" = ? where "action_id" = ? and "host_key" = ?',
  );
  assert.equal(
    updateActionHostSql('postgres'),
    'update "action_hosts" set "state" = $1, "phase" = $2, "percent" = $3, "hresult" = $4, "message" = $5, ' +
      '"progress_json" = $6, "updated_at" = $7 where "action_id" = $8 and "host_key" = $9',
  );
});
