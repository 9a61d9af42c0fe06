/**
 * The frame around every page: navigation, who is signed in, and the routes. Until the session is
 * known nothing is drawn; without one, the sign-in page.
 */
import { NavLink, Route, Routes } from 'react-router';
import { useLiveEvents } from './api/live.ts';
import { useSession } from './api/session.tsx';
import { SignIn } from './pages/sign-in/sign-in.tsx';
import { Overview } from './pages/overview/overview.tsx';
import { Updates } from './pages/updates/updates.tsx';
import { UpdatePage } from './pages/update/update.tsx';
import { Hosts } from './pages/hosts/hosts.tsx';
import { HostPage } from './pages/host/host.tsx';
import { RulesPage } from './pages/rules/rules.tsx';
import { Activity } from './pages/activity/activity.tsx';
import { CatalogPage } from './pages/catalog/catalog.tsx';

const NAV = [
  ['/', 'Overview'],
  ['/updates', 'Updates'],
  ['/hosts', 'Hosts'],
  ['/rules', 'Rules and rings'],
  ['/activity', 'Activity'],
  ['/catalog', 'Catalog and content'],
] as const;

export function App() {
  const { user, loading, signOut } = useSession();
  useLiveEvents(user !== null);
  if (loading) return <p className="loading">Loading…</p>;
  if (!user) return <SignIn />;
  return (
    <div className="frame">
      {/* The routes live in the URL's fragment, so "#main" would be a route: move the focus instead. */}
      <a
        className="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Patchline</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([to, label]) => (
              <li key={to}>
                <NavLink to={to} end={to === '/'}>
                  {label}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <span className="who">
          {user.name} ({user.role})
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Routes>
          <Route path="/" element={<Overview />} />
          <Route path="/updates" element={<Updates />} />
          <Route path="/updates/:id" element={<UpdatePage />} />
          <Route path="/hosts" element={<Hosts />} />
          <Route path="/hosts/:name" element={<HostPage />} />
          <Route path="/rules" element={<RulesPage />} />
          <Route path="/activity" element={<Activity />} />
          <Route path="/catalog" element={<CatalogPage />} />
          <Route path="*" element={<p>No such page.</p>} />
        </Routes>
      </main>
    </div>
  );
}
