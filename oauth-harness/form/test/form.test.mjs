// Drives `oauth-harness form` in headless Chromium: fills the form for each
// grant type, checks which fields show, validates through the component and
// obtains a token from the embedded server (`oauth-harness serve`); the
// document the form produced is checked again by `oauth-harness validate`.
//
// Needs the built harness (OAUTH_HARNESS, default target/debug/oauth-harness),
// Chromium (CHROMIUM, default /usr/bin/chromium) and `npm ci` in oauth-harness/form.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const harness = process.env.OAUTH_HARNESS || join(root, 'target', 'debug', 'oauth-harness');
const fixtures = join(root, 'auth-server', 'fixtures');

const children = [];
let browser;
let server;
let formUrl;
let callbackUrl;

/** Starts a harness command and waits until its output holds every pattern. */
function start(args, patterns) {
  const child = spawn(harness, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`\`${args[0]}\` printed no ${patterns}: ${output}`)), 30_000);
    child.on('exit', (code) => reject(new Error(`\`${args[0]}\` exited with ${code}: ${output}`)));
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const found = patterns.map((pattern) => output.match(pattern));
      if (found.every(Boolean)) {
        clearTimeout(timer);
        resolve(found.map((match) => match[1]));
      }
    });
  });
}

before(async () => {
  const [base, tokenUrl, authorizationUrl, basicSecret, postSecret, refreshToken] = await start(
    ['serve', '--port', '0'],
    [/listening on (\S+)/, /token endpoint\s+(\S+)/, /authorization endpoint\s+(\S+)/,
      /client_id "demo-basic"\s+client_secret "([^"]+)"/,
      /client_id "demo-post"\s+client_secret "([^"]+)"/,
      /refresh token for demo-basic: (\S+)/]);
  server = { base, tokenUrl, authorizationUrl, basicSecret, postSecret, refreshToken };
  [formUrl, callbackUrl] = await start(['form', '--port', '0'],
    [/configuration form at (\S+)/, /redirect URI to (\S+) /]);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  for (const child of children) child.kill();
});

/** A fresh page with the form rendered. */
async function openForm() {
  const page = await browser.newPage();
  page.on('pageerror', (error) => assert.fail(`the page failed: ${error.message}`));
  await page.goto(formUrl);
  await page.waitForSelector('select[name="root[grant_type]"]');
  return page;
}

const field = (name) => `[name="root${name.split('.').map((part) => `[${part}]`).join('')}"]`;

/** Fills the form: selects first (they decide which fields show), then text. */
async function fill(page, values) {
  for (const [name, value] of Object.entries(values)) {
    const selector = field(name);
    if (await page.locator(selector).evaluate((element) => element.tagName === 'SELECT')) {
      await page.selectOption(selector, String(value));
    } else {
      await page.fill(selector, value);
      await page.locator(selector).dispatchEvent('change');
    }
  }
}

async function isShown(page, name) {
  return page.locator(`[data-schemapath="root.${name}"]`).isVisible();
}

async function validate(page) {
  await page.click('#validate');
  await page.waitForSelector('#status.valid, #status.invalid');
  return {
    status: await page.textContent('#status'),
    errors: await page.locator('#errors li').allTextContents(),
  };
}

/** The document the form shows, checked by the CLI's own `validate`. */
async function documentValidatesInTheCli(page) {
  const document = await page.evaluate(() => window.oauthForm.document());
  const shown = await page.textContent('#document');
  for (const secret of ['client_secret', 'password', 'refresh_token']) {
    if (document[secret]) assert.equal(shown.includes(document[secret]), false, `${secret} is hidden`);
  }
  const file = join(mkdtempSync(join(tmpdir(), 'form-test-')), 'config.json');
  writeFileSync(file, JSON.stringify(document));
  const output = execFileSync(harness, ['validate', file], { encoding: 'utf8' });
  assert.match(output, /valid/);
  return document;
}

async function obtainedToken(page) {
  await page.click('#get-token');
  await page.waitForSelector('#result.obtained, #result.failed', { timeout: 20_000 });
  const text = await page.textContent('#result');
  assert.equal(await page.getAttribute('#result', 'class'), 'obtained', text);
  return JSON.parse(text);
}

test('client credentials with the secret in the Basic header', async () => {
  const page = await openForm();
  await fill(page, {
    grant_type: 'client_credentials', token_url: server.tokenUrl,
    client_id: 'demo-basic', client_secret: server.basicSecret, scope: 'read',
  });
  assert.equal(await isShown(page, 'username'), false, 'the password grant\'s fields are hidden');
  assert.equal(await isShown(page, 'refresh_token'), false);
  assert.equal(await isShown(page, 'client_secret'), true);
  assert.deepEqual(await validate(page), { status: 'valid', errors: [] });
  const document = await documentValidatesInTheCli(page);
  assert.equal(document.grant_type, 'client_credentials');
  assert.equal('username' in document, false);
  const token = await obtainedToken(page);
  assert.equal(token.token_type.toLowerCase(), 'bearer');
  assert.equal(token.scope, 'read');
  assert.equal(token.access_token, '[redacted]', 'the page never shows the token');
});

