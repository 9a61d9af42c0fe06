/**
 * A structural check of task XML against the Task Scheduler schema Microsoft publishes
 * (learn.microsoft.com/windows/win32/taskschd "Task Scheduler Schema": the whole XSD on one page,
 * and per-type pages). The XSD is third-party text we do not copy into the repository, so this
 * encodes what the agent task touches by hand: allowed children (xs:all, each at most once),
 * required children, simple type values, the version the XSD fixes (1.3), the Actions Context →
 * Principal id reference. Plus Patchline's own rules for the agent task (no trigger, SYSTEM,
 * batteries). With a local copy of the XSD and xmllint, windows-golden.test.ts also validates the
 * task file with xmllint (PATCHLINE_TASK_XSD=/path/to/task.xsd).
 */
import { SaxesParser } from 'saxes';

const NS = 'http://schemas.microsoft.com/windows/2004/02/mit/task';

const boolean = /^(true|false|1|0)$/;
const duration = /^-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/;
const SIMPLE: Readonly<Record<string, RegExp>> = {
  boolean,
  duration,
  string: /^[\s\S]*$/,
  nonEmptyString: /\S/,
  pathType: /\S/,
  runLevelType: /^(LeastPrivilege|HighestAvailable)$/,
  // The full XSD's enumeration (the per-type page lists more values than the XSD accepts).
  logonType: /^(S4U|Password|InteractiveToken|InteractiveTokenOrPassword)$/,
  multipleInstancesPolicyType: /^(Parallel|Queue|IgnoreNew|StopExisting)$/,
  priorityType: /^([0-9]|10)$/,
};

interface ComplexType {
  readonly children: Readonly<Record<string, string>>;
  readonly required?: readonly string[];
  readonly attributes?: readonly string[];
  /** A sequence of repeated elements (actionsType, principalsType) instead of xs:all. */
  readonly maxRepeat?: number;
}

const COMPLEX: Readonly<Record<string, ComplexType>> = {
  taskType: {
    children: {
      RegistrationInfo: 'registrationInfoType',
      Triggers: 'triggersType',
      Settings: 'settingsType',
      Data: 'any',
      Principals: 'principalsType',
      Actions: 'actionsType',
    },
    required: ['Actions'],
    attributes: ['version', 'xmlns'],
  },
  registrationInfoType: {
    children: {
      URI: 'string',
      SecurityDescriptor: 'string',
      Source: 'string',
      Date: 'string',
      Author: 'string',
      Version: 'string',
      Description: 'string',
      Documentation: 'string',
    },
  },
  triggersType: { children: {} },
  principalsType: { children: { Principal: 'principalType' }, maxRepeat: 1 },
  principalType: {
    children: {
      UserId: 'nonEmptyString',
      LogonType: 'logonType',
      GroupId: 'nonEmptyString',
      DisplayName: 'string',
      RunLevel: 'runLevelType',
      ProcessTokenSidType: 'string',
      RequiredPrivileges: 'any',
    },
    attributes: ['id'],
  },
  settingsType: {
    children: {
      AllowStartOnDemand: 'boolean',
      RestartOnFailure: 'any',
      MultipleInstancesPolicy: 'multipleInstancesPolicyType',
      DisallowStartIfOnBatteries: 'boolean',
      StopIfGoingOnBatteries: 'boolean',
      AllowHardTerminate: 'boolean',
      StartWhenAvailable: 'boolean',
      NetworkProfileName: 'string',
      RunOnlyIfNetworkAvailable: 'boolean',
      WakeToRun: 'boolean',
      Enabled: 'boolean',
      Hidden: 'boolean',
      DeleteExpiredTaskAfter: 'duration',
      IdleSettings: 'any',
      NetworkSettings: 'any',
      ExecutionTimeLimit: 'duration',
      Priority: 'priorityType',
      RunOnlyIfIdle: 'boolean',
      UseUnifiedSchedulingEngine: 'boolean',
      DisallowStartOnRemoteAppSession: 'boolean',
    },
  },
  actionsType: {
    children: { Exec: 'execType', ComHandler: 'any', SendEmail: 'any', ShowMessage: 'any' },
    maxRepeat: 32,
    attributes: ['Context'],
  },
  execType: {
    children: { Command: 'pathType', Arguments: 'string', WorkingDirectory: 'pathType' },
    required: ['Command'],
    attributes: ['id'],
  },
};

interface Node {
  readonly name: string;
  readonly uri: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: Node[];
  text: string;
}

function parse(xml: string): Node {
  const parser = new SaxesParser({ xmlns: true });
  const stack: Node[] = [];
  let root: Node | undefined;
  parser.on('opentag', (tag) => {
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(tag.attributes)) attributes[k] = typeof v === 'string' ? v : v.value;
    const node: Node = { name: tag.local ?? tag.name, uri: tag.uri ?? '', attributes, children: [], text: '' };
    if (stack.length > 0) stack.at(-1)!.children.push(node);
    else root = node;
    stack.push(node);
  });
  parser.on('text', (t) => {
    if (stack.length > 0) stack.at(-1)!.text += t;
  });
  parser.on('closetag', () => void stack.pop());
  parser.write(xml).close();
  if (root === undefined) throw new Error('no root element');
  return root;
}

