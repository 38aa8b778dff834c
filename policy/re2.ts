// Regular expressions in policies follow Go's RE2 syntax (Cilium compiles them with
// regexp.Compile; Envoy with RE2). This module rejects what RE2 rejects (lookarounds,
// backreferences, possessive or nested repetition, repeat counts above 1000, bad escapes)
// and translates the accepted pattern into an equivalent JavaScript RegExp (with the `u`
// flag) for offline evaluation, anchored so it must match the whole value.
//
// A few RE2 features have no JavaScript equivalent on Node 20 (inline flag groups in the
// middle of a pattern, the ungreedy flag, negated POSIX classes, \C); they are refused with
// a reason that says so rather than evaluated wrongly.

export class RegexSyntaxError extends Error {
  constructor(readonly pattern: string, reason: string) {
    super(reason);
    this.name = 'RegexSyntaxError';
  }
}

const MAX_REPEAT = 1000;
const JS_SYNTAX = new Set([...'^$\\.*+?()[]{}|/']);

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`\\{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

const PERL_CLASSES = new Set(['d', 'D', 's', 'S', 'w', 'W']);

interface Translated {
  source: string;
  flags: string;
}

/** Validates `pattern` as RE2 and returns the JavaScript translation (unanchored). */
export function translateRe2(pattern: string): Translated {
  const t = new Translator(pattern);
  return t.run();
}

/** The reason RE2 (or our evaluator) refuses `pattern`, or undefined when it is accepted. */
export function re2Error(pattern: string): string | undefined {
  try {
    const { source, flags } = translateRe2(pattern);
    new RegExp(source, flags);
    return undefined;
  } catch (err) {
    return err instanceof RegexSyntaxError ? err.message : `invalid regular expression: ${(err as Error).message}`;
  }
}

const compiled = new Map<string, RegExp>();

/** A RegExp that must match the whole input, as Cilium's Envoy configuration matches `:path`. */
export function fullMatchRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    const { source, flags } = translateRe2(pattern);
    re = new RegExp(`^(?:${source})$`, flags);
    if (compiled.size > 4096) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

class Translator {
  private i = 0;
  private out = '';
  private flags = new Set<string>(['u']);
  private depth = 0;
  /** Whether the previous item can take a repetition operator. */
  private canRepeat = false;
  /** Whether the previous item was itself a repetition (for nested-repetition errors). */
  private lastWasRepeat = false;

  constructor(private readonly p: string) {}

  private fail(reason: string): never {
    throw new RegexSyntaxError(this.p, reason);
  }

  run(): Translated {
    this.leadingFlags();
    while (this.i < this.p.length) this.step();
    if (this.depth > 0) this.fail('missing closing ): unbalanced parenthesis');
    return { source: this.out, flags: [...this.flags].sort().join('') };
  }

  // RE2 accepts flags anywhere; JavaScript only as whole-pattern flags, so a leading
  // `(?flags)` is translated and any later one refused.
  private leadingFlags(): void {
    const m = /^\(\?([imsU]+)\)/.exec(this.p);
    if (!m) return;
    for (const f of m[1]!) {
      if (f === 'U') this.fail('the ungreedy flag (?U) is not supported by l7mesh\'s regex evaluation');
      this.flags.add(f);
    }
    this.i = m[0].length;
  }

  private emitAtom(s: string): void {
    this.out += s;
    this.canRepeat = true;
    this.lastWasRepeat = false;
  }

  private step(): void {
    const c = this.p[this.i]!;
    switch (c) {
      case '\\':
        this.escape(false);
        return;
      case '[':
        this.charClass();
        return;
      case '(':
        this.group();
        return;
      case ')':
        if (this.depth === 0) this.fail('unexpected ): unbalanced parenthesis');
        this.depth--;
        this.i++;
        this.emitAtom(')');
        return;
      case '|':
        this.i++;
        this.out += '|';
        this.canRepeat = false;
        this.lastWasRepeat = false;
        return;
      case '*':
      case '+':
      case '?':
        this.repeat(c);
        return;
      case '{': {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.p.slice(this.i));
        if (m) {
          this.repeatCount(m);
          return;
        }
        this.i++;
        this.emitAtom('\\{');
        return;
      }
      case '^':
      case '$':
        this.i++;
        this.out += c;
        this.canRepeat = false;
        this.lastWasRepeat = false;
        return;
      case '.':
        this.i++;
        this.emitAtom('.');
        return;
      default:
        this.i++;
        this.emitAtom(literal(c, false));
    }
  }

  private repeat(op: string): void {
    if (this.lastWasRepeat) this.fail(`invalid nested repetition operator: ${this.p.slice(this.i - 1, this.i + 1)}`);
    if (!this.canRepeat) this.fail(`missing argument to repetition operator: ${op}`);
    this.i++;
    this.out += op;
    this.afterRepeat(op);
  }

  private repeatCount(m: RegExpExecArray): void {
    if (this.lastWasRepeat) this.fail(`invalid nested repetition operator: ${m[0]}`);
    if (!this.canRepeat) this.fail(`missing argument to repetition operator: ${m[0]}`);
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? undefined : Number(m[3]);
    if (min > MAX_REPEAT || (max !== undefined && max > MAX_REPEAT)) this.fail(`invalid repeat count: ${m[0]} (RE2 allows at most ${MAX_REPEAT})`);
    if (max !== undefined && max < min) this.fail(`invalid repeat count: ${m[0]}`);
    this.i += m[0].length;
    this.out += m[0];
    this.afterRepeat(m[0]);
  }

  /** After a repetition operator `op` was copied: an optional lazy `?`, then no second operator. */
  private afterRepeat(op: string): void {
    if (this.p[this.i] === '?') {
      this.out += '?';
      this.i++;
    }
    this.canRepeat = false;
    this.lastWasRepeat = true;
    const next = this.p[this.i];
    if (next === '*' || next === '+' || next === '?') this.fail(`invalid nested repetition operator: ${op}${next}`);
  }

  private group(): void {
    const rest = this.p.slice(this.i);
    if (!rest.startsWith('(?')) {
      this.i++;
      this.depth++;
      this.out += '(';
      this.canRepeat = false;
      this.lastWasRepeat = false;
      return;
    }
    if (rest.startsWith('(?=') || rest.startsWith('(?!')) this.fail('lookahead (?= / (?! is not supported by RE2');
    if (rest.startsWith('(?<=') || rest.startsWith('(?<!')) this.fail('lookbehind (?<= / (?<! is not supported by RE2');
    if (rest.startsWith('(?>')) this.fail('atomic groups (?> are not supported by RE2');
    if (rest.startsWith('(?#')) this.fail('comments (?# are not supported by RE2');
    if (rest.startsWith('(?(')) this.fail('conditionals (?( are not supported by RE2');
    if (rest.startsWith('(?:')) {
      this.i += 3;
      this.depth++;
      this.out += '(?:';
      this.canRepeat = false;
      this.lastWasRepeat = false;
      return;
    }
    const named = /^\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
    if (named) {
      this.i += named[0].length;
      this.depth++;
      this.out += `(?<${named[1]}>`;
      this.canRepeat = false;
      this.lastWasRepeat = false;
      return;
    }
    if (/^\(\?P?</.test(rest)) this.fail('invalid named capture');
    if (/^\(\?-?[imsU]+(-[imsU]*)?[:)]/.test(rest)) this.fail('inline flags are supported only as a leading (?i), (?m) or (?s) by l7mesh\'s regex evaluation');
    this.fail(`invalid or unsupported Perl syntax: ${rest.slice(0, 3)}`);
  }

  /** Handles a backslash escape at this.i; returns the JS text (also emitted unless inClass). */
  private escape(inClass: boolean): string {
    const p = this.p;
    const n = p[this.i + 1];
    if (n === undefined) this.fail('trailing backslash at end of expression');
    let js: string;
    let len = 2;
    if (/[1-9]/.test(n) && !/[0-7]/.test(p[this.i + 2] ?? '')) this.fail(`invalid escape sequence: \\${n} (backreferences are not supported by RE2)`);
    if (/[0-7]/.test(n)) {
      const m = /^[0-7]{1,3}/.exec(p.slice(this.i + 1))!;
      len = 1 + m[0].length;
      js = codePointEscape(parseInt(m[0], 8));
    } else if (n === 'x') {
      const braced = /^x\{([0-9A-Fa-f]{1,8})\}/.exec(p.slice(this.i + 1));
      const two = /^x([0-9A-Fa-f]{2})/.exec(p.slice(this.i + 1));
      if (braced) {
        const cp = parseInt(braced[1]!, 16);
        if (cp > 0x10ffff) this.fail(`invalid escape sequence: \\x{${braced[1]}}`);
        js = codePointEscape(cp);
        len = 1 + braced[0].length;
      } else if (two) {
        js = codePointEscape(parseInt(two[1]!, 16));
        len = 4;
      } else this.fail('invalid escape sequence: \\x');
    } else if (n === 'p' || n === 'P') {
      const braced = /^[pP]\{(\^?)([A-Za-z_]+)\}/.exec(p.slice(this.i + 1));
      const one = /^[pP]([A-Za-z])/.exec(p.slice(this.i + 1));
      let name: string;
      let neg = n === 'P';
      if (braced) {
        name = braced[2]!;
        if (braced[1]) neg = !neg;
        len = 1 + braced[0].length;
      } else if (one) {
        name = one[1]!;
        len = 3;
      } else this.fail(`invalid character class range: \\${n}`);
      if (name === 'Any') js = neg ? '[^\\s\\S]' : '[\\s\\S]';
      else js = `\\${neg ? 'P' : 'p'}{${name}}`;
      try {
        new RegExp(js, 'u');
      } catch {
        this.fail(`invalid character class range: unknown Unicode class ${name}`);
      }
    } else if (n === 'Q') {
      const end = p.indexOf('\\E', this.i + 2);
      const lit = end === -1 ? p.slice(this.i + 2) : p.slice(this.i + 2, end);
      len = end === -1 ? p.length - this.i : end + 2 - this.i;
      js = [...lit].map((ch) => literal(ch, inClass)).join('');
      if (inClass) {
        this.i += len;
        return js;
      }
      this.i += len;
      if (lit.length === 0) return '';
      this.emitAtom(lit.length === 1 ? js : `(?:${js})`);
      return js;
    } else if (n === 'E') {
      // A stray \E outside \Q is ignored by RE2.
      this.i += 2;
      return '';
    } else if (n === 's') {
      // Go's \s is ASCII [\t\n\f\r ]; JavaScript's also takes \v and Unicode spaces.
      js = inClass ? '\\t\\n\\f\\r ' : '[\\t\\n\\f\\r ]';
    } else if (n === 'S' && !inClass) {
      js = '[^\\t\\n\\f\\r ]';
    } else if (PERL_CLASSES.has(n)) {
      js = `\\${n}`;
    } else if (n === 'a') js = '\\x07';
    else if (n === 'f') js = '\\f';
    else if (n === 't') js = '\\t';
    else if (n === 'n') js = '\\n';
    else if (n === 'r') js = '\\r';
    else if (n === 'v') js = '\\v';
    else if (n === 'b' || n === 'B' || n === 'A' || n === 'z') {
      if (inClass) this.fail(`invalid escape sequence: \\${n} inside a character class`);
      this.i += 2;
      this.out += n === 'A' ? '^' : n === 'z' ? '$' : `\\${n}`;
      this.canRepeat = false;
      this.lastWasRepeat = false;
      return '';
    } else if (n === 'C') this.fail('\\C (any byte) is not supported by l7mesh\'s regex evaluation');
    else if (/[A-Za-z0-9]/.test(n)) this.fail(`invalid escape sequence: \\${n}`);
    else js = literal(n, inClass);
    this.i += len;
    if (!inClass) this.emitAtom(js);
    return js;
  }

  private charClass(): void {
    const p = this.p;
    let j = this.i + 1;
    let out = '[';
    if (p[j] === '^') {
      out += '^';
      j++;
    }
    let first = true;
    let items = 0;
    // The previous single character (code point), for range checks.
    let prevChar: number | undefined;
    for (;;) {
      if (j >= p.length) this.fail('missing closing ]: unterminated character class');
      const c = p[j]!;
      if (c === ']' && !first) {
        j++;
        break;
      }
      first = false;
      if (c === '[' && p[j + 1] === ':') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(p.slice(j));
        if (m) {
          if (m[1]) this.fail('negated POSIX classes [:^name:] are not supported by l7mesh\'s regex evaluation');
          const body = POSIX_CLASSES[m[2]!];
          if (!body) this.fail(`invalid character class range: [:${m[2]}:]`);
          out += body;
          j += m[0].length;
          items++;
          prevChar = undefined;
          continue;
        }
      }
      if (c === '-' && prevChar !== undefined && p[j + 1] !== ']' && p[j + 1] !== undefined) {
        // A range: read its upper end.
        j++;
        let hi: number;
        let hiText: string;
        if (p[j] === '\\') {
          const save = this.i;
          this.i = j;
          hiText = this.escape(true);
          j = this.i;
          this.i = save;
          hi = singleCodePoint(hiText);
          if (hi < 0) this.fail(`invalid character class range: ${p.slice(j - 2, j)}`);
        } else {
          const cp = p.codePointAt(j)!;
          hiText = literal(String.fromCodePoint(cp), true);
          hi = cp;
          j += cp > 0xffff ? 2 : 1;
        }
        if (hi < prevChar) this.fail(`invalid character class range: ${String.fromCodePoint(prevChar)}-${String.fromCodePoint(hi)}`);
        out += '-' + hiText;
        prevChar = undefined;
        continue;
      }
      if (c === '\\') {
        const save = this.i;
        this.i = j;
        const text = this.escape(true);
        j = this.i;
        this.i = save;
        out += text;
        prevChar = singleCodePoint(text);
        if (prevChar !== undefined && prevChar < 0) prevChar = undefined;
        items++;
        continue;
      }
      const cp = p.codePointAt(j)!;
      out += literal(String.fromCodePoint(cp), true);
      prevChar = cp;
      j += cp > 0xffff ? 2 : 1;
      items++;
    }
    if (items === 0 && out === '[') this.fail('missing closing ]: empty character class');
    this.i = j;
    this.emitAtom(out + ']');
  }
}

function literal(ch: string, inClass: boolean): string {
  if (inClass) {
    if (ch === '\\' || ch === ']' || ch === '[' || ch === '-' || ch === '^') return `\\${ch}`;
    return ch;
  }
  return JS_SYNTAX.has(ch) ? `\\${ch}` : ch;
}

function codePointEscape(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

/** The code point a translated single-character item stands for, or -1 for a class. */
function singleCodePoint(js: string): number {
  const u = /^\\u\{([0-9a-f]+)\}$/.exec(js);
  if (u) return parseInt(u[1]!, 16);
  const simple: Record<string, number> = { '\\t': 9, '\\n': 10, '\\v': 11, '\\f': 12, '\\r': 13, '\\x07': 7 };
  if (js in simple) return simple[js]!;
  if (js.length === 2 && js[0] === '\\' && !/[A-Za-z]/.test(js[1]!)) return js.codePointAt(1)!;
  if ([...js].length === 1) return js.codePointAt(0)!;
  return -1;
}
