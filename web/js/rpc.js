// JSON-RPC 2.0 over POST /rpc, and Server-Sent Events from /events
// (docs/web.md). The session lives in an HttpOnly cookie the page never
// sees: fetch sends it because the request is same-origin.

let nextId = 1;
const unauthListeners = new Set();

// An API error: `reason` is the stable word to act on, `field` the
// parameter at fault (if any), `data` everything else the server said.
export class RpcError extends Error {
	constructor(error) {
		super(error.message || 'error');
		this.code = error.code;
		this.data = error.data || {};
		this.reason = this.data.reason || 'internal_error';
		this.field = this.data.field || null;
	}
}

// Called whenever a request answers `unauthenticated` (session ended):
// the shell goes back to the login page.
export function onUnauthenticated(fn) {
	unauthListeners.add(fn);
	return () => unauthListeners.delete(fn);
}

function netError() {
	return new RpcError({ code: 503, message: 'network error',
		data: { reason: 'unavailable' } });
}

async function post(body) {
	let res;
	try {
		res = await fetch('/rpc', {
			method: 'POST',
			credentials: 'same-origin',
			headers: { 'Content-Type': 'application/json' },
			body: JSON.stringify(body),
		});
	} catch (e) {
		throw netError();
	}
	if (res.status === 204)
		return null;
	if (!res.ok && !(res.headers.get('Content-Type') || '').includes('json'))
		throw new RpcError({ code: res.status, message: res.statusText,
			data: { reason: res.status === 403 ? 'forbidden' : 'unavailable' } });
	try {
		return await res.json();
	} catch (e) {
		throw netError();
	}
}

function unwrap(answer, method) {
	if (answer && answer.error) {
		const err = new RpcError(answer.error);
		if (err.reason === 'unauthenticated' && method !== 'auth.login' &&
		    method !== 'auth.change_password')
			unauthListeners.forEach(fn => fn(err));
		throw err;
	}
	return answer ? answer.result : undefined;
}

// call('offer.list', {limit: 20}) → the result, or throws RpcError.
export async function call(method, params = {}) {
	const id = nextId++;
	const answer = await post({ jsonrpc: '2.0', id, method, params });
	return unwrap(answer, method);
}

// batch([['offer.get', {offer_id: 1}], ...]) → array of results, in
// order; an element that failed is its RpcError (not thrown).
export async function batch(calls) {
	const reqs = calls.map(([method, params]) =>
		({ jsonrpc: '2.0', id: nextId++, method, params: params || {} }));
	const answers = await post(reqs);
	if (!Array.isArray(answers))
		throw new RpcError(answers && answers.error ? answers.error
			: { message: 'bad batch answer', data: { reason: 'internal_error' } });
	const byId = new Map(answers.map(a => [a.id, a]));
	return reqs.map(r => {
		try {
			return unwrap(byId.get(r.id), r.method);
		} catch (e) {
			return e;
		}
	});
}

// A key for booking.create / permanence.claim, so that a retry after a
// lost answer does not book twice (docs/protocol.md, `unavailable`).
export function idempotencyKey() {
	if (crypto.randomUUID)
		return crypto.randomUUID();
	const b = crypto.getRandomValues(new Uint8Array(16));
	return Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
}

// subscribe(['offer.seats_changed'], onEvent, onResync) listens to
// /events. onEvent(topic, data) for each event; onResync() after a
// `resync` event or a reconnection (events may have been missed: re-read
// what is shown). Returns a function that stops listening.
export function subscribe(topics, onEvent, onResync = () => {}) {
	let source = null;
	let stopped = false;
	let delay = 1000;
	let timer = null;
	let connectedOnce = false;

	function open() {
		source = new EventSource('/events?topics=' +
			encodeURIComponent(topics.join(',')));
		source.onopen = () => {
			delay = 1000;
			if (connectedOnce)
				onResync();
			connectedOnce = true;
		};
		source.onmessage = (m) => {
			let ev;
			try {
				ev = JSON.parse(m.data);
			} catch (e) {
				return;
			}
			if (ev && ev.method === 'event')
				ev = ev.params;
			if (!ev || !ev.topic)
				return;
			if (ev.topic === 'resync')
				onResync();
			else
				onEvent(ev.topic, ev.data);
		};
		source.onerror = () => {
			// The browser retries by itself while the stream is
			// CONNECTING; once CLOSED (an HTTP error), we retry,
			// slower each time, up to a minute.
			if (source.readyState !== EventSource.CLOSED || stopped)
				return;
			timer = setTimeout(open, delay);
			delay = Math.min(delay * 2, 60000);
		};
	}
	open();
	return () => {
		stopped = true;
		clearTimeout(timer);
		if (source)
			source.close();
	};
}