test('client credentials with the secret in the body', async () => {
  const page = await openForm();
  await fill(page, {
    grant_type: 'client_credentials', client_auth: 'body', token_url: server.tokenUrl,
    client_id: 'demo-post', client_secret: server.postSecret,
  });
  assert.deepEqual(await validate(page), { status: 'valid', errors: [] });
  assert.equal((await documentValidatesInTheCli(page)).client_auth, 'body');
  assert.equal((await obtainedToken(page)).token_type.toLowerCase(), 'bearer');
});

test('refresh token, the default grant type', async () => {
  const page = await openForm();
  assert.equal(await page.inputValue(field('grant_type')), 'refresh_token');
  assert.equal(await isShown(page, 'refresh_token'), true);
  await fill(page, {
    token_url: server.tokenUrl, client_id: 'demo-basic', client_secret: server.basicSecret,
    refresh_token: server.refreshToken,
  });
  assert.deepEqual(await validate(page), { status: 'valid', errors: [] });
  await documentValidatesInTheCli(page);
  const token = await obtainedToken(page);
  assert.equal(token.refresh_token_rotated, true);
  assert.equal(token.refresh_token, '[redacted]');
  // The spent refresh token in the form was replaced by the rotated one,
  // so the form obtains a token again.
  const kept = await page.inputValue(field('refresh_token'));
  assert.notEqual(kept, server.refreshToken);
  assert.match(await page.textContent('#notice'), /rotated/);
  await page.evaluate(() => { document.getElementById('result').className = ''; });
  assert.equal((await obtainedToken(page)).refresh_token_rotated, true);
});

test('an answer without a usable access token: the fault shows, and its refresh token is kept', async () => {
  // A token endpoint whose answer has a new refresh token but no access
  // token that can be used: the one the form sent may be spent.
  const endpoint = http.createServer((request, response) => {
    request.resume();
    response.setHeader('Content-Type', 'application/json');
    response.end('{"access_token":5,"refresh_token":"RT-NEW-1","token_type":"Bearer"}');
  });
  await new Promise((listening) => endpoint.listen(0, '127.0.0.1', listening));
  const page = await openForm();
  try {
    await fill(page, {
      token_url: `http://127.0.0.1:${endpoint.address().port}/token`,
      client_id: 'c', client_secret: 's', refresh_token: 'RT-OLD',
    });
    await page.click('#get-token');
    await page.waitForSelector('#result.obtained, #result.failed', { timeout: 20_000 });
    const text = await page.textContent('#result');
    assert.equal(await page.getAttribute('#result', 'class'), 'failed', text);
    assert.match(text, /`access_token` is not a string/);
    assert.equal(text.includes('RT-NEW-1'), false, 'the fault does not show the refresh token');
    assert.equal(await page.inputValue(field('refresh_token')), 'RT-NEW-1');
    assert.match(await page.textContent('#notice'), /rotated/);
    assert.equal(await page.evaluate(() => window.oauthForm.document().refresh_token), 'RT-NEW-1');
  } finally {
    await page.close();
    endpoint.close();
  }
});

test('the form answers only its own pages', async () => {
  const url = new URL(formUrl);
  const call = (headers, body) => new Promise((resolve, reject) => {
    const request = http.request({ host: url.hostname, port: url.port, path: '/api/validate', method: 'POST', headers },
      (response) => {
        response.resume();
        assert.equal(response.headers['content-security-policy'], "frame-ancestors 'none'");
        assert.equal(response.headers['x-frame-options'], 'DENY');
        resolve(response.statusCode);
      });
    request.on('error', reject);
    request.end(body);
  });
  const json = { 'Content-Type': 'application/json' };
  const token = { 'X-Form-Token': url.searchParams.get('token') };
  assert.equal(await call({ ...json, ...token, Host: `127.0.0.1:${url.port}` }, '{}'), 200);
  assert.equal(await call({ ...json, ...token, Host: `rebound.example:${url.port}` }, '{}'), 403, 'DNS rebinding');
  assert.equal(await call({ ...json, ...token, Host: url.host, Origin: 'https://evil.example' }, '{}'), 403, 'another site');
  assert.equal(await call({ 'Content-Type': 'text/plain', ...token, Host: url.host }, '{}'), 415, 'a cross-site form post');
  // Another local user: the right Host, no Origin, but not the token.
  assert.equal(await call({ ...json, Host: url.host }, '{}'), 403, 'no token');
  assert.equal(await call({ ...json, 'X-Form-Token': 'guess', Host: url.host }, '{}'), 403, 'a wrong token');
});

