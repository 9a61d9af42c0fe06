/**
 * Rules and rings: the rules in force (delete needs admin), a form for a new rule that shows the
 * server's preview before saving, the rings in order, and promotion status with its evidence.
 */
import { useState, type FormEvent } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../../api/client.ts';
import { useCan } from '../../api/session.tsx';
import { RulePreviewDialog, type RulePreview } from '../../components/rule-preview.tsx';
import { RingsSection } from './rings.tsx';
import { PromotionsSection } from './promotions.tsx';

interface Rule {
  readonly id: string;
  readonly action: 'allow' | 'forbid';
  readonly updateIds?: readonly string[];
  readonly kbs?: readonly string[];
  readonly classifications?: readonly string[];
  readonly products?: readonly string[];
  readonly severities?: readonly string[];
  readonly titlePattern?: string;
  readonly rings?: readonly string[];
  readonly hosts?: readonly string[];
}

const LIST_FIELDS = ['kbs', 'updateIds', 'classifications', 'products', 'severities', 'rings', 'hosts'] as const;
const LABELS: Record<(typeof LIST_FIELDS)[number], string> = {
  kbs: 'KBs',
  updateIds: 'Update IDs',
  classifications: 'Classifications',
  products: 'Products',
  severities: 'Severities',
  rings: 'Only in rings',
  hosts: 'Only on hosts',
};

function describe(rule: Rule): string {
  const parts = LIST_FIELDS.flatMap((f) => (rule[f]?.length ? [`${LABELS[f]}: ${rule[f]!.join(', ')}`] : []));
  if (rule.titlePattern) parts.push(`Title matches /${rule.titlePattern}/`);
  return parts.join(' · ');
}

const splitList = (text: string) =>
  text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);

export function RulesPage() {
  const canAdmin = useCan('admin');
  const queryClient = useQueryClient();
  const rules = useQuery({
    queryKey: ['rules'],
    queryFn: ({ signal }) => api<{ rules: Rule[] }>('/rules', { signal }),
  });
  const [form, setForm] = useState<Record<string, string>>({ action: 'allow' });
  const [problem, setProblem] = useState<string | null>(null);
  const [preview, setPreview] = useState<RulePreview | null>(null);

  const draft = (): Omit<Rule, 'id'> => {
    const rule: Record<string, unknown> = { action: form.action };
    for (const f of LIST_FIELDS) {
      const list = splitList(form[f] ?? '');
      if (list.length) rule[f] = list;
    }
    if (form.titlePattern) rule.titlePattern = form.titlePattern;
    return rule as Omit<Rule, 'id'>;
  };
  const doPreview = useMutation({
    mutationFn: () => api<RulePreview>('/rules/preview', { method: 'POST', body: { add: [draft()] } }),
    onSuccess: (p) => {
      setProblem(null);
      setPreview(p);
    },
    onError: (e) => setProblem(e.message),
  });
  const save = useMutation({
    mutationFn: () => api<{ id: string }>('/rules', { method: 'POST', body: draft() }),
    onSuccess: () => {
      setPreview(null);
      setForm({ action: 'allow' });
      void queryClient.invalidateQueries();
    },
    onError: (e) => {
      setPreview(null);
      setProblem(e.message);
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => api(`/rules/${encodeURIComponent(id)}`, { method: 'DELETE' }),
    onSuccess: () => void queryClient.invalidateQueries(),
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    doPreview.mutate();
  };
  return (
    <>
      <h1>Rules and rings</h1>
      <section>
        <h2>Rules</h2>
        <p>Forbid always wins over allow. Without an allowing rule, a ring's default decides.</p>
        <table className="compact" aria-label="Rules">
          <thead>
            <tr>
              <th scope="col">Action</th>
              <th scope="col">Selects</th>
              {canAdmin && <th scope="col">Remove</th>}
            </tr>
          </thead>
          <tbody>
            {(rules.data?.rules ?? []).map((r) => (
              <tr key={r.id} data-rule-id={r.id}>
                <td data-action={r.action}>{r.action}</td>
                <td>{describe(r)}</td>
                {canAdmin && (
                  <td>
                    <button type="button" onClick={() => remove.mutate(r.id)} aria-label={`Remove rule ${r.id}`}>
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
        {canAdmin && (
          <form className="rule-form" onSubmit={submit} aria-label="New rule">
            <h3>New rule</h3>
            <label>
              Action
              <select value={form.action} onChange={(e) => setForm({ ...form, action: e.target.value })}>
                <option value="allow">allow</option>
                <option value="forbid">forbid</option>
              </select>
            </label>
            {LIST_FIELDS.map((f) => (
              <label key={f}>
                {LABELS[f]} (comma-separated)
                <input name={f} value={form[f] ?? ''} onChange={(e) => setForm({ ...form, [f]: e.target.value })} />
              </label>
            ))}
            <label>
              Title pattern (regular expression)
              <input
                name="titlePattern"
                value={form.titlePattern ?? ''}
                onChange={(e) => setForm({ ...form, titlePattern: e.target.value })}
              />
            </label>
            {problem && (
              <p role="alert" className="error">
                {problem}
              </p>
            )}
            <button type="submit" disabled={doPreview.isPending}>
              Preview and save…
            </button>
          </form>
        )}
      </section>
      <RingsSection />
      <PromotionsSection />
      <RulePreviewDialog
        preview={preview}
        busy={save.isPending}
        onConfirm={() => save.mutate()}
        onCancel={() => setPreview(null)}
      />
    </>
  );
}
