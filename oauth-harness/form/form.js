// The configuration form: renders the connector's JSON Schema with JSON
// Editor, reads the schema's presentation hints (x-order, x-group,
// x-show-when), and leaves every check and every token to the component,
// through the harness's /api calls.
'use strict';

/** Keywords the component judges; the form library would judge them differently. */
const JUDGED_BY_THE_COMPONENT = ['allOf', 'anyOf', 'if', 'then', 'else', 'not', 'propertyNames', 'pattern', 'minLength', 'maxLength', 'required'];

/** The schema as JSON Editor reads it: choices as enums with titles, hints as options. */
function forEditor(property) {
  const copy = { ...property };
  for (const keyword of JUDGED_BY_THE_COMPONENT) delete copy[keyword];
  copy.options = { ...(copy.options || {}) };
  if (Array.isArray(property.oneOf) && property.oneOf.every((choice) => 'const' in choice)) {
    delete copy.oneOf;
    copy.enum = property.oneOf.map((choice) => choice.const);
    copy.options.enum_titles = property.oneOf.map((choice) => choice.title || String(choice.const));
    copy.type = typeof copy.enum[0] === 'number' ? 'integer' : 'string';
  }
  if (Array.isArray(copy.enum) && !copy.type) copy.type = 'string';
  if (property['x-order'] !== undefined) copy.propertyOrder = property['x-order'];
  if (property['x-show-when']) {
    copy.options.dependencies = Object.fromEntries(
      Object.entries(property['x-show-when']).map(([field, values]) => [`root.${field}`, values]));
  }
  if (property['x-multiline']) copy.format = 'textarea';
  if (property.type === 'boolean') copy.format = 'checkbox';
  // Only objects that take members of the user's choosing (extra_body,
  // claims) get the library's button for adding one.
  if (property.type === 'object' && property.additionalProperties === false) {
    copy.options.disable_properties = true;
  }
  if (property.properties) {
    copy.properties = {};
    for (const [name, member] of Object.entries(property.properties)) {
      // `false` forbids a member outright: there is nothing to fill in.
      if (member !== false) copy.properties[name] = forEditor(member);
    }
  }
  return copy;
}

/** Whether a field's x-show-when holds for the document, defaults counting. */
function shown(property, document, schema) {
  const rule = property['x-show-when'];
  if (!rule) return true;
  return Object.entries(rule).every(([field, values]) => {
    const value = document[field] ?? schema.properties[field].default;
    return values.includes(value);
  });
}

/** An unfilled input means the field is absent: drop empty strings and objects. */
function withoutEmpty(value) {
  if (value === '' || value === null || value === undefined) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) return value;
  const kept = {};
  for (const [name, member] of Object.entries(value)) {
    const cleaned = withoutEmpty(member);
    if (cleaned !== undefined) kept[name] = cleaned;
  }
  return Object.keys(kept).length ? kept : undefined;
}

/** The document for display: secrets (writeOnly fields) hidden. */
function masked(value, property) {
  if (property?.writeOnly) return '[hidden]';
  if (!value || typeof value !== 'object' || Array.isArray(value)) return value;
  // A member is described by its own property, or by the schema for every
  // other member (the values of extra headers and parameters).
  return Object.fromEntries(Object.entries(value).map(([name, member]) => [
    name,
    masked(member, property?.properties?.[name] ?? property?.additionalProperties),
  ]));
}

/** The configuration document the form stands for: shown, filled fields only. */
function documentOf(value, schema) {
  const document = {};
  for (const [name, member] of Object.entries(value)) {
    const property = schema.properties[name];
    if (!property || !shown(property, value, schema)) continue;
    const cleaned = withoutEmpty(member);
    if (cleaned !== undefined) document[name] = cleaned;
  }
  return document;
}

/** Whether this load is a login's redirect coming back to the form. */
const ON_CALLBACK = /^\/callback(\/|$)/.test(window.location.pathname);

/**
 * The token the server's API asks of every call. The address
 * `oauth-harness form` printed holds it (`?token=`); the page keeps it in
 * this tab's session storage, as a login's redirect comes back without it,
 * and takes it out of the address bar and the history.
 */
function formToken() {
  if (!ON_CALLBACK) {
    const address = new URL(window.location.href);
    const given = address.searchParams.get('token');
    if (given) {
      sessionStorage.setItem('formToken', given);
      address.searchParams.delete('token');
      window.history.replaceState(null, '', address.pathname + address.search + address.hash);
    }
  }
  return sessionStorage.getItem('formToken') || '';
}
const FORM_TOKEN = formToken();

