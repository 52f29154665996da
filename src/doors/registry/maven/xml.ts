/**
 * A small, strict XML reader for Maven metadata and POMs. It refuses document type declarations
 * and every entity reference besides the five predefined ones and character references, so
 * "billion laughs" and external-entity (XXE) documents fail before anything expands, and it
 * bounds depth and element count.
 */

/** One element: name, child elements and text content (concatenated). */
export interface XmlElement {
  readonly name: string;
  readonly children: XmlElement[];
  text: string;
}

const MAX_DEPTH = 64;
const MAX_ELEMENTS = 200_000;
const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decode(text: string): string {
  return text.replace(/&([^;&\s]{0,12});?/g, (all, ref: string) => {
    if (!all.endsWith(';')) throw new SyntaxError('Bare "&" in XML text');
    if (ref in PREDEFINED) return PREDEFINED[ref] as string;
    const m = /^#(x[0-9a-fA-F]{1,6}|[0-9]{1,7})$/.exec(ref);
    if (m === null)
      throw new SyntaxError(`XML entity "&${ref};" is not allowed (DTDs and entities are refused)`);
    const code = ref[1] === 'x' ? Number.parseInt(ref.slice(2), 16) : Number(ref.slice(1));
    if (code > 0x10ffff) throw new SyntaxError('XML character reference out of range');
    return String.fromCodePoint(code);
  });
}

/** Parses a document; throws SyntaxError on DTDs, entities and malformed markup. */
export function parseXml(input: string): XmlElement {
  const root: XmlElement = { name: '#document', children: [], text: '' };
  const stack: XmlElement[] = [root];
  let count = 0;
  let i = 0;
  while (i < input.length) {
    const lt = input.indexOf('<', i);
    const text = input.slice(i, lt < 0 ? input.length : lt);
    if (text.trim() !== '') {
      if (stack.length === 1) throw new SyntaxError('Text outside the root element');
      (stack.at(-1) as XmlElement).text += decode(text);
    }
    if (lt < 0) break;
    if (input.startsWith('<!DOCTYPE', lt) || input.startsWith('<!ENTITY', lt))
      throw new SyntaxError('XML document type declarations are refused (possible XML bomb or XXE)');
    const close = (marker: string, at: number) => {
      const end = input.indexOf(marker, at);
      if (end < 0) throw new SyntaxError('Unterminated XML markup');
      return end + marker.length;
    };
    if (input.startsWith('<?', lt)) i = close('?>', lt);
    else if (input.startsWith('<!--', lt)) i = close('-->', lt + 4);
    else if (input.startsWith('<![CDATA[', lt)) {
      const end = close(']]>', lt);
      (stack.at(-1) as XmlElement).text += input.slice(lt + 9, end - 3);
      i = end;
    } else if (input.startsWith('<!', lt)) throw new SyntaxError('Unsupported XML declaration');
    else {
      const end = close('>', lt);
      const tag = input.slice(lt + 1, end - 1);
      const m = /^(\/?)([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)$/.exec(tag);
      if (m === null) throw new SyntaxError(`Malformed XML tag "<${tag.slice(0, 40)}>"`);
      decode(m[3] ?? '');
      if (m[1] === '/') {
        const open = stack.pop();
        if (open === undefined || open.name !== m[2] || stack.length === 0)
          throw new SyntaxError(`Mismatched XML end tag "</${m[2]}>"`);
      } else {
        if (++count > MAX_ELEMENTS || stack.length > MAX_DEPTH)
          throw new SyntaxError('XML document too large or too deep');
        if (stack.length === 1 && root.children.length > 0)
          throw new SyntaxError('More than one XML root element');
        const el: XmlElement = { name: m[2] as string, children: [], text: '' };
        (stack.at(-1) as XmlElement).children.push(el);
        if (m[4] !== '/') stack.push(el);
      }
      i = end;
    }
  }
  if (stack.length !== 1 || root.children.length !== 1)
    throw new SyntaxError('Unclosed or missing XML root element');
  return root.children[0] as XmlElement;
}

/** The first child with this name. */
export const child = (el: XmlElement | undefined, name: string): XmlElement | undefined =>
  el?.children.find((c) => c.name === name);

/** Escapes text for element content. */
export const escapeXml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
