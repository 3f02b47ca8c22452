// The public API, as any client uses it: JSON envelopes, the key as a Bearer token.

const BASE = "/api/v1";
const KEY_STORAGE = "phonefleet.apiKey";

export class ApiError extends Error {
  constructor(code, message, data = null, status = 0) {
    super(message);
    this.code = code;
    this.data = data;
    this.status = status;
  }
}

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setKey(key) {
  localStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  localStorage.removeItem(KEY_STORAGE);
}

export function authHeaders(extra = {}) {
  const key = getKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

export function url(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return `${BASE}${path}${text ? `?${text}` : ""}`;
}

// The error an unsuccessful response stands for, in the envelope's words when there is one.
export async function errorFrom(response) {
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (payload && typeof payload.code === "number" && typeof payload.message === "string") {
    return new ApiError(payload.code, payload.message, payload.data ?? null, response.status);
  }
  return new ApiError(response.status * 100 + 1, `HTTP ${response.status} ${response.statusText}`.trim(), null, response.status);
}

function announce(error) {
  if (error.code === 40101) {
    window.dispatchEvent(new CustomEvent("phonefleet:unauthorized", { detail: error }));
  }
}

async function send(method, path, { query, body } = {}) {
  const init = { method, headers: authHeaders({ Accept: "application/json" }), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (cause) {
    throw new ApiError(0, `cannot reach the api (${cause.message || cause})`);
  }
  return response;
}

// Call an endpoint; resolves to the envelope's data, rejects with an ApiError carrying its message.
export async function api(method, path, options = {}) {
  const response = await send(method, path, options);
  if (!response.ok) {
    const error = await errorFrom(response);
    announce(error);
    throw error;
  }
  const payload = await response.json();
  if (payload.code !== 0) {
    const error = new ApiError(payload.code, payload.message, payload.data ?? null, response.status);
    announce(error);
    throw error;
  }
  return payload.data;
}

// An image endpoint (screenshots): resolves to an object URL, or null when there is none (40401).
export async function imageUrl(path) {
  const response = await send("GET", path);
  if (response.ok) return URL.createObjectURL(await response.blob());
  const error = await errorFrom(response);
  if (error.code === 40401) return null;
  announce(error);
  throw error;
}

// Every page of a list endpoint (devices, accounts), up to `limit` items.
export async function listAll(path, key, query = {}, limit = 2000) {
  const items = [];
  for (let page = 1; items.length < limit; page += 1) {
    const data = await api("GET", path, { query: { ...query, page, page_size: 100 } });
    items.push(...data[key]);
    if (data[key].length < 100 || items.length >= data.total) break;
  }
  return items;
}
