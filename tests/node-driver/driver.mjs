// A JavaScript engine driving the connector component's token loop, as
// wit/connection.wit documents it. It knows nothing about OAuth: it moves the
// component's records between the component, the network and a store.
// Token states are opaque `{ data, evictAfter }` objects compared by `data`.

const MAX_STEPS = 6;
const MAX_CHAINED_FETCHES = 3;

/** Words for a `failure` variant, from whatever it carries. */
export function describeFailure(failure) {
  if (!failure || typeof failure !== 'object') return String(failure);
  const { tag, val } = failure;
  if (typeof val === 'string') return `${tag}: ${val}`;
  if (Array.isArray(val)) {
    return `${tag}: ${val.map((p) => `${p.field || '(document)'}: ${p.message} (${p.fix})`).join('; ')}`;
  }
  const parts = Object.values(val ?? {}).filter((v) => v !== undefined && v !== '');
  return `${tag}: ${parts.join(' - ')}`;
}

const isResultError = (e) => e != null && Object.hasOwn(e, 'payload');

/** An Error whose message comes from a component `failure`. */
function failed(what, failure) {
  const error = new Error(`${what}: ${describeFailure(failure)}`);
  error.failure = failure;
  return error;
}

/** Calls a component function; a `result` error becomes an Error with its words. */
function checked(what, fn) {
  try {
    return fn();
  } catch (e) {
    throw isResultError(e) ? failed(what, e.payload) : e;
  }
}

/** A store kept in this process's memory. */
export class MemoryStore {
  #states = new Map();
  #secret = crypto.getRandomValues(new Uint8Array(32));
  /** The store's own secret, which keys the cache keys (synchronous). */
  secret() {
    return this.#secret;
  }
  load(key) {
    return this.#states.get(key);
  }
  save(key, state) {
    this.#states.set(key, state);
  }
  /** Replaces `expected` with `next` (none removes it); false when another state is held. */
  replaceIfUnchanged(key, expected, next) {
    if (this.#states.get(key)?.data !== expected?.data) return false;
    if (next === undefined) this.#states.delete(key);
    else this.#states.set(key, next);
    return true;
  }
}

/** Sends a component `request` record with `fetch`; returns a `response` record. */
export async function fetchSend(request) {
  const answer = await fetch(request.url, {
    method: request.method,
    headers: request.headers,
    body: request.body.length > 0 ? request.body : undefined,
    redirect: 'manual',
  });
  return {
    status: answer.status,
    headers: [...answer.headers],
    body: new Uint8Array(await answer.arrayBuffer()),
  };
}

export class TokenDriver {
  #flights = new Map();

  constructor({ connection, config, store = new MemoryStore(), send = fetchSend, clock, random }) {
    this.connection = checked('the configuration', () => connection.Connection.open(config));
    this.key = this.connection.cacheKey(store.secret());
    this.store = store;
    this.send = send;
    this.clock = clock ?? (() => Math.floor(Date.now() / 1000));
    this.random = random ?? ((n) => crypto.getRandomValues(new Uint8Array(n)));
  }

  /** The time and fresh random bytes the component needs for one call. */
  context() {
    return { now: BigInt(Math.floor(this.clock())), nonce: this.random(32) };
  }

  /** Sends `api` with a token; returns `{ response, steps }`. */
  async call(api) {
    const steps = [];
    let held = (await this.store.load(this.key)) ?? undefined;
    let retried = false;
    for (let i = 0; i < MAX_STEPS; i++) {
      const step = checked('next', () => this.connection.next(api, held, this.context()));
      if (step.tag === 'send') {
        if (held === undefined) throw new Error('a request to send, but no state was used');
        const response = await this.send(step.val);
        steps.push(`sent: ${response.status}`);
        const verdict = this.connection.judge(response, held, retried);
        if (verdict.tag === 'accept' || retried) return { response, steps };
        await this.store.replaceIfUnchanged(this.key, held, verdict.val);
        steps.push('renew and retry');
        held = (await this.store.load(this.key)) ?? undefined;
        retried = true;
      } else if (step.tag === 'fetch') {
        const outcome = await this.#renew(held, step.val);
        steps.push(...outcome.steps);
        held = outcome.state;
      } else if (step.tag === 'log-in') {
        throw new Error(`a person must log in: ${step.val}`);
      } else {
        throw new Error(`unknown step ${step.tag}`);
      }
    }
    throw new Error(`no answer after ${MAX_STEPS} steps`);
  }

  /** One renewal per key at a time in this process: later callers share it. */
  #renew(held, tokenFetch) {
    const flight = this.#flights.get(this.key);
    if (flight) return flight.then((o) => ({ state: o.state, steps: ['shared a renewal'] }));
    const mine = this.#lead(held, tokenFetch).finally(() => this.#flights.delete(this.key));
    this.#flights.set(this.key, mine);
    return mine;
  }

  /** Unless the store now holds another state, fetch one and store it before use. */
  async #lead(held, tokenFetch) {
    const latest = await this.store.load(this.key);
    if (latest != null && latest.data !== held?.data) {
      return { state: latest, steps: ['took the stored state'] };
    }
    const steps = [];
    for (let i = 0; i < MAX_CHAINED_FETCHES; i++) {
      const response = await this.send(tokenFetch.request);
      steps.push(`fetched: ${tokenFetch.renewal} ${response.status}`);
      let state;
      try {
        state = this.connection.took(tokenFetch.renewal, response, held, this.context());
      } catch (e) {
        if (!isResultError(e)) throw e;
        if (e.payload.fallback === undefined) throw failed('the token request', e.payload.failure);
        steps.push('refused: sending the fallback');
        tokenFetch = e.payload.fallback;
        continue;
      }
      await this.store.save(this.key, state);
      return { state, steps };
    }
    throw new Error(`more than ${MAX_CHAINED_FETCHES} token requests in a row`);
  }
}
