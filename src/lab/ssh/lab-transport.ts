/**
 * `patchline run --lab SCENARIO --transport ssh`: the SSH lab (every host behind its own sshd)
 * and the real SSH transport pointed at it, composed. The lab's inventory names each host at
 * 127.0.0.1:<its port> as root with the lab's connector key; its known_hosts holds every host's
 * key (as an administrator records keys after checking them), unless the caller gives its own.
 */
import type { Transport } from '../../transports/transport.ts';
import { createSshTransport, type StreamMode } from '../../transports/ssh/ssh-transport.ts';
import type { SshTarget } from '../../transports/ssh/connection.ts';
import { labClientDir, LAB_CLIENT_VERSION } from './lab-client.ts';
import { LAB_SSH_USER, startSshLab, type SshHostFaults, type SshLab } from './ssh-lab.ts';

export interface SshLabTransportOptions {
  readonly scenarioPath: string;
  readonly dir: string;
  readonly faults?: Readonly<Record<string, SshHostFaults>>;
  /** Another known_hosts file than the lab's (tests of unknown and changed keys). */
  readonly knownHostsFile?: string;
  readonly acceptNewHostKeys?: boolean;
  /** Replaces a host's inventory entry (tests: another user, another key). */
  readonly targetOverrides?: Readonly<Record<string, Partial<SshTarget>>>;
  readonly note: (host: string, message: string) => void;
  readonly log?: (message: string) => void;
  readonly logPollMs?: number;
}

export type SshLabTransport = Transport & { readonly lab: SshLab; streamMode(host: string): StreamMode | undefined };

/**
 * @example
 *   const transport = await openSshLabTransport({ scenarioPath: 'examples/lab/small.yaml', dir, note: (h, m) => console.log(h, m) });
 *   await startRun({ store, transport, clock: systemClock, log }, options);
 */
export async function openSshLabTransport(options: SshLabTransportOptions): Promise<SshLabTransport> {
  const lab = await startSshLab({
    scenarioPath: options.scenarioPath,
    dir: options.dir,
    ...(options.faults ? { faults: options.faults } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  try {
    const client = await labClientDir(lab.dir, options.log);
    const targets: SshTarget[] = lab.hosts.map((h) => ({
      name: h.name,
      address: '127.0.0.1',
      port: h.port,
      user: LAB_SSH_USER,
      keyFile: lab.clientKeyFile,
      ...options.targetOverrides?.[h.name],
    }));
    const inner = createSshTransport({
      targets,
      knownHostsFile: options.knownHostsFile ?? lab.knownHostsFile,
      acceptNewHostKeys: options.acceptNewHostKeys ?? false,
      client: { kind: 'copy', dir: client, version: LAB_CLIENT_VERSION },
      env: process.env,
      note: options.note,
      ...(options.logPollMs !== undefined ? { logPollMs: options.logPollMs } : {}),
    });
    return {
      ...inner,
      lab,
      async close() {
        await inner.close();
        await lab.close();
      },
    };
  } catch (error) {
    await lab.close();
    throw error;
  }
}
