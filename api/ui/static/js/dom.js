// A few DOM helpers: elements are built with createElement and textContent, never from HTML
// strings, so nothing the API returns is ever parsed as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "text") element.textContent = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: h("a", {href: "#/jobs", class: "x"}, "Jobs"). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, like h(). */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return h("time", {datetime: iso, title: iso}, date.toLocaleString());
}

export function number(value, digits = 4) {
  return typeof value === "number" ? value.toPrecision(digits) : "";
}

export function badge(state) {
  return h("span", {class: `badge state-${state}`}, state);
}

/** A readable problem+json error: title, detail, code and status. */
export function problemBox(error) {
  const title = error.title || error.message || "Something went wrong";
  return h("div", {class: "problem", role: "alert"},
    h("strong", {class: "problem-title"}, title),
    error.detail ? h("p", {class: "problem-detail"}, error.detail) : null,
    h("p", {class: "problem-meta"},
      error.status ? `HTTP ${error.status}` : "",
      error.code ? [" · code ", h("code", {}, error.code)] : null));
}

/** Ask with the page's <dialog>; resolves true when the user confirms. */
export function confirmDialog(title, text, okLabel = "Confirm") {
  const dialog = document.getElementById("confirm");
  dialog.querySelector("#confirm-title").textContent = title;
  dialog.querySelector("#confirm-text").replaceChildren(...[text].flat());
  dialog.querySelector("#confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), {once: true});
  });
}
