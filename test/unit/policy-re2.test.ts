import assert from 'node:assert/strict';
import { fullMatchRegExp, re2Error } from '../../policy/re2.js';

// Table tests of the RE2 dialect: what Go's regexp accepts is accepted and evaluated
// with the same meaning; what it rejects is rejected.

const accepted: [pattern: string, matches: string[], misses: string[]][] = [
  ['/v1/request-landing', ['/v1/request-landing'], ['/v1/request-landing/x', 'x/v1/request-landing']],
  ['/public/.*', ['/public/a', '/public/'], ['/public', '/private/a']],
  ['GET|HEAD', ['GET', 'HEAD'], ['GETX', 'POST']],
  ['/api/v[0-9]+/items', ['/api/v12/items'], ['/api/v/items']],
  ['(?i)get', ['GET', 'get'], ['POST']],
  ['(?P<ver>v[12])/x', ['v1/x'], ['v3/x']],
  ['\\Q/a.b\\E', ['/a.b'], ['/axb']],
  ['[[:digit:]]{3}', ['123'], ['12a']],
  ['\\x41\\x{42}', ['AB'], ['ab']],
  ['a{2,3}', ['aa', 'aaa'], ['a', 'aaaa']],
  ['\\pL+', ['abcé'], ['ab1']],
  ['[^/]+', ['abc'], ['a/b']],
  ['x{,3}', ['x{,3}'], ['xxx']],
  ['\\Aabc\\z', ['abc'], ['abcd']],
  ['/foo/.*\\.json', ['/foo/a.json'], ['/foo/ajson']],
  ['a]b', ['a]b'], ['ab']],
  ['[]a]', [']', 'a'], ['b']],
  ['a\\sb', ['a b', 'a\tb'], ['a\u000bb', 'a\u00a0b']],
  ['[\\w-]+', ['a-b_c'], ['a b']],
];

const rejected: [pattern: string, reason: RegExp][] = [
  ['(?=a)b', /lookahead/],
  ['(?!a)b', /lookahead/],
  ['(?<=a)b', /lookbehind/],
  ['(?<!a)b', /lookbehind/],
  ['(a)\\1', /backreferences/],
  ['(?>a)', /atomic/],
  ['a++', /nested repetition/],
  ['a**', /nested repetition/],
  ['*a', /missing argument/],
  ['a{1001}', /invalid repeat count/],
  ['a{3,2}', /invalid repeat count/],
  ['(a', /missing closing \)/],
  ['a)', /unexpected \)/],
  ['[a', /missing closing \]/],
  ['[z-a]', /invalid character class range/],
  ['\\k<x>', /invalid escape sequence/],
  ['\\Z', /invalid escape sequence/],
  ['a\\', /trailing backslash/],
  ['\\p{NoSuchClass}', /unknown Unicode class/],
];

describe('RE2 regex dialect', () => {
  for (const [p, yes, no] of accepted) {
    it(`accepts ${p}`, () => {
      assert.equal(re2Error(p), undefined);
      const re = fullMatchRegExp(p);
      for (const s of yes) assert.ok(re.test(s), `${p} should fully match ${s}`);
      for (const s of no) assert.ok(!re.test(s), `${p} should not fully match ${s}`);
    });
  }
  for (const [p, reason] of rejected) {
    it(`rejects ${p}`, () => {
      const err = re2Error(p);
      assert.ok(err, `${p} should be rejected`);
      assert.match(err, reason);
    });
  }
});
