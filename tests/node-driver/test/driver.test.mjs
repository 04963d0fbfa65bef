// The driver against the embedded authorization server (`oauth-harness serve`).
// Token requests are counted by watching what the driver sends.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { connection, helpers } from '../generated/connector.js';
import { TokenDriver, MemoryStore, fetchSend } from '../driver.mjs';

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const harnessPath = path.resolve(
  packageDir,
  process.env.OAUTH_HARNESS ?? '../../target/debug/oauth-harness',
);
const LIFETIME = 40; // seconds; renewal is due a quarter of it before expiry

let server;
let urls; // { token, revocation, resource, refreshToken }

before(async () => {
  if (!existsSync(harnessPath)) {
    throw new Error(`${harnessPath} is missing: run \`cargo build\` first (or set OAUTH_HARNESS)`);
  }
  server = spawn(harnessPath, ['serve', '--port', '0', '--token-lifetime', String(LIFETIME)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let printed = '';
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.once('exit', (code) => reject(new Error(`oauth-harness exited (${code}):\n${printed}`)));
    server.stdout.on('data', (chunk) => {
      printed += chunk;
      if (printed.includes('press Ctrl-C to stop')) resolve();
    });
  });
  const find = (pattern) => {
    const match = printed.match(pattern);
    assert.ok(match, `oauth-harness did not print ${pattern}:\n${printed}`);
    return match[1];
  };
  urls = {
    token: find(/token endpoint\s+(\S+)/),
    revocation: find(/revocation endpoint\s+(\S+)/),
    resource: find(/protected resource\s+(\S+)/),
    refreshToken: find(/refresh token for demo-basic: (\S+)/),
  };
});

after(async () => {
  if (!server || server.exitCode !== null) return;
  server.removeAllListeners('exit');
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill();
  await exited;
});

const sameUrl = (a, b) => new URL(a).href === new URL(b).href;
const api = () => ({ method: 'GET', url: urls.resource, headers: [], body: new Uint8Array() });
const clientCredentials = (extra = {}) =>
  JSON.stringify({
    grant_type: 'client_credentials',
    token_url: urls.token,
    client_id: 'demo-basic',
    client_secret: 'demo-basic-secret',
    client_auth: 'basic',
    ...extra,
  });

/** A driver whose sends (and, with `events`, store writes) are recorded in order. */
function driverFor(config, { store = new MemoryStore(), clock, events = [] } = {}) {
  const send = async (request) => {
    const response = await fetchSend(request);
    events.push({ op: 'send', request, response });
    return response;
  };
  const driver = new TokenDriver({ connection, config, store, send, clock });
  const sent = (url) => events.filter((e) => e.op === 'send' && sameUrl(e.request.url, url));
  return {
    driver,
    events,
    tokenRequests: () => sent(urls.token),
    resourceRequests: () => sent(urls.resource),
  };
}

/** A store with async methods that records its writes into `events`. */
function recordingStore(events) {
  const inner = new MemoryStore();
  return {
    secret: () => inner.secret(),
    load: async (key) => inner.load(key),
    save: async (key, state) => {
      events.push({ op: 'save', state });
      inner.save(key, state);
    },
    replaceIfUnchanged: async (key, expected, next) => {
      events.push({ op: 'replace', state: next });
      return inner.replaceIfUnchanged(key, expected, next);
    },
  };
}

/** A clock that starts at the real time and can be moved forward. */
function movableClock() {
  let offset = 0;
  const clock = () => Math.floor(Date.now() / 1000) + offset;
  clock.advance = (seconds) => {
    offset += seconds;
  };
  return clock;
}

const json = (response) => JSON.parse(new TextDecoder().decode(response.body));
const header = (request, name) =>
  request.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];

test('a token is obtained once, then reused', async () => {
  const { driver, tokenRequests, resourceRequests } = driverFor(clientCredentials());
  const first = await driver.call(api());
  const second = await driver.call(api());
  assert.equal(first.response.status, 200);
  assert.equal(second.response.status, 200);
  assert.equal(json(second.response).client_id, 'demo-basic');
  assert.equal(tokenRequests().length, 1, 'exactly one token request');
  assert.equal(resourceRequests().length, 2);
  assert.deepEqual(second.steps, ['sent: 200']);
});

