/** Sign-in with a server user; a refusal shows the server's message. */
import { useState, type FormEvent } from 'react';
import { ApiError } from '../../api/client.ts';
import { useSession } from '../../api/session.tsx';

export function SignIn() {
  const { signIn } = useSession();
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(name, password);
    } catch (cause) {
      setError(cause instanceof ApiError ? cause.message : 'The server could not be reached.');
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="sign-in">
      <h1>Patchline</h1>
      <form onSubmit={(e) => void submit(e)} aria-label="Sign in">
        <label>
          User name
          <input
            name="name"
            autoComplete="username"
            value={name}
            onChange={(e) => setName(e.target.value)}
            required
            autoFocus
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
