#!/usr/bin/env node
// Builds the console (web/) into web/dist after `npm ci`/`npm install`, so the server serves it with
// nothing else to type. Skipped when the console's toolchain is absent (a production install
// with --omit=dev that ships a prebuilt web/dist).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (!existsSync('node_modules/vite/package.json')) {
  console.log('patchline: vite is not installed (production install?): the console is not rebuilt');
  process.exit(0);
}
const result = spawnSync(
  process.execPath,
  ['node_modules/vite/bin/vite.js', 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