test('a token is renewed ahead of its expiry', async () => {
  const clock = movableClock();
  const { driver, events, tokenRequests } = driverFor(clientCredentials(), { clock });
  assert.equal((await driver.call(api())).response.status, 200);
  assert.equal(tokenRequests().length, 1);

  clock.advance(LIFETIME - 5);
  const before = events.length;
  const renewed = await driver.call(api());
  const during = events.slice(before);
  assert.equal(renewed.response.status, 200);
  assert.equal(tokenRequests().length, 2, 'one new token request');
  assert.ok(sameUrl(during[0].request.url, urls.token), 'the token request came first');
  assert.equal(during.length, 2, 'then the API call, once');
  assert.ok(sameUrl(during[1].request.url, urls.resource));
  const apiStatuses = events.filter((e) => sameUrl(e.request.url, urls.resource)).map((e) => e.response.status);
  assert.ok(!apiStatuses.includes(401), `the API never answered 401: ${apiStatuses}`);
});

test('a rotated refresh token is stored before the new access token is used', async () => {
  const clock = movableClock();
  const events = [];
  const config = JSON.stringify({
    token_url: urls.token,
    client_id: 'demo-basic',
    client_secret: 'demo-basic-secret',
    refresh_token: urls.refreshToken,
  });
  const store = recordingStore(events);
  const { driver, tokenRequests } = driverFor(config, { store, clock, events });

  const refreshTokens = [urls.refreshToken];
  for (let round = 0; round < 3; round++) {
    if (round > 0) clock.advance(LIFETIME - 5); // renew with the kept (rotated) refresh token
    const { response, steps } = await driver.call(api());
    assert.equal(response.status, 200, `round ${round}: ${steps}`);
    assert.equal(tokenRequests().length, round + 1, `round ${round}: one token request`);
    const kept = driver.connection.describe(await store.load(driver.key));
    assert.ok(kept.refreshTokenRotated, `round ${round}: the server rotated the refresh token`);
    assert.ok(!refreshTokens.includes(kept.refreshToken), `round ${round}: a new refresh token`);
    refreshTokens.push(kept.refreshToken);
  }

  // Every state holding a rotated refresh token was saved before its access
  // token went to the API.
  const rotatedSaves = events
    .map((event, index) => ({ event, index }))
    .filter(({ event }) => event.op === 'save' && driver.connection.describe(event.state).refreshTokenRotated);
  assert.equal(rotatedSaves.length, 3, 'one save per rotation');
  rotatedSaves.forEach(({ event, index }) => {
    const token = driver.connection.describe(event.state);
    const firstUse = events.findIndex(
      (e) => e.op === 'send' && sameUrl(e.request.url, urls.resource) && header(e.request, 'authorization')?.endsWith(token.accessToken),
    );
    assert.ok(firstUse > index, `saved at ${index}, first used at ${firstUse}`);
  });

  // The printed refresh token was spent at the server: a driver without the
  // stored state cannot use it any more.
  const fresh = driverFor(config, { clock });
  await assert.rejects(fresh.driver.call(api()), /invalid_grant/);
  assert.equal(fresh.resourceRequests().length, 0);
});

test("an API's 401 renews the token and retries once", async () => {
  const store = new MemoryStore();
  const config = clientCredentials({ revocation_url: urls.revocation });
  const { driver, events, tokenRequests, resourceRequests } = driverFor(config, { store });
  assert.equal((await driver.call(api())).response.status, 200);

  // Revoke the held access token at the server, through the component.
  const held = store.load(driver.key);
  const token = driver.connection.describe(held);
  const revocation = driver.connection.revocationRequest(token.accessToken, 'access-token', driver.context());
  assert.ok(sameUrl(revocation.url, urls.revocation));
  helpers.readRevocationResponse(await fetchSend(revocation)); // throws on failure

  const before = { tokens: tokenRequests().length, resource: resourceRequests().length, events: events.length };
  const { response, steps } = await driver.call(api());
  const statuses = resourceRequests().slice(before.resource).map((e) => e.response.status);
  assert.equal(response.status, 200, `steps: ${steps}`);
  assert.deepEqual(statuses, [401, 200], 'the API answered 401 once, then the retry 200');
  assert.equal(tokenRequests().length - before.tokens, 1, 'one renewal');
  assert.ok(steps.includes('renew and retry'), `steps: ${steps}`);
  assert.notEqual(store.load(driver.key).data, held.data, 'the new state is stored');
});

