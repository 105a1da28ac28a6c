// The API client of the dashboard: the token in sessionStorage (this tab only, never in a
// URL), a bearer header on every call, problem+json errors as ProblemError, and Server-Sent
// Events read with fetch() (EventSource cannot send an Authorization header).

const TOKEN_KEY = "loraplane.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An error answer of the API (RFC 9457 problem+json: title, detail, code). */
export class ProblemError extends Error {
  constructor(status, problem) {
    super(problem.title || `HTTP ${status}`);
    this.status = status;
    this.title = problem.title || `HTTP ${status}`;
    this.detail = problem.detail || "";
    this.code = problem.code || "";
  }
}

async function problemOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {title: response.statusText || `HTTP ${response.status}`};
  }
  const error = new ProblemError(response.status, body);
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent("loraplane:unauthorized", {detail: error}));
  }
  return error;
}

function headers(extra) {
  const all = {Accept: "application/json", ...extra};
  const value = token.get();
  if (value) all.Authorization = `Bearer ${value}`;
  return all;
}

async function send(path, {method = "GET", body, accept, signal} = {}) {
  const extra = accept ? {Accept: accept} : {};
  if (body !== undefined) extra["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, signal, cache: "no-store", headers: headers(extra),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await problemOf(response);
  return response;
}

/** Call the API; the parsed JSON (null for 204). */
export async function api(path, options) {
  const response = await send(path, options);
  return response.status === 204 ? null : response.json();
}

/** Every item of a paged list, following next_cursor up to `max` items. */
export async function all(path, {max = 1000, signal} = {}) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path,
                           {signal});
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

async function sha256Hex(blob) {
  if (!crypto.subtle) return null; // only in secure contexts (https, localhost)
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Download with the bearer header, check the sha256 if given, and save it as `filename`. */
export async function download(path, filename, sha256) {
  const response = await send(path, {accept: "*/*"});
  const blob = await response.blob();
  let verified = null;
  if (sha256) {
    const actual = await sha256Hex(blob);
    if (actual !== null && actual !== sha256) {
      throw new ProblemError(0, {title: "Download corrupted",
        detail: `sha256 of the bytes is ${actual}, expected ${sha256}`, code: "sha256_mismatch"});
    }
    verified = actual !== null;
  }
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), {href: url, download: filename});
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return {size: blob.size, verified};
}

/** Parse an SSE byte stream into {event, data, id} messages (the WHATWG rules, in short). */
async function* messages(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = {event: "message", data: [], id: null};
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") message.event = text;
        else if (field === "data") message.data.push(text);
        else if (field === "id") message.id = text;
      }
      if (message.data.length) yield {...message, data: JSON.parse(message.data.join("\n"))};
    }
  }
}

/**
 * Follow an SSE endpoint: `onMessage({event, data, id})` for each message, reconnecting
 * (with Last-Event-ID) when the connection drops, until an `end` event, an error answer
 * (thrown), or `signal` aborts. `onStatus("live" | "reconnecting")` tells the page.
 */
export async function follow(path, onMessage, {signal, onStatus = () => {}} = {}) {
  let lastId = null;
  while (!signal?.aborted) {
    let response;
    try {
      const extra = {Accept: "text/event-stream"};
      if (lastId) extra["Last-Event-ID"] = lastId;
      response = await fetch(path, {headers: headers(extra), signal, cache: "no-store"});
    } catch (error) {
      if (signal?.aborted) return;
      onStatus("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, 2000));
      continue;
    }
    if (!response.ok) throw await problemOf(response);
    onStatus("live");
    try {
      for await (const message of messages(response.body)) {
        if (message.id) lastId = message.id;
        if (message.event === "end") { onStatus("ended"); return; }
        onMessage(message);
      }
    } catch (error) {
      if (signal?.aborted) return;
      if (error instanceof SyntaxError) throw error;
    }
    if (signal?.aborted) return;
    onStatus("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