test('the token leaves the address bar, and the page keeps it across a reload', async () => {
  const page = await openForm();
  assert.equal(new URL(page.url()).search, '', 'the token is gone from the address bar');
  await page.reload();
  await page.waitForSelector('select[name="root[grant_type]"]');
  // The component answered: the empty form lacks its token URL.
  const { errors } = await validate(page);
  assert.match(errors[0], /^token_url: required/, errors.join('\n'));
});

test('without the token, the page says where to open it', async () => {
  const page = await browser.newPage();
  await page.goto(new URL('/', formUrl).href);
  await page.waitForSelector('#result.failed');
  assert.match(await page.textContent('#result'), /lacks the form's token: open the page at the address `oauth-harness form` printed/);
  await page.close();
});

test('no other page shows the form in a frame', async () => {
  // A page on another loopback port frames the form, as another local
  // user's server could: the browser refuses to show it there.
  const framing = http.createServer((request, response) => {
    response.setHeader('Content-Type', 'text/html');
    response.end(`<iframe src="${formUrl}"></iframe>`);
  });
  await new Promise((listening) => framing.listen(0, '127.0.0.1', listening));
  const page = await browser.newPage();
  try {
    const refused = page.waitForEvent('requestfailed', {
      predicate: (request) => request.url() === formUrl, timeout: 10_000,
    });
    await page.goto(`http://127.0.0.1:${framing.address().port}/`);
    assert.equal((await refused).failure().errorText, 'net::ERR_BLOCKED_BY_RESPONSE');
    for (const frame of page.frames()) {
      assert.equal(await frame.$('select[name="root[grant_type]"]'), null, `the form rendered in ${frame.url()}`);
    }
  } finally {
    await page.close();
    framing.close();
  }
});

test('password: a missing password is named, then the user obtains a token', async () => {
  const page = await openForm();
  await fill(page, {
    grant_type: 'password', token_url: server.tokenUrl,
    client_id: 'demo-basic', client_secret: server.basicSecret, username: 'alice',
  });
  assert.equal(await isShown(page, 'password'), true);
  assert.equal(await isShown(page, 'refresh_token'), false);
  const { errors } = await validate(page);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0], /^password: /);
  await fill(page, { password: 'wonderland' });
  assert.deepEqual(await validate(page), { status: 'valid', errors: [] });
  await documentValidatesInTheCli(page);
  assert.equal((await obtainedToken(page)).token_type.toLowerCase(), 'bearer');
  // The password grant's refresh token has no place in its document.
  assert.match(await page.textContent('#notice'),
    /does not keep: grant_type `password` does not read a refresh token from the configuration/);
  assert.equal(await page.evaluate(() => window.oauthForm.document().refresh_token), undefined);
});

test('JWT bearer with an encrypted RSA key pasted as PEM', async () => {
  const page = await openForm();
  await fill(page, { grant_type: 'jwt_bearer', client_auth: 'none' });
  assert.equal(await isShown(page, 'jwt'), true);
  assert.equal(await isShown(page, 'client_secret'), false);
  await fill(page, {
    token_url: server.tokenUrl, client_id: 'demo-public',
    'jwt.issuer': 'demo-issuer', 'jwt.subject': 'alice',
    'jwt.private_key': readFileSync(join(fixtures, 'rsa-encrypted.pem'), 'utf8'),
    'jwt.private_key_password': 'wrong password',
  });
  const { errors } = await validate(page);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0], /^jwt\.private_key(_password)?: /);
  assert.equal(errors[0].includes('wrong password'), false, 'the error never quotes the password');
  await fill(page, { 'jwt.private_key_password': 'demo key password' });
  assert.deepEqual(await validate(page), { status: 'valid', errors: [] });
  const document = await documentValidatesInTheCli(page);
  assert.equal(document.jwt.header.alg, 'RS256');
  assert.equal((await obtainedToken(page)).token_type.toLowerCase(), 'bearer');
});

for (const grant of ['authorization_code', 'implicit']) {
  test(`${grant}: the login returns to the form, which shows the token`, async () => {
    const page = await openForm();
    await fill(page, { grant_type: grant, client_auth: 'none' });
    assert.equal(await isShown(page, 'redirect_uri'), true);
    assert.equal(await isShown(page, 'pkce'), grant === 'authorization_code');
    await fill(page, {
      token_url: server.tokenUrl, authorization_url: server.authorizationUrl,
      redirect_uri: callbackUrl, client_id: 'demo-public', scope: 'read', login_hint: 'bob',
    });
    assert.deepEqual(await validate(page), { status: 'valid', errors: [] });
    await documentValidatesInTheCli(page);
    const token = await obtainedToken(page);
    assert.equal(token.token_type.toLowerCase(), 'bearer');
    assert.equal(new URL(page.url()).pathname, '/callback');
    assert.equal(new URL(page.url()).search, '', 'the code is gone from the address bar');
  });
}

