// Calls to the millstream API: the bearer token (sessionStorage), JSON in and
// out, and errors as ApiError carrying the API's "detail".

const TOKEN_KEY = "millstream.token";
const unauthorized = new Set();

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(status, detail));
    this.status = status;
    this.detail = detail;
  }
}

function describe(status, detail) {
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  }
  return typeof detail === "string" ? detail : `HTTP ${status}`;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function authHeaders() {
  const t = token();
  return t ? {Authorization: `Bearer ${t}`} : {};
}

/** Call ``fn(hadToken)`` whenever the API refuses us with 401 (the app shows the token prompt). */
export function onUnauthorized(fn) {
  unauthorized.add(fn);
}

export function refused() {
  const hadToken = Boolean(token());
  for (const fn of unauthorized) fn(hadToken);
}

/** ``request("GET", "/v1/stats")`` → the decoded JSON; throws ApiError (401 also opens the prompt). */
export async function request(method, path, body = undefined, contentType = "application/json") {
  const headers = {Accept: "application/json", ...authHeaders()};
  const init = {method, headers, cache: "no-store"};
  if (body !== undefined) {
    headers["Content-Type"] = contentType;
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, `the API cannot be reached (${error.message})`);
  }
  const data = await decoded(response);
  if (response.status === 401) refused();
  if (!response.ok) throw new ApiError(response.status, data && data.detail);
  return data;
}

async function decoded(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return {detail: text.slice(0, 500)};
  }
}

/** A query string of the non-empty values of ``params``. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== "" && v !== null && v !== undefined) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const seg = encodeURIComponent;
