// Crafted raw HTTP/1.x requests against the rule set of the issue example
// (GET /api/v1/.*; POST /api/v1/data with Content-Type: application/json) plus a host
// rule (GET /hosted/.* only for Host good.example), each with
// the outcome l7mesh must produce. "allow" means the backend answers 200 and sees only
// paths the rules allow; "deny" means the proxy answers an error (or closes) and the
// backend sees nothing. Independently of the expectation, the suite's oracle flags any
// request that reached the backend outside the rules (a bypass).

export interface BypassCase {
  name: string;
  raw: string;
  expect: 'allow' | 'deny';
  /** What the case probes. */
  group: string;
}

const H = 'Host: web\r\n';
const get = (target: string, extra = '', version = 'HTTP/1.1') => `GET ${target} ${version}\r\n${H}${extra}\r\n`;

export const bypassCases: BypassCase[] = [
  { group: 'baseline', name: 'allowed path', raw: get('/api/v1/users'), expect: 'allow' },
  { group: 'baseline', name: 'denied path', raw: get('/api/v2/users'), expect: 'deny' },
  { group: 'baseline', name: 'prefix without trailing slash', raw: get('/api/v1'), expect: 'deny' },
  { group: 'case', name: 'upper-case path', raw: get('/API/V1/users'), expect: 'deny' },

  { group: 'encoding', name: '%2f between dot segments', raw: get('/api/v1/..%2f..%2fapi/v2/users'), expect: 'deny' },
  { group: 'encoding', name: '%2F upper-case', raw: get('/api/v1%2F..%2Fv2/users'), expect: 'deny' },
  { group: 'encoding', name: '%2f in an allowed path', raw: get('/api%2fv1/users'), expect: 'deny' },
  { group: 'encoding', name: '%5c backslash', raw: get('/api/v1/..%5c..%5capi/v2/users'), expect: 'deny' },
  { group: 'encoding', name: '%5C upper-case', raw: get('/api/v1/..%5C..%5Capi/v2/users'), expect: 'deny' },
  { group: 'encoding', name: 'raw backslash', raw: get('/api/v1/..\\..\\api/v2/users'), expect: 'deny' },
  { group: 'encoding', name: '%2e%2e segment', raw: get('/api/v1/%2e%2e/v2/users'), expect: 'deny' },
  { group: 'encoding', name: '%2E%2E segment', raw: get('/api/v1/%2E%2E/v2/users'), expect: 'deny' },
  { group: 'encoding', name: '.%2e segment', raw: get('/api/v1/.%2e/v2/users'), expect: 'deny' },
  { group: 'encoding', name: '%2e. segment', raw: get('/api/v1/%2e./v2/users'), expect: 'deny' },
  { group: 'encoding', name: 'double-encoded dots stay literal', raw: get('/api/v1/%252e%252e/v2/users'), expect: 'allow' },
  { group: 'encoding', name: 'overlong UTF-8 dots stay literal', raw: get('/api/v1/%c0%ae%c0%ae/v2/users'), expect: 'allow' },
  { group: 'encoding', name: 'encoded letter in denied path', raw: get('/api/v%32/users'), expect: 'deny' },

  { group: 'dot-segments', name: '..', raw: get('/api/v1/../v2/users'), expect: 'deny' },
  { group: 'dot-segments', name: './..', raw: get('/api/v1/./../v2/users'), expect: 'deny' },
  { group: 'dot-segments', name: 'two levels', raw: get('/api/v1/users/../../v2/users'), expect: 'deny' },
  { group: 'dot-segments', name: 'above the root', raw: get('/api/v1/../../../../api/v2/users'), expect: 'deny' },
  { group: 'dot-segments', name: 'leading ./', raw: get('/./api/v2/users'), expect: 'deny' },
  { group: 'dot-segments', name: 'denied path resolving into an allowed one', raw: get('/api/v2/../v1/users'), expect: 'allow' },

  { group: 'slashes', name: 'leading //', raw: get('//api/v2/users'), expect: 'deny' },
  { group: 'slashes', name: 'leading ///', raw: get('///api/v2/users'), expect: 'deny' },
  { group: 'slashes', name: 'merged // in allowed path', raw: get('/api//v1/users'), expect: 'allow' },
  // Envoy resolves dot segments before merging slashes and forwards what it checked:
  // the backend receives /api/v1/v2/users, inside the rule.
  { group: 'slashes', name: '// before .. (backend gets the checked path)', raw: get('/api/v1//../v2/users'), expect: 'allow' },

  { group: 'parameters', name: '..; (servlet dot segment)', raw: get('/api/v1/..;/v2/users'), expect: 'deny' },
  { group: 'parameters', name: '.; then ..', raw: get('/api/v1/.;/../v2/users'), expect: 'deny' },
  { group: 'parameters', name: '..;x=y', raw: get('/api/v1/..;x=y/v2/users'), expect: 'deny' },
  { group: 'parameters', name: ';/.. after allowed prefix', raw: get('/api/v1;/../v2/users'), expect: 'deny' },
  { group: 'parameters', name: ';param on denied segment', raw: get('/api/v2;/users'), expect: 'deny' },
  { group: 'parameters', name: 'jsessionid on allowed path', raw: get('/api/v1/users;jsessionid=1'), expect: 'allow' },

  { group: 'fragment', name: '# then dot segments', raw: get('/api/v1/users#/../../v2/users'), expect: 'deny' },
  { group: 'fragment', name: '# on denied path', raw: get('/api/v2/users#/api/v1/'), expect: 'deny' },

  { group: 'absolute-form', name: 'denied path', raw: get('http://web/api/v2/users'), expect: 'deny' },
  { group: 'absolute-form', name: 'allowed path', raw: get('http://web/api/v1/users'), expect: 'allow' },
  { group: 'absolute-form', name: 'dot segments', raw: get('http://web/api/v1/../v2/users'), expect: 'deny' },
  { group: 'absolute-form', name: 'https scheme, denied path', raw: get('https://web/api/v2/users'), expect: 'deny' },
  { group: 'absolute-form', name: 'userinfo', raw: get('http://x@web/api/v2/users'), expect: 'deny' },

  { group: 'query', name: 'allowed path in the query', raw: get('/api/v2/users?/api/v1/x'), expect: 'deny' },
  { group: 'query', name: 'dot segments in the query', raw: get('/api/v1/users?x=/../../v2'), expect: 'allow' },

  {
    group: 'smuggling',
    name: 'CL + TE',
    raw: `POST /api/v1/data HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/v2/users HTTP/1.1\r\n${H}\r\n`,
    expect: 'deny',
  },
  {
    group: 'smuggling',
    name: 'TE + CL',
    raw: `POST /api/v1/data HTTP/1.1\r\n${H}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /api/v2/users HTTP/1.1\r\n${H}\r\n`,
    expect: 'deny',
  },
  {
    group: 'smuggling',
    name: 'duplicate Content-Length (different)',
    raw: `POST /api/v1/data HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}GET /api/v2/users HTTP/1.1\r\n${H}\r\n`,
    expect: 'deny',
  },
  {
    group: 'smuggling',
    name: 'obfuscated Transfer-Encoding',
    raw: `POST /api/v1/data HTTP/1.1\r\n${H}Content-Type: application/json\r\nTransfer-Encoding: xchunked\r\nContent-Length: 2\r\n\r\n{}`,
    expect: 'deny',
  },
  {
    group: 'smuggling',
    name: 'pipelined denied request after an allowed one',
    raw: `${get('/api/v1/users')}${get('/api/v2/users')}`,
    expect: 'allow',
  },
  {
    group: 'smuggling',
    name: 'request line injected via LF-only line endings',
    raw: `GET /api/v1/users HTTP/1.1\nHost: web\nX: y\r\nGET /api/v2/users HTTP/1.1\r\n${H}\r\n`,
    expect: 'deny',
  },

  { group: 'host', name: 'host rule, right Host', raw: `GET /hosted/a HTTP/1.1\r\nHost: good.example\r\n\r\n`, expect: 'allow' },
  { group: 'host', name: 'host rule, wrong Host', raw: `GET /hosted/a HTTP/1.1\r\nHost: evil.example\r\n\r\n`, expect: 'deny' },
  { group: 'host', name: 'host rule, Host with a port', raw: `GET /hosted/a HTTP/1.1\r\nHost: good.example:80\r\n\r\n`, expect: 'deny' },
  { group: 'host', name: 'host rule, upper-case Host', raw: `GET /hosted/a HTTP/1.1\r\nHost: GOOD.example\r\n\r\n`, expect: 'deny' },
  { group: 'host', name: 'duplicate Host, good first', raw: `GET /hosted/a HTTP/1.1\r\nHost: good.example\r\nHost: evil.example\r\n\r\n`, expect: 'deny' },
  { group: 'host', name: 'duplicate Host, evil first', raw: `GET /hosted/a HTTP/1.1\r\nHost: evil.example\r\nHost: good.example\r\n\r\n`, expect: 'deny' },
  { group: 'host', name: 'absolute-form authority overrides Host', raw: `GET http://evil.example/hosted/a HTTP/1.1\r\nHost: good.example\r\n\r\n`, expect: 'deny' },
  { group: 'host', name: 'absolute-form with the good authority', raw: `GET http://good.example/hosted/a HTTP/1.1\r\nHost: evil.example\r\n\r\n`, expect: 'allow' },
  {
    group: 'headers',
    name: 'underscore header name standing in for Content-Type',
    raw: `POST /api/v1/data HTTP/1.1\r\n${H}Content_Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    expect: 'deny',
  },
  {
    group: 'headers',
    name: 'space before colon',
    raw: `POST /api/v1/data HTTP/1.1\r\n${H}Content-Type : application/json\r\nContent-Length: 2\r\n\r\n{}`,
    expect: 'deny',
  },
  {
    group: 'headers',
    name: 'obs-fold continuation line',
    raw: `POST /api/v1/data HTTP/1.1\r\n${H}X-Pad: a\r\n Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    expect: 'deny',
  },
  {
    group: 'headers',
    name: 'Content-Type twice',
    raw: `POST /api/v1/data HTTP/1.1\r\n${H}Content-Type: text/plain\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    expect: 'deny',
  },
  {
    group: 'headers',
    name: 'JSON content type, allowed POST',
    raw: `POST /api/v1/data HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    expect: 'allow',
  },
  { group: 'headers', name: 'X-Forwarded-For does not matter', raw: get('/api/v2/users', 'X-Forwarded-For: 127.77.0.20\r\n'), expect: 'deny' },

  { group: 'version', name: 'HTTP/1.0 allowed path', raw: get('/api/v1/users', '', 'HTTP/1.0'), expect: 'deny' },
  { group: 'version', name: 'HTTP/1.0 denied path', raw: get('/api/v2/users', '', 'HTTP/1.0'), expect: 'deny' },
  { group: 'version', name: 'HTTP/0.9 request line', raw: 'GET /api/v2/users\r\n\r\n', expect: 'deny' },
  { group: 'version', name: 'HTTP/2.0 in an HTTP/1 request line', raw: get('/api/v2/users', '', 'HTTP/2.0'), expect: 'deny' },

  { group: 'methods', name: 'lower-case get', raw: `get /api/v1/users HTTP/1.1\r\n${H}\r\n`, expect: 'deny' },
  { group: 'methods', name: 'GETS', raw: `GETS /api/v1/users HTTP/1.1\r\n${H}\r\n`, expect: 'deny' },
  { group: 'methods', name: 'POST to a GET-only path', raw: `POST /api/v1/users HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, expect: 'deny' },
  { group: 'methods', name: 'HEAD', raw: `HEAD /api/v1/users HTTP/1.1\r\n${H}\r\n`, expect: 'deny' },
  {
    group: 'methods',
    name: 'PUT with JSON',
    raw: `PUT /api/v1/data HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    expect: 'deny',
  },
  { group: 'methods', name: 'CONNECT', raw: `CONNECT web:80 HTTP/1.1\r\n${H}\r\n`, expect: 'deny' },
  { group: 'methods', name: 'OPTIONS *', raw: `OPTIONS * HTTP/1.1\r\n${H}\r\n`, expect: 'deny' },
  { group: 'methods', name: 'leading space before method', raw: ` GET /api/v1/users HTTP/1.1\r\n${H}\r\n`, expect: 'deny' },
  { group: 'methods', name: 'tab as separator', raw: `GET\t/api/v2/users\tHTTP/1.1\r\n${H}\r\n`, expect: 'deny' },
];
