/**
 * May this host install this update now? The one question the agent gateway asks before telling
 * an agent to install: the update must be needed and allowed (a forbidden update is never
 * installed, however it is triggered); then the trigger decides — an operator's action runs at
 * once (WAPT's console buttons do the same), a shutdown only in a ring with installAtShutdown,
 * unattended work only inside a maintenance window (a ring without windows: any time).
 */
import { describeDecision } from './describe.ts';
import type { HostUpdateState, Ring } from './types.ts';
import { scheduleAt } from './windows.ts';

export const INSTALL_TRIGGERS = ['schedule', 'shutdown', 'operator'] as const;
export type InstallTrigger = (typeof INSTALL_TRIGGERS)[number];

export interface InstallVerdict {
  readonly install: boolean;
  readonly reason: string;
  /** When unattended work may start again (outside a window), else null. */
  readonly nextStart: Date | null;
}

/**
 * @example mayInstallNow(state, ring, 'schedule', now) // { install: false, reason: 'outside the maintenance windows', nextStart: … }
 */
export function mayInstallNow(
  state: HostUpdateState,
  ring: Ring | null,
  trigger: InstallTrigger,
  now: Date,
): InstallVerdict {
  const no = (reason: string, nextStart: Date | null = null): InstallVerdict => ({ install: false, reason, nextStart });
  if (state.applicability !== 'needed') return no(`not needed (${state.applicability})`);
  if (state.delivery.state === 'installed' || state.delivery.state === 'installed-pending-reboot')
    return no(`already ${state.delivery.state}`);
  if (state.decision.kind !== 'allowed') return no(describeDecision(state.decision));
  if (trigger === 'operator')
    return { install: true, reason: 'operator action (maintenance windows do not apply)', nextStart: null };
  if (trigger === 'shutdown')
    return ring?.installAtShutdown
      ? { install: true, reason: `ring ${ring.name}: installAtShutdown`, nextStart: null }
      : no('the ring does not install at shutdown');
  const schedule = scheduleAt(ring?.maintenanceWindows ?? [], now);
  if (schedule.inside)
    return {
      install: true,
      reason: schedule.closesAt
        ? `inside the maintenance window until ${schedule.closesAt.toISOString()}`
        : 'no maintenance window: any time',
      nextStart: null,
    };
  return no('outside the maintenance windows', schedule.nextStart);
}
