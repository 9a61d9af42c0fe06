/**
 * The scripted fake provider as a process, for end-to-end tests of `patchline agent cycle`:
 * `node --import tsx test/agent-fake-provider-cli.ts WORLD.json` speaks the protocol on stdio.
 */
import { readFileSync } from 'node:fs';
import { serveFake, world, type FakeUpdate } from './agent-fake-provider.ts';

const file = process.argv[2];
if (!file) throw new Error('usage: agent-fake-provider-cli.ts WORLD.json');
const spec = JSON.parse(readFileSync(file, 'utf8')) as { updates: FakeUpdate[]; pendingReboot?: boolean };
await serveFake(
  world(spec.updates, spec.pendingReboot === undefined ? {} : { pendingReboot: spec.pendingReboot }),
  process.stdin,
  process.stdout,
);