function checkNode(node: Node, type: string, path: string, problems: string[]): void {
  if (node.uri !== NS) problems.push(`${path}: namespace ${node.uri || '(none)'} is not ${NS}`);
  if (type === 'any') return;
  const simple = SIMPLE[type];
  if (simple !== undefined) {
    if (node.children.length > 0) problems.push(`${path}: ${type} holds elements`);
    if (!simple.test(node.text.trim())) problems.push(`${path}: ${JSON.stringify(node.text)} is not a valid ${type}`);
    return;
  }
  const complex = COMPLEX[type];
  if (complex === undefined) throw new Error(`unknown type ${type}`);
  for (const attr of Object.keys(node.attributes)) {
    if (!(complex.attributes ?? []).includes(attr) && !attr.startsWith('xmlns'))
      problems.push(`${path}: attribute ${attr} is not allowed`);
  }
  if (node.text.trim() !== '') problems.push(`${path}: text is not allowed in ${type}`);
  const seen = new Map<string, number>();
  for (const child of node.children) {
    const childType = complex.children[child.name];
    if (childType === undefined) {
      problems.push(`${path}/${child.name}: element ${child.name} is not allowed in ${type}`);
      continue;
    }
    seen.set(child.name, (seen.get(child.name) ?? 0) + 1);
    checkNode(child, childType, `${path}/${child.name}`, problems);
  }
  if (complex.maxRepeat !== undefined) {
    if (node.children.length === 0)
      problems.push(`${path}: needs at least one of ${Object.keys(complex.children).join(', ')}`);
    if (node.children.length > complex.maxRepeat) problems.push(`${path}: at most ${complex.maxRepeat} children`);
  } else {
    for (const [name, count] of seen) if (count > 1) problems.push(`${path}/${name}: element ${name} appears twice`);
  }
  for (const name of complex.required ?? [])
    if (!seen.has(name)) problems.push(`${path}: required element ${name} is missing`);
}

/** Problems found in a task XML (empty when it conforms and follows Patchline's rules for the agent task). */
export function checkTaskXml(xml: string): string[] {
  const problems: string[] = [];
  let root: Node;
  try {
    root = parse(xml);
  } catch (error) {
    return [`not well-formed XML: ${(error as Error).message}`];
  }
  if (root.name !== 'Task') return [`root element is ${root.name}, not Task`];
  // The published XSD: <xs:attribute name="version" use="optional" fixed="1.3" type="versionType" />.
  if (root.attributes.version !== undefined && root.attributes.version !== '1.3')
    problems.push(`/Task: version ${root.attributes.version} is not 1.3, the version the published schema fixes`);
  checkNode(root, 'taskType', '/Task', problems);
  // Patchline's rules for the agent task (DESIGN.md §5, issue 9).
  const child = (n: Node | undefined, name: string): Node | undefined => n?.children.find((c) => c.name === name);
  const text = (n: Node | undefined, name: string): string | undefined => child(n, name)?.text.trim();
  if (child(root, 'Triggers') !== undefined)
    problems.push('/Task/Triggers: the agent task must have no trigger (it is started with /Run)');
  const principal = child(child(root, 'Principals'), 'Principal');
  if (text(principal, 'UserId') !== 'S-1-5-18')
    problems.push('/Task/Principals/Principal/UserId: must be S-1-5-18 (SYSTEM)');
  if (text(principal, 'RunLevel') !== 'HighestAvailable')
    problems.push('/Task/Principals/Principal/RunLevel: must be HighestAvailable');
  const settings = child(root, 'Settings');
  if (text(settings, 'DisallowStartIfOnBatteries') !== 'false')
    problems.push('/Task/Settings/DisallowStartIfOnBatteries: must be false (default true)');
  if (text(settings, 'StopIfGoingOnBatteries') !== 'false')
    problems.push('/Task/Settings/StopIfGoingOnBatteries: must be false (default true)');
  if (text(settings, 'MultipleInstancesPolicy') !== 'IgnoreNew')
    problems.push('/Task/Settings/MultipleInstancesPolicy: must be IgnoreNew');
  const limit = text(settings, 'ExecutionTimeLimit');
  if (limit === undefined || limit === 'PT0S')
    problems.push('/Task/Settings/ExecutionTimeLimit: must be set explicitly (not unlimited)');
  const actions = child(root, 'Actions');
  const context = actions?.attributes.Context;
  if (context !== undefined && principal?.attributes.id !== context)
    problems.push(`/Task/Actions: Context ${context} names no principal`);
  return problems;
}
