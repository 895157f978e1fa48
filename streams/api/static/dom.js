// DOM helpers. Every text that comes from the API goes in through text nodes
// (never innerHTML): payloads, reasons and errors are hostile input.

const SVG = "http://www.w3.org/2000/svg";

/** el("td", {class: "num"}, "12") — children: strings become text nodes, null is skipped. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  setAttrs(node, attrs);
  return node;
}

function setAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) throw new Error(`no inline handlers: ${name}`);
    node.setAttribute(name, value === true ? "" : String(value));
  }
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** Cut a long text for tables and feeds; the full text goes in the title. */
export function cut(text, max = 120) {
  const s = text === null || text === undefined ? "" : String(text);
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/** A cell of possibly long, possibly right-to-left text: cut, isolated, full text in the title. */
export function dataText(tag, text, max = 120, attrs = {}) {
  const s = text === null || text === undefined ? "" : String(text);
  return el(tag, {class: "data", title: s.length > max ? s.slice(0, 2000) : null, ...attrs}, cut(s, max));
}

/** An http(s) URL as a link, anything else as text: a javascript: URL never becomes a link. */
export function urlOrText(value) {
  const s = String(value);
  if (/^https?:\/\//i.test(s)) {
    try {
      const url = new URL(s);
      return el("a", {href: url.href, target: "_blank", rel: "noopener noreferrer", class: "data"}, cut(s, 200));
    } catch { /* not a URL after all: shown as text */ }
  }
  return dataText("span", s, 200);
}

const numbers = new Intl.NumberFormat(undefined, {maximumFractionDigits: 0});
const decimals = new Intl.NumberFormat(undefined, {minimumFractionDigits: 1, maximumFractionDigits: 1});

export function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? numbers.format(value) : "–";
}

export function dec(value) {
  return typeof value === "number" && Number.isFinite(value) ? decimals.format(value) : "–";
}

export function seconds(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  if (value < 60) return `${decimals.format(value)} s`;
  const m = Math.floor(value / 60);
  if (m < 60) return `${m} m ${Math.floor(value % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} m`;
}

/** Unix milliseconds as local time (the date too when not today). */
export function when(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "–";
  const d = new Date(ms);
  const time = d.toLocaleTimeString(undefined, {hour12: false}) + "." + String(d.getMilliseconds()).padStart(3, "0");
  return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

export function badge(text, kind = text) {
  return el("span", {class: `badge badge-${String(kind).replace(/[^a-z_-]/gi, "")}`}, String(text));
}

export function empty(text) {
  return el("p", {class: "empty"}, text);
}

/** An SVG polyline of ``values`` (the last ones), scaled to the largest. */
export function sparkline(values, width = 160, height = 32) {
  const box = svg("svg", {class: "spark", height, viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
    "aria-hidden": "true"});
  if (values.length < 2) return box;
  const top = Math.max(1, ...values);
  const step = width / (values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / top) * (height - 4)).toFixed(1)}`);
  box.append(svg("polyline", {points: points.join(" "), fill: "none", "stroke-width": "1.5",
    "vector-effect": "non-scaling-stroke"}));
  return box;
}
