// Small DOM helpers: building elements without HTML strings (so no text is ever parsed as
// markup), finding them, and the page's status line.

/** The element with this id. */
export const byId = (id) => document.getElementById(id);

/** A new element: `attrs` are properties (`className`, `type`, ...) or, for names with a dash
 * and `for`/`scope`, attributes; children are nodes or text. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.includes("-") || k === "for" || k === "scope" || k === "role") node.setAttribute(k, v === true ? "" : String(v));
    else node[k] = v;
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Replaces a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Says `text` in the status line (a polite live region, so screen readers announce it). */
export function say(text, isError = false) {
  const s = byId("status");
  s.textContent = text;
  s.classList.toggle("error", isError);
}

/** A date-time as the browser's locale writes it (short), or "". */
export function when(rfc3339) {
  if (!rfc3339) return "";
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? rfc3339 : d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}
