/**
 * Keyboard helpers. A `role="toolbar"` promises the ARIA toolbar keys: the arrow keys move between
 * its controls (Home and End to the ends), while Tab leaves it; screen-reader users expect that.
 */
import type { KeyboardEvent } from 'react';

const MOVES: Record<string, (at: number, count: number) => number> = {
  ArrowRight: (at, n) => (at + 1) % n,
  ArrowLeft: (at, n) => (at - 1 + n) % n,
  Home: () => 0,
  End: (_at, n) => n - 1,
};

/** onKeyDown of a toolbar: moves the focus among its enabled buttons and links. */
export function toolbarKeys(event: KeyboardEvent<HTMLElement>): void {
  const move = MOVES[event.key];
  if (!move) return;
  const items = [...event.currentTarget.querySelectorAll<HTMLElement>('button:not(:disabled), a[href]')];
  const at = items.indexOf(event.target as HTMLElement);
  if (at < 0) return;
  event.preventDefault();
  items[move(at, items.length)]!.focus();
}
