/** Shared builders for the policy tests: a small catalog, hosts and rings a reader can follow. */
import { DEFAULT_RING } from './rings.ts';
import type { HostFacts, HostUpdateFacts, Ring, UpdateFacts } from './types.ts';

export const NOW = new Date('2026-11-24T10:00:00.000Z');
export const hoursAgo = (h: number): string => new Date(NOW.getTime() - h * 3_600_000).toISOString();

export function update(updateId: string, over: Partial<UpdateFacts> = {}): UpdateFacts {
  return {
    updateId,
    kbs: [],
    title: `Update ${updateId}`,
    classification: 'Security Updates',
    products: ['Windows Server 2022'],
    severity: 'Critical',
    releasedAt: '2026-11-01T00:00:00Z',
    cache: 'cached',
    ...over,
  };
}

export const needed = (updateId: string, over: Partial<HostUpdateFacts> = {}): HostUpdateFacts => ({
  updateId,
  applicability: 'needed',
  delivery: 'none',
  hresult: null,
  attempts: 0,
  installedAt: null,
  ...over,
});

export function host(name: string, ring: string | null, updates: HostUpdateFacts[]): HostFacts {
  return { name, ring, lastScanAt: hoursAgo(1), updates };
}

export function ring(name: string, over: Partial<Ring> = {}): Ring {
  return { ...DEFAULT_RING, name, ...over };
}