test('a refused refresh token falls back to the configured grant', async () => {
  const clock = movableClock();
  const store = new MemoryStore();
  const config = JSON.stringify({
    grant_type: 'password',
    token_url: urls.token,
    revocation_url: urls.revocation,
    client_id: 'demo-basic',
    client_secret: 'demo-basic-secret',
    username: 'alice',
    password: 'wonderland',
    scope: 'read offline_access',
  });
  const { driver, tokenRequests } = driverFor(config, { store, clock });
  assert.equal((await driver.call(api())).response.status, 200);
  const token = driver.connection.describe(store.load(driver.key));
  assert.ok(token.refreshToken, 'the password grant issued a refresh token');

  // The server forgets the refresh token; the driver still holds it.
  const revocation = driver.connection.revocationRequest(token.refreshToken, 'refresh-token', driver.context());
  helpers.readRevocationResponse(await fetchSend(revocation));
  clock.advance(LIFETIME - 5);

  const before = tokenRequests().length;
  const { response, steps } = await driver.call(api());
  assert.equal(response.status, 200, `steps: ${steps}`);
  const statuses = tokenRequests().slice(before).map((e) => e.response.status);
  assert.deepEqual(statuses, [400, 200], 'the refresh was refused, the fallback answered');
  assert.ok(steps.includes('refused: sending the fallback'), `steps: ${steps}`);
  assert.equal(json(response).user, 'alice');
});

test('concurrent calls share one token request', async () => {
  const { driver, tokenRequests, resourceRequests } = driverFor(clientCredentials({ scope: 'read' }));
  const results = await Promise.all(Array.from({ length: 10 }, () => driver.call(api())));
  assert.deepEqual(results.map((r) => r.response.status), Array(10).fill(200));
  assert.equal(tokenRequests().length, 1, 'exactly one token request');
  assert.equal(resourceRequests().length, 10);
});

test("another worker's renewal is taken from the store, not repeated", async () => {
  const clock = movableClock();
  const shared = new MemoryStore();
  const config = clientCredentials({ scope: 'write' });
  const a = driverFor(config, { store: shared, clock });
  assert.equal((await a.driver.call(api())).response.status, 200);
  const stale = shared.load(a.driver.key);
  clock.advance(LIFETIME - 5);
  assert.equal((await a.driver.call(api())).response.status, 200);
  assert.equal(a.tokenRequests().length, 2, 'worker A renewed');

  // Worker B read the store before A's renewal was saved: it holds the old
  // state, which is due for renewal; the store now holds A's new one.
  let first = true;
  const bView = {
    secret: () => shared.secret(),
    load: (key) => (first ? ((first = false), stale) : shared.load(key)),
    save: (key, state) => shared.save(key, state),
    replaceIfUnchanged: (key, expected, next) => shared.replaceIfUnchanged(key, expected, next),
  };
  const b = driverFor(config, { store: bView, clock });
  const { response, steps } = await b.driver.call(api());
  assert.equal(response.status, 200);
  assert.equal(b.tokenRequests().length, 0, `B sent no token request: ${steps}`);
  assert.ok(steps.includes('took the stored state'), `steps: ${steps}`);
});

test("a configuration the component refuses fails with the component's words", () => {
  const config = JSON.stringify({ grant_type: 'client_credentials', token_url: urls.token, client_id: 'demo-basic' });
  assert.throws(() => new TokenDriver({ connection, config }), (error) => {
    assert.equal(error.failure.tag, 'invalid-config');
    assert.match(error.message, /client_secret/);
    return true;
  });
});

test('the driver holds no OAuth knowledge', () => {
  const source = readFileSync(path.join(packageDir, 'driver.mjs'), 'utf8');
  const forbidden = [
    'grant_type', 'refresh_token', 'access_token', 'expires_in', 'invalid_token',
    'WWW-Authenticate', 'client_secret', 'Bearer',
    'refreshToken', 'accessToken', 'expiresIn', 'expiresAt', 'invalid_grant',
  ];
  const found = forbidden.filter((word) => source.toLowerCase().includes(word.toLowerCase()));
  assert.deepEqual(found, [], `driver.mjs mentions ${found.join(', ')}`);
});
