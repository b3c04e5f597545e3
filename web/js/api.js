// Talking to the mailflow server. The teacher's page carries the control
// token in its address (?token=...); it is sent with every change request.

// The token then leaves the address bar (kept for this tab only), so a
// page shown on the projector does not show it to the room.
const params = new URLSearchParams(window.location.search);
export const token = params.get('token') || sessionStorage.getItem('mailflow-token');
if (params.has('token')) {
  sessionStorage.setItem('mailflow-token', token);
  params.delete('token');
  const query = params.toString();
  history.replaceState(null, '', `${window.location.pathname}${query ? `?${query}` : ''}${window.location.hash}`);
}

function headers(extra = {}) {
  const h = { ...extra };
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

/** GET a JSON document. */
export async function getJson(path) {
  const response = await fetch(path, { headers: headers(), cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

/** POST JSON; resolves to {ok, status, body} (never throws on HTTP errors). */
export async function postJson(path, body) {
  try {
    const response = await fetch(path, { method: 'POST', headers: headers({ 'Content-Type': 'application/json' }), body: JSON.stringify(body) });
    let parsed = null;
    try { parsed = await response.json(); } catch { parsed = null; }
    return { ok: response.ok, status: response.status, body: parsed };
  } catch (err) {
    return { ok: false, status: 0, body: { error: `the server cannot be reached (${err.message})` } };
  }
}

/** Where the event stream lives, with the position to continue from. */
export function streamUrl(since, generation) {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = new URLSearchParams({ since: String(since) });
  if (generation != null) query.set('generation', String(generation));
  return `${scheme}//${window.location.host}/api/stream?${query}`;
}
