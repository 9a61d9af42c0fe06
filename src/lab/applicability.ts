/**
 * Which catalog updates a virtual host needs: WUA's applicability rules, as a pure function.
 *
 * An update is applicable when: the host's product is among its products; it is not installed;
 * every prerequisite (`requires`) is installed and that install's reboot is done; and no
 * installed update supersedes it (directly or through a chain of supersedence). An update that
 * supersedes an installed one is applicable, which is how a new cumulative update is offered.
 */
import type { HostState } from './host-state.ts';
import type { CatalogEntry, Scenario, ScenarioHost } from './scenario.ts';

type StateView = Pick<HostState, 'installed'>;

/** Why an update is not applicable, or null when it is. Useful in messages and tests. */
export type NotApplicableReason = 'product' | 'installed' | 'prerequisite' | 'superseded';

/** The keys of every update that an installed update supersedes, transitively. */
export function supersededByInstalled(scenario: Scenario, state: StateView): Set<string> {
  const out = new Set<string>();
  const pending = Object.keys(state.installed);
  while (pending.length > 0) {
    const key = pending.pop() as string;
    for (const old of scenario.byKey.get(key)?.supersedes ?? []) {
      if (!out.has(old)) {
        out.add(old);
        pending.push(old);
      }
    }
  }
  return out;
}

export function notApplicableReason(
  entry: CatalogEntry,
  host: ScenarioHost,
  state: StateView,
  superseded: ReadonlySet<string>,
): NotApplicableReason | null {
  if (!entry.products.includes(host.product)) return 'product';
  if (state.installed[entry.key]) return 'installed';
  if (!entry.requires.every((key) => state.installed[key]?.rebootDone === true)) return 'prerequisite';
  if (superseded.has(entry.key)) return 'superseded';
  return null;
}

/**
 * The updates the host needs now, in catalog order.
 *
 * @example applicableUpdates(scenario, scenario.hostByName.get('web01')!, state).map((e) => e.key)
 */
export function applicableUpdates(scenario: Scenario, host: ScenarioHost, state: StateView): CatalogEntry[] {
  const superseded = supersededByInstalled(scenario, state);
  return scenario.catalog.filter((entry) => notApplicableReason(entry, host, state, superseded) === null);
}

/** The installed updates that belong to the host's product (what `IsInstalled=1` finds). */
export function installedUpdates(scenario: Scenario, host: ScenarioHost, state: StateView): CatalogEntry[] {
  return scenario.catalog.filter(
    (entry) => state.installed[entry.key] !== undefined && entry.products.includes(host.product),
  );
}

/**
 * The updates the host would need but for a prerequisite not installed (and its reboot not done):
 * what a failed prerequisite keeps from it. Windows Update does not offer these at all.
 */
export function waitingOnPrerequisites(scenario: Scenario, host: ScenarioHost, state: StateView): CatalogEntry[] {
  const superseded = supersededByInstalled(scenario, state);
  return scenario.catalog.filter(
    (entry) => notApplicableReason(entry, host, state, superseded) === 'prerequisite' && !superseded.has(entry.key),
  );
}
