/** Says in words which rule or ring setting decided (the server's DecisionReason). */
export function describeDecidedBy(by: unknown): string {
  if (typeof by === 'string') return by;
  if (!by || typeof by !== 'object') return '';
  const r = by as Record<string, unknown>;
  switch (r.kind) {
    case 'rule':
      return `rule ${String(r.ruleId)} (${String(r.action)})`;
    case 'default-allow':
      return `ring ${String(r.ring)} allows by default`;
    case 'default-deny':
      // Nothing forbids here: the ring's default is to allow only what a rule allows, and none does.
      return r.ring
        ? `not allowed: ring ${String(r.ring)} allows only what a rule allows`
        : 'not allowed: the host is in no ring and no rule allows it';
    case 'severity':
      return `ring ${String(r.ring)} does not allow severity ${String(r.severity)}`;
    case 'install-delay':
      return `ring ${String(r.ring)} waits ${String(r.days)} days after release`;
    case 'promotion':
      return `promotion into ${String(r.ring)}: ${String(r.status)}`;
    case 'override':
      return `${String(r.action)} by ${String(r.by)} for ${String(r.ring)}`;
    default:
      return String(r.kind ?? '');
  }
}