/**
 * Starts an authorization-code login from the form, whose browser is first
 * sent to `forged(authorizationUrl)` instead of to the server: what the
 * form showed for that, then the page and the token once the server's own
 * redirect has come back (the login must still be waiting for it).
 */
async function loginFirstAnsweredBy(forged) {
  const page = await openForm();
  await fill(page, { grant_type: 'authorization_code', client_auth: 'none' });
  await fill(page, {
    token_url: server.tokenUrl, authorization_url: server.authorizationUrl,
    redirect_uri: callbackUrl, client_id: 'demo-public', scope: 'read', login_hint: 'bob',
  });
  let authorizationUrl;
  await page.route(`${server.authorizationUrl}**`, (route) => {
    authorizationUrl = route.request().url();
    return route.fulfill({ status: 302, headers: { location: forged(authorizationUrl) } });
  });
  await page.click('#get-token');
  await page.waitForSelector('#result.obtained, #result.failed', { timeout: 20_000 });
  const refusal = await page.textContent('#result');
  await page.unroute(`${server.authorizationUrl}**`);
  await page.goto(authorizationUrl);
  await page.waitForSelector('#result.obtained, #result.failed', { timeout: 20_000 });
  const text = await page.textContent('#result');
  assert.equal(await page.getAttribute('#result', 'class'), 'obtained', text);
  return { refusal, page, token: JSON.parse(text) };
}

test('a redirect without the login\'s state does not end the login', async () => {
  // On the way to the server, the browser is sent to the callback with an
  // error and no state, as a hostile page (or a careless server) may do.
  const { refusal, token } = await loginFirstAnsweredBy(() => `${callbackUrl}?error=access_denied`);
  assert.match(refusal, /does not belong to the login that is waiting/);
  assert.equal(token.token_type.toLowerCase(), 'bearer');
});

test('an answer at another server\'s callback does not finish the login (mix-up)', async () => {
  // The server the login went to sends the browser on to another server,
  // whose answer, with this login's state, comes back to that server's own
  // callback path: the login must not take that code for its server's.
  const { refusal, page, token } = await loginFirstAnsweredBy((authorizationUrl) => {
    const state = new URL(authorizationUrl).searchParams.get('state');
    return `${callbackUrl}/other?code=from-the-other-server&state=${encodeURIComponent(state)}`;
  });
  assert.match(refusal, /does not belong to the login that is waiting/);
  assert.match(refusal, /went to http:\/\/127\.0\.0\.1:\d+\/callback\/other, not to the configured redirect_uri/);
  assert.equal(token.token_type.toLowerCase(), 'bearer');
  assert.equal(new URL(page.url()).pathname, '/callback');
});

test('each callback path serves one authorization server', async () => {
  const page = await openForm();
  const startLogin = (authorizationUrl, redirectUri) => page.evaluate(async ({ config, token }) => {
    const response = await fetch('/api/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Form-Token': token },
      body: JSON.stringify(config),
    });
    return { status: response.status, body: await response.json() };
  }, {
    config: {
      grant_type: 'authorization_code', client_auth: 'none', client_id: 'demo-public',
      token_url: server.tokenUrl, authorization_url: authorizationUrl, redirect_uri: redirectUri,
    },
    token: new URL(formUrl).searchParams.get('token'),
  });
  const shared = `${callbackUrl}/shared`;
  const first = await startLogin(server.authorizationUrl, shared);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal((await startLogin(server.authorizationUrl, shared)).status, 200, 'the same server again');

  const another = 'http://127.0.0.1:9/tenant-b/authorize';
  const refused = await startLogin(another, shared);
  assert.equal(refused.status, 422);
  assert.match(refused.body.error, /\/callback\/shared already receives the logins of http:\/\/127\.0\.0\.1:\d+\/authorize in this form/);
  assert.match(refused.body.error, /such as http:\/\/127\.0\.0\.1:\d+\/callback\/127\.0\.0\.1-9-tenant-b-authorize, and register that there/);
  assert.match(refused.body.error, /mix-up/);
  assert.equal((await startLogin(another, `${callbackUrl}/tenant-b`)).status, 200, 'a path of its own');

  const elsewhere = await startLogin(another, 'http://127.0.0.1:1/cb');
  assert.equal(elsewhere.status, 422);
  assert.match(elsewhere.body.error, /redirect_uri http:\/\/127\.0\.0\.1:1\/cb does not come back to this form: set it to http:\/\/127\.0\.0\.1:\d+\/callback\/127\.0\.0\.1-9-tenant-b-authorize,/);
});