/** A call to the server's API: a GET without a body, a JSON POST with one. */
async function api(path, body) {
  const response = await fetch(path, body === undefined ? {
    headers: { 'X-Form-Token': FORM_TOKEN },
  } : {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Form-Token': FORM_TOKEN },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) {
    const error = new Error(answer.error || `HTTP ${response.status}`);
    // A failed token call may still carry a refresh token to keep: the
    // server's answer had no usable access token but a new refresh token,
    // and the one the form sent may be spent.
    error.keep = answer.keep;
    throw error;
  }
  return answer;
}

function showErrors(errors) {
  const list = document.getElementById('errors');
  list.replaceChildren(...errors.map((error) => {
    const item = document.createElement('li');
    item.dataset.field = error.field;
    item.textContent = `${error.field || '(document)'}: ${error.message} (${error.fix})`;
    return item;
  }));
  const status = document.getElementById('status');
  status.textContent = errors.length ? `${errors.length} problem(s)` : 'valid';
  status.className = errors.length ? 'invalid' : 'valid';
}

/** Shows a token or a failure; the class says which (obtained, failed, working). */
function showResult(text, outcome) {
  const result = document.getElementById('result');
  result.textContent = text;
  result.className = outcome;
}

/**
 * Shows what became of a new refresh token, as the server's `keep` says:
 * the component decides whether the document keeps it; when it does, the
 * one in the form is spent, so `editor` (the form, absent on a login's
 * redirect) takes the new one in its place. Nothing else shows it.
 */
function showKeep(keep, editor) {
  const notice = document.getElementById('notice');
  notice.textContent = '';
  if (keep.refresh_token && editor) {
    editor.getEditor('root.refresh_token').setValue(keep.refresh_token);
    notice.textContent = 'The server rotated the refresh token: the form now holds the new one. Save the configuration to keep it.';
  } else if (keep.refresh_token) {
    // Only the refresh-token grant's document keeps one, and that grant
    // has no login whose redirect would come back here: not expected, but
    // said rather than passed over in silence.
    notice.textContent = 'The server rotated the refresh token, but this page holds no form to keep it in.';
  } else if (keep.not_kept) {
    notice.textContent = `The server issued a refresh token, which this form does not keep: ${keep.not_kept}`;
  }
}

/** Shows a failed call, and what became of a refresh token it still brought. */
function showFailure(error, editor) {
  showResult(error.message, 'failed');
  if (error.keep) showKeep(error.keep, editor);
}

/** Section headings from x-group, shown while any of their fields is. */
function addGroupHeadings(schema) {
  const byGroup = new Map();
  const ordered = Object.entries(schema.properties)
    .sort(([, a], [, b]) => (a['x-order'] ?? 1000) - (b['x-order'] ?? 1000));
  for (const [name, property] of ordered) {
    const container = document.querySelector(`[data-schemapath="root.${name}"]`);
    const group = property['x-group'];
    if (!container || !group) continue;
    if (!byGroup.has(group)) {
      const heading = document.createElement('h2');
      heading.className = 'form-group';
      heading.textContent = group;
      container.before(heading);
      byGroup.set(group, { heading, containers: [] });
    }
    byGroup.get(group).containers.push(container);
  }
  return () => {
    for (const { heading, containers } of byGroup.values()) {
      heading.hidden = containers.every((container) => container.style.display === 'none');
    }
  };
}

async function showForm() {
  if (typeof JSONEditor === 'undefined') {
    document.getElementById('missing-library').hidden = false;
    return;
  }
  const schema = await api('/api/schema');
  const editorSchema = forEditor(schema);
  // The page's heading already names the form.
  editorSchema.options.compact = true;
  const editor = new JSONEditor(document.getElementById('editor'), {
    schema: editorSchema,
    disable_edit_json: true,
    disable_collapse: true,
    no_additional_properties: true,
    required_by_default: false,
    show_errors: 'never',
    prompt_before_delete: false,
  });
  const current = () => documentOf(editor.getValue(), schema);
  await new Promise((ready) => editor.on('ready', ready));
  const updateHeadings = addGroupHeadings(schema);
  const refresh = () => {
    document.getElementById('document').textContent =
      JSON.stringify(masked(current(), schema), null, 2);
    updateHeadings();
  };
  // For automation and for copying: the document with its secrets.
  window.oauthForm = { document: current };
  editor.on('change', refresh);
  refresh();

  document.getElementById('validate').addEventListener('click', async () => {
    const status = document.getElementById('status');
    status.textContent = 'checking…';
    status.className = 'checking';
    try {
      showErrors((await api('/api/validate', current())).errors);
    } catch (error) {
      showErrors([{ field: '', message: error.message, fix: 'try again' }]);
    }
  });
  document.getElementById('get-token').addEventListener('click', async () => {
    const config = current();
    showResult('working…', 'working');
    try {
      // The grants that need a browser login are those the schema shows the
      // authorization URL for.
      const browserGrants = schema.properties.authorization_url['x-show-when'].grant_type;
      if (browserGrants.includes(config.grant_type)) {
        // The redirect comes back to /callback/SERVER on this server, which finishes the login.
        const { login, url } = await api('/api/login', config);
        sessionStorage.setItem('login', login);
        window.location.assign(url);
        return;
      }
      const { token, keep } = await api('/api/token', config);
      showKeep(keep, editor);
      showResult(JSON.stringify(token, null, 2), 'obtained');
    } catch (error) {
      showFailure(error, editor);
    }
  });
}

async function finishLogin() {
  document.querySelector('.actions').hidden = true;
  const redirectUrl = window.location.href;
  // The code has been read: keep it out of the address bar and the history.
  window.history.replaceState(null, '', window.location.pathname);
  const login = sessionStorage.getItem('login');
  try {
    if (!login) throw new Error('no login was started from this form');
    const { token, ignored } = await api('/api/finish', { login, redirect_url: redirectUrl });
    if (ignored) {
      // Not this login's redirect: the login still waits for its own.
      showResult(ignored, 'failed');
      return;
    }
    sessionStorage.removeItem('login');
    showResult(JSON.stringify(token, null, 2), 'obtained');
  } catch (error) {
    sessionStorage.removeItem('login');
    showFailure(error, null);
  }
}

if (ON_CALLBACK) {
  finishLogin();
} else {
  showForm().catch((error) => showResult(error.message, 'failed'));
}
