// Test-only OpenID Connect provider for tests/integration/test_oidc_provider.py.
//
// Built on oauth2-mock-server's JS API. Listens on 127.0.0.1 (OS-assigned port), sets the
// issuer to http://127.0.0.1:PORT and prints one JSON line on stdout:
//   {"issuer": "http://127.0.0.1:PORT", "control": "http://127.0.0.1:CPORT", "kid": "..."}
// It exits when its stdin closes (so it never outlives the test run) or on SIGTERM/SIGINT.
//
// Additions over the stock mock (all through its hooks):
//   * access tokens get `aud` (--audience), `tenant_id` (--tenant) and a `jti`; client
//     credentials tokens get `sub` = client_id; authorization-code tokens get the `scope`
//     and `sub` (login_hint) given to /authorize;
//   * the token endpoint authenticates clients (client_secret_basic or client_secret_post)
//     against --client ID:SECRET pairs and accepts each authorization code once;
//   * test-only form fields `mock_claims` / `mock_header` (JSON objects) are merged into the
//     access token's payload / header before signing (a null value deletes the member);
//   * a control server: POST /rotate {"alg": "RS256"} generates a new signing key and
//     answers {"kid": ...}.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import { OAuth2Server } from 'oauth2-mock-server';

const { values: opts } = parseArgs({
  options: {
    audience: { type: 'string', default: 'vanta-api' },
    tenant: { type: 'string', default: 'tnt_demo' },
    alg: { type: 'string', default: 'RS256' },
    client: { type: 'string', multiple: true, default: [] },
  },
});

const clients = new Map();
for (const pair of opts.client) {
  const i = pair.indexOf(':');
  if (i <= 0) throw new Error(`--client wants ID:SECRET, got ${pair}`);
  clients.set(pair.slice(0, i), pair.slice(i + 1));
}

const server = new OAuth2Server();
const firstKey = await server.issuer.keys.generate(opts.alg);
await server.start(0, '127.0.0.1');
// start() would name the issuer http://localhost:PORT for any 127.x host; we want the
// address we actually listen on.
server.issuer.url = `http://127.0.0.1:${server.address().port}`;

const formDecode = (s) => decodeURIComponent(s.replace(/\+/g, ' '));

// RFC 6749 §2.3.1: client_secret_basic form-encodes id and secret before base64.
function clientCredentials(req) {
  const header = req.headers.authorization ?? '';
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (m) {
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return null;
    try {
      return { id: formDecode(decoded.slice(0, i)), secret: formDecode(decoded.slice(i + 1)) };
    } catch {
      return null;
    }
  }
  const body = req.body ?? {};
  if (typeof body.client_id === 'string' && typeof body.client_secret === 'string') {
    return { id: body.client_id, secret: body.client_secret };
  }
  return null;
}

function parseJsonObject(value) {
  if (typeof value !== 'string') return {};
  const parsed = JSON.parse(value);
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
}

function merge(target, overrides) {
  for (const [k, v] of Object.entries(overrides)) {
    if (v === null) delete target[k];
    else target[k] = v;
  }
}

// code -> what /authorize was asked for; consumed by the token request.
const codes = new Map();
server.service.on('beforeAuthorizeRedirect', (redirect, req) => {
  const code = redirect.url.searchParams.get('code');
  if (code) {
    codes.set(code, { scope: req.query.scope, sub: req.query.login_hint });
  }
});

// The token handler signs the access token first, then (for code grants) the id_token.
const signed = new WeakMap();
server.service.on('beforeTokenSigning', (token, req) => {
  const n = (signed.get(req) ?? 0) + 1;
  signed.set(req, n);
  if (n > 1) return; // the id_token keeps the mock's claims (aud = client_id)
  const body = req.body ?? {};
  const p = token.payload;
  p.aud = typeof body.aud === 'string' ? body.aud : opts.audience;
  p.tenant_id = opts.tenant;
  p.jti = randomUUID();
  if (body.grant_type === 'client_credentials') {
    const creds = clientCredentials(req);
    if (creds) p.sub = creds.id;
  } else if (body.grant_type === 'authorization_code') {
    const granted = codes.get(body.code);
    if (granted?.scope) p.scope = granted.scope;
    if (granted?.sub) p.sub = granted.sub;
  }
  merge(p, parseJsonObject(body.mock_claims));
  merge(token.header, parseJsonObject(body.mock_header));
});

server.service.on('beforeResponse', (response, req) => {
  const body = req.body ?? {};
  const fail = (status, error, description) => {
    response.statusCode = status;
    response.body = { error, error_description: description };
  };
  if (clients.size > 0) {
    const creds = clientCredentials(req);
    if (!creds || clients.get(creds.id) !== creds.secret) {
      fail(401, 'invalid_client', 'client authentication failed');
      return;
    }
  }
  if (body.grant_type === 'authorization_code') {
    const granted = codes.get(body.code);
    if (granted === undefined) {
      fail(400, 'invalid_grant', 'unknown or already used authorization code');
      return;
    }
    codes.delete(body.code);
    if (granted.scope) response.body.scope = granted.scope;
  }
});

const control = createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => { raw += chunk; });
  req.on('end', async () => {
    const reply = (status, obj) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    try {
      if (req.method === 'POST' && req.url === '/rotate') {
        const { alg } = raw ? JSON.parse(raw) : {};
        const key = await server.issuer.keys.generate(alg ?? opts.alg);
        reply(200, { kid: key.kid }); // never the private JWK
      } else {
        reply(404, { error: 'not_found' });
      }
    } catch (err) {
      reply(500, { error: String(err) });
    }
  });
});
await new Promise((resolve, reject) => {
  control.listen(0, '127.0.0.1').once('listening', resolve).once('error', reject);
});

async function shutdown() {
  control.close();
  try {
    await server.stop();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();

process.stdout.write(`${JSON.stringify({
  issuer: server.issuer.url,
  control: `http://127.0.0.1:${control.address().port}`,
  kid: firstKey.kid,
})}\n`);
