/**
 * Before a rule is saved, the server says what it would change ("forbids 2 updates on 31 hosts;
 * 4 installs scheduled tonight are cancelled") and the user confirms or cancels. No peer tool
 * shows this; it is the cheapest way to avoid a rule that does more than meant.
 */
import { useEffect, useRef } from 'react';

interface PreviewCount {
  readonly updates: number;
  readonly hosts: number;
  readonly pairs: number;
}

/** The server's answer to POST /api/v1/rules/preview (domain/policy/preview.ts). */
export interface RulePreview {
  readonly forbids: PreviewCount;
  readonly allows: PreviewCount;
  readonly defers: PreviewCount;
  readonly cancelledInstalls: number;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** "forbids 2 updates on 31 hosts; 4 installs scheduled are cancelled" */
export function describePreview(p: RulePreview): string {
  const parts: string[] = [];
  if (p.forbids.pairs > 0)
    parts.push(`forbids ${plural(p.forbids.updates, 'update')} on ${plural(p.forbids.hosts, 'host')}`);
  if (p.allows.pairs > 0)
    parts.push(`allows ${plural(p.allows.updates, 'update')} on ${plural(p.allows.hosts, 'host')}`);
  if (p.defers.pairs > 0)
    parts.push(`defers ${plural(p.defers.updates, 'update')} on ${plural(p.defers.hosts, 'host')}`);
  if (p.cancelledInstalls > 0)
    parts.push(
      `${plural(p.cancelledInstalls, 'scheduled install')} ${p.cancelledInstalls === 1 ? 'is' : 'are'} cancelled`,
    );
  return parts.length === 0 ? 'changes nothing any host still needs' : parts.join('; ');
}

export function RulePreviewDialog(props: {
  preview: RulePreview | null;
  busy: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (props.preview && !d.open) d.showModal();
    if (!props.preview && d.open) d.close();
  }, [props.preview]);
  return (
    <dialog ref={dialog} aria-labelledby="preview-title" onCancel={props.onCancel}>
      <h2 id="preview-title">What this rule changes</h2>
      <p data-testid="rule-preview">{props.preview ? `This rule ${describePreview(props.preview)}.` : ''}</p>
      <div className="buttons">
        <button type="button" onClick={props.onConfirm} disabled={props.busy}>
          Save rule
        </button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}
