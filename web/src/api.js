// The public JSON API as the dashboard calls it: the key only ever in the Authorization header.

const KEY = "weldpulse.key";

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

function request(path, { method = "GET", params, body, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params ?? {})) {
    if (value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${key.get() ?? ""}` };
  if (body) headers["Content-Type"] = "application/json";
  return fetch(url, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
    signal,
    credentials: "omit",
    cache: "no-store",
  });
}

async function failure(resp) {
  let data = {};
  try {
    data = await resp.json();
  } catch {
    // Not the contract's JSON (a proxy's page): the status says enough.
  }
  const message = data.error ?? `HTTP ${resp.status}`;
  // The server's 429 names the wait in its message; Envoy's carries retry-after.
  const named = /retry in (\d+) s/.exec(message);
  const retry = Number(resp.headers.get("retry-after") || (named ? named[1] : 0)) || 0;
  return new ApiError(resp.status, data.code ?? "", message, retry);
}

/** GET or POST a route; the parsed JSON, or an ApiError. */
export async function call(path, options) {
  const resp = await request(path, options);
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

/** POST /v1/query. */
export const query = (body, signal) => call("/v1/query", { method: "POST", body, signal });

/**
 * Opens the Server-Sent Events stream (fetch, since EventSource cannot send a header);
 * calls onUpdate per `data:` line. Resolves when the stream ends; an ApiError when refused.
 */
export async function stream(path, params, onUpdate, signal) {
  const resp = await request(path, { params, signal });
  if (!resp.ok) throw await failure(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    const lines = buffered.split("\n");
    buffered = lines.pop();
    for (const line of lines) {
      if (line.startsWith("data:")) onUpdate(JSON.parse(line.slice(5)));
    }
  }
}
