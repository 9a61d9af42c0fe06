/**
 * A tiny element tree for the catalog's small XML blobs (index.xml, the c/x/l shard fragments).
 *
 * A real catalog has about a million of these blobs, a few hundred bytes each. A full XML parser
 * costs ~27 µs per blob just to start up and check everything (half a minute per import), so
 * this is a small scanner instead: elements, attributes, text, CDATA, comments, processing
 * instructions and the predefined/numeric entities — what Microsoft's generator writes — with
 * nesting checked, and anything else (DTDs, unclosed or mismatched tags, stray `<`) rejected.
 * Fragments may have several root elements (c/: UpdateIdentity + Properties + Relationships);
 * they all become children of one synthetic root. Namespace prefixes are dropped: blobs carry no
 * namespace, and local names are what the mapping cares about. package.xml never comes here
 * (it is streamed through saxes in package-xml.ts).
 */

export interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

export class XmlFragmentError extends Error {
  override readonly name = 'XmlFragmentError';
}

const ENTITIES: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Replaces the predefined and numeric character references. */
export function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw new XmlFragmentError(`unterminated entity reference ${whole}`);
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    const value = ENTITIES[ref];
    if (value === undefined) throw new XmlFragmentError(`unknown entity &${ref};`);
    return value;
  });
}

const ATTR_RE = /\s*([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/y;
const NAME_RE = /[^\s/>]+/y;

/**
 * Parses an XML fragment (one or several root elements, optional XML declaration) and returns a
 * synthetic root whose children are the fragment's top-level elements.
 *
 * @example parseFragment('<A x="1"/><B>t</B>').children.map((e) => e.name) // ['A', 'B']
 */
export function parseFragment(input: string): XmlElement {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const root: XmlElement = { name: '#fragment', attrs: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const lt = text.indexOf('<', i);
    const top = stack[stack.length - 1]!;
    if (lt < 0 || lt > i) {
      const end = lt < 0 ? n : lt;
      const chunk = text.slice(i, end);
      if (stack.length > 1) top.text += decodeEntities(chunk);
      else if (chunk.trim() !== '') throw new XmlFragmentError('text outside any element');
      i = end;
      continue;
    }
    const next = text.charCodeAt(lt + 1);
    if (next === 0x21 /* ! */) {
      if (text.startsWith('<!--', lt)) {
        const end = text.indexOf('-->', lt + 4);
        if (end < 0) throw new XmlFragmentError('unterminated comment');
        i = end + 3;
      } else if (text.startsWith('<![CDATA[', lt)) {
        const end = text.indexOf(']]>', lt + 9);
        if (end < 0) throw new XmlFragmentError('unterminated CDATA section');
        top.text += text.slice(lt + 9, end);
        i = end + 3;
      } else {
        throw new XmlFragmentError('DTDs and other declarations are not allowed in a catalog blob');
      }
      continue;
    }
    if (next === 0x3f /* ? */) {
      const end = text.indexOf('?>', lt + 2);
      if (end < 0) throw new XmlFragmentError('unterminated processing instruction');
      i = end + 2;
      continue;
    }
    if (next === 0x2f /* / */) {
      const end = text.indexOf('>', lt + 2);
      if (end < 0) throw new XmlFragmentError('unterminated end tag');
      const name = localName(text.slice(lt + 2, end).trim());
      if (stack.length === 1 || top.name !== name)
        throw new XmlFragmentError(`end tag </${name}> does not match <${top.name}>`);
      stack.pop();
      i = end + 1;
      continue;
    }
    NAME_RE.lastIndex = lt + 1;
    const nameMatch = NAME_RE.exec(text);
    if (!nameMatch) throw new XmlFragmentError('a "<" that starts no tag');
    const attrs: Record<string, string> = {};
    let p = NAME_RE.lastIndex;
    for (;;) {
      ATTR_RE.lastIndex = p;
      const m = ATTR_RE.exec(text);
      if (!m) break;
      attrs[localName(m[1]!)] = decodeEntities(m[2] ?? m[3] ?? '');
      p = ATTR_RE.lastIndex;
    }
    while (p < n && /\s/.test(text[p]!)) p++;
    const el: XmlElement = { name: localName(nameMatch[0]), attrs, children: [], text: '' };
    top.children.push(el);
    if (text.startsWith('/>', p)) {
      i = p + 2;
    } else if (text[p] === '>') {
      stack.push(el);
      i = p + 1;
    } else {
      throw new XmlFragmentError(`malformed start tag <${el.name}>`);
    }
  }
  if (stack.length > 1) throw new XmlFragmentError(`element <${stack[stack.length - 1]!.name}> is not closed`);
  if (root.children.length === 0) throw new XmlFragmentError('empty XML fragment');
  return root;
}

/** "ns:Name" → "Name". */
export function localName(qname: string): string {
  const colon = qname.indexOf(':');
  return colon < 0 ? qname : qname.slice(colon + 1);
}

/** The first element with this local name, searching depth-first below `el`. */
export function findFirst(el: XmlElement, name: string): XmlElement | undefined {
  for (const child of el.children) {
    if (child.name === name) return child;
    const deeper = findFirst(child, name);
    if (deeper) return deeper;
  }
  return undefined;
}

/** Direct children with this local name. */
export function childrenNamed(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}

/** Direct child's trimmed text, or null when absent or empty. */
export function childText(el: XmlElement | undefined, name: string): string | null {
  const child = el?.children.find((c) => c.name === name);
  const text = child?.text.trim();
  return text ? text : null;
}
