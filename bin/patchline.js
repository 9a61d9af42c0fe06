#!/usr/bin/env node
// Entry point for `npx patchline` / a global install: load the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
