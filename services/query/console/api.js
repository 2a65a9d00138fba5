// The console's only way to the server: same-origin fetches carrying the session cookie, and
// the session's CSRF token on every request that changes something.
let csrf = '';

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function parse(res) {
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, body?.error?.code ?? 'HTTP', body?.error?.message ?? `HTTP ${res.status}`);
  return body;
}

/** The signed-in person, or null when not signed in. */
export async function me() {
  const res = await fetch('/ui/api/me', { credentials: 'same-origin' });
  if (res.status === 401) return null;
  const body = await parse(res);
  csrf = body.csrf_token;
  return body;
}

export async function get(path) {
  return parse(await fetch(`/ui/api${path}`, { credentials: 'same-origin', headers: { accept: 'application/json' } }));
}

function send(path, body) {
  return fetch(path.startsWith('/ui/') ? path : `/ui/api${path}`, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body ?? {}),
  });
}

export async function post(path, body) {
  return parse(await send(path, body));
}

/** A POST whose successful answer is text (CSV); an error answer is still JSON. */
export async function postText(path, body) {
  const res = await send(path, body);
  if (!res.ok) return parse(res);
  return res.text();
}
