// The gateway's API from the browser: JSON in and out, the token only in the Authorization header, and every
// failure turned into one sentence a person can act on (the problem's detail, or what to do when the gateway
// itself cannot be reached).

export class APIError extends Error {
  constructor(status, title, detail) {
    super(detail);
    this.status = status;
    this.title = title;
  }
}

export async function call(method, path, { token, body, headers = {} } = {}) {
  const request = { method, headers: { Accept: 'application/json', ...headers } };
  if (token) request.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    request.headers['Content-Type'] = 'application/json';
    request.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, request);
  } catch {
    throw new APIError(0, 'Unreachable', 'Shippy cannot be reached. Check your connection and try again.');
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const detail = json?.detail ?? `The request failed (${response.status}). Try again in a moment.`;
    throw new APIError(response.status, json?.title ?? response.statusText, detail);
  }
  return json;
}
