/**
 * `patchline agent enroll`: trades an enrollment token for this host's own credential and writes
 * the enrollment (server URL, pinned certificate fingerprint, host id, credential) to the agent's
 * state directory. The token's fingerprint is pinned from the very first request.
 */
import { AGENT_PROTOCOL_VERSION, decodeEnrollToken, type EnrollResponse } from '../../domain/agent-protocol.ts';
import { PatchlineError } from '../../domain/errors.ts';
import { AgentHttp } from './http.ts';
import type { AgentEnrollment, AgentState } from './state.ts';

export interface EnrollOptions {
  readonly serverUrl: string;
  readonly token: string;
  readonly hostName: string;
  readonly agentVersion: string;
  readonly state: AgentState;
  readonly now: () => Date;
  readonly signal: AbortSignal;
}

/**
 * @example await enrollAgent({ serverUrl: 'https://patch01:8443', token: 'ET1.…', hostName: 'web01', agentVersion: '0.1.0', state, now: () => new Date(), signal })
 */
export async function enrollAgent(options: EnrollOptions): Promise<AgentEnrollment> {
  const token = decodeEnrollToken(options.token);
  if (!token)
    throw new PatchlineError(
      'ENROLL_TOKEN_MALFORMED',
      'that is not an enrollment token (ET1.…): copy it whole from `patchline server enroll-token create`',
      { exitCode: 64 },
    );
  const http = new AgentHttp({ serverUrl: options.serverUrl, fingerprint: token.fingerprint });
  try {
    const { body } = await http.json<EnrollResponse>(
      'POST',
      '/api/v1/agent/enroll',
      {
        protocol: AGENT_PROTOCOL_VERSION,
        token: options.token.trim(),
        hostName: options.hostName,
        agentVersion: options.agentVersion,
      },
      options.signal,
    );
    await options.state.init();
    const enrollment: AgentEnrollment = {
      serverUrl: options.serverUrl,
      fingerprint: token.fingerprint,
      hostId: body.hostId,
      hostName: body.hostName,
      ring: body.ring,
      credential: body.credential,
      enrolledAt: options.now().toISOString(),
    };
    await options.state.saveEnrollment(enrollment);
    // A new enrollment starts a new history on the server: the next report is a full one.
    await options.state.setAcked(null);
    return enrollment;
  } finally {
    await http.close();
  }
}
