/**
 * The signed-in user: asks the server who we are (GET /api/v1/session), signs in and out, and
 * hands the session's CSRF token to the API client. Roles shape the UI through `useCan`.
 */
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, ApiError, setCsrfToken } from './client.ts';

export type Role = 'viewer' | 'operator' | 'admin';
const ROLE_ORDER: readonly Role[] = ['viewer', 'operator', 'admin'];

export interface SessionUser {
  readonly name: string;
  readonly role: Role;
  readonly csrfToken: string;
}

interface SessionState {
  readonly user: SessionUser | null;
  readonly loading: boolean;
  signIn(name: string, password: string): Promise<void>;
  signOut(): Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

/** GET/POST /api/v1/session: who is calling; the CSRF token to send back on changes. */
interface SessionResponse {
  readonly kind: 'user' | 'token';
  readonly name: string;
  readonly role: Role;
  readonly csrfToken: string | null;
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<SessionUser | null>(null);
  const [loading, setLoading] = useState(true);

  const adopt = useCallback((response: SessionResponse | null) => {
    setCsrfToken(response?.csrfToken ?? null);
    setUser(response ? { name: response.name, role: response.role, csrfToken: response.csrfToken ?? '' } : null);
  }, []);

  useEffect(() => {
    api<SessionResponse>('/session')
      .then(adopt)
      .catch((error: unknown) => {
        // 401 simply means "not signed in"; anything else is shown on the sign-in page.
        if (!(error instanceof ApiError && error.status === 401)) console.error(error);
        adopt(null);
      })
      .finally(() => setLoading(false));
  }, [adopt]);

  const signIn = useCallback(
    async (name: string, password: string) => {
      adopt(await api<SessionResponse>('/session', { method: 'POST', body: { name, password } }));
    },
    [adopt],
  );
  const signOut = useCallback(async () => {
    try {
      await api('/session', { method: 'DELETE' });
    } finally {
      adopt(null);
    }
  }, [adopt]);

  return <SessionContext.Provider value={{ user, loading, signIn, signOut }}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error('useSession outside SessionProvider');
  return state;
}

/** True when the signed-in user's role reaches `needed` (a viewer sees no buttons it would be refused). */
export function useCan(needed: Role): boolean {
  const { user } = useSession();
  return user !== null && ROLE_ORDER.indexOf(user.role) >= ROLE_ORDER.indexOf(needed);
}
