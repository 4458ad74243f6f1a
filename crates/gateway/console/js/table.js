// The interactions table shared by the agent's and the supervisor's views: a snapshot read a
// page at a time (never the whole workbin or queue), sortable by column (the snapshot's
// order, so the server sorts), rows opened with a click or the keyboard, and, for the
// supervisor, rows selected with checkboxes.

import * as api from "./api.js";
import { el, fill, when } from "./dom.js";

/** Columns: the heading, the order the server sorts by, and the cell's text. */
export const COLUMNS = [
  { key: "id", title: "Id", order: "InteractionId", text: (r) => r.id },
  { key: "media", title: "Media", order: "MediaType", text: (r) => r.mediatype || "" },
  { key: "subject", title: "Subject or from", order: "UserData.Subject", text: subjectOrFrom },
  { key: "received", title: "Received", order: "ReceivedAt", text: (r) => when(r.receivedAt) },
  { key: "state", title: "State", order: "InteractionState", text: where },
];

/** A user data value by key. */
export function userData(row, key) {
  const pair = (row.userData || []).find((p) => p.key === key);
  return pair ? pair.value : undefined;
}

function subjectOrFrom(r) {
  return String(userData(r, "Subject") ?? userData(r, "FromAddress") ?? userData(r, "From") ?? "");
}

/** Where an interaction is: its state and location. */
export function where(r) {
  if (r.state === "Queued") return `Queued in ${r.queue}`;
  if (r.state === "InWorkbin") {
    const owner = r.agentId || r.placeId || r.agentGroupId || r.placeGroupId || "";
    return `In ${r.workbinTypeId}${owner ? ` of ${owner}` : ""}`;
  }
  if (r.state === "Handling") return `Handled by ${r.assignedTo}`;
  return r.state || "";
}

/** A paged, sortable table of one snapshot at a time. */
export class SnapshotTable {
  /** `host` and `pager` are elements; `opts`: `caption`, `selectable`, `onOpen(row)`,
   * `onSelect(ids)`, `onInvalid(error)` (a condition that does not parse), `pageSize`. */
  constructor(host, pager, opts) {
    this.host = host;
    this.pager = pager;
    this.opts = opts;
    this.pageSize = opts.pageSize || 50;
    this.snapshot = null;
    this.count = 0;
    this.capped = false;
    this.start = 0;
    this.rows = [];
    this.selected = new Set();
    this.sort = { key: "received", desc: false };
    this.condition = null;
    this.extraOrder = "";
    this.generation = 0;
  }

  /** The order sent with the snapshot: the chosen column, or the order the user wrote. */
  order() {
    if (this.extraOrder) return this.extraOrder;
    const c = COLUMNS.find((x) => x.key === this.sort.key);
    return `${c.order}${this.sort.desc ? " DESC" : ""}`;
  }

  /** Shows what `condition` selects, from the first page (or keeps the page when `keepPage`). */
  async show(condition, keepPage = false) {
    const generation = ++this.generation;
    const taken = await api.takeSnapshot(condition, this.order());
    if (generation !== this.generation) {
      if (taken.snapshotId) api.release(taken.snapshotId).catch(() => {});
      return false;
    }
    if (taken.invalid) {
      this.opts.onInvalid?.(taken.invalid);
      return false;
    }
    const old = this.snapshot;
    this.snapshot = taken.snapshotId;
    this.condition = condition;
    this.count = taken.count;
    this.capped = taken.capped;
    if (!keepPage || this.start >= this.count) this.start = 0;
    if (old) api.release(old).catch(() => {});
    await this.load(generation);
    return true;
  }

  /** Takes the snapshot again (after a change), keeping the page. */
  refresh() {
    if (this.condition === null) return Promise.resolve(false);
    return this.show(this.condition, true);
  }

  async load(generation = this.generation) {
    const data = this.count ? await api.page(this.snapshot, this.start, this.pageSize) : { interactions: [] };
    if (generation !== this.generation) return;
    this.rows = data.interactions;
    const visible = new Set(this.rows.map((r) => r.id));
    for (const id of [...this.selected]) if (!visible.has(id)) this.selected.delete(id);
    this.render();
  }

  /** Drops a row at once (the server said it left), before the refresh. */
  drop(id) {
    const row = this.host.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    if (row) row.remove();
    this.selected.delete(id);
  }

  /** Forgets the snapshot (releasing it, unless the session is ending: that releases it). */
  close(release = true) {
    this.generation++;
    if (this.snapshot && release) api.release(this.snapshot).catch(() => {});
    this.snapshot = null;
    this.condition = null;
    this.rows = [];
    fill(this.host);
    fill(this.pager);
  }

  render() {
    const o = this.opts;
    const head = el("tr", {},
      o.selectable ? el("th", { scope: "col", className: "pick" }, el("input", {
        type: "checkbox", "aria-label": "Select every row of this page",
        checked: this.rows.length > 0 && this.rows.every((r) => this.selected.has(r.id)),
        onchange: (e) => { for (const r of this.rows) e.target.checked ? this.selected.add(r.id) : this.selected.delete(r.id); this.render(); o.onSelect?.([...this.selected]); },
      })) : null,
      COLUMNS.map((c) => {
        const active = this.sort.key === c.key && !this.extraOrder;
        return el("th", { scope: "col", className: `col-${c.key}`, "aria-sort": active ? (this.sort.desc ? "descending" : "ascending") : "none" },
          el("button", { type: "button", className: "sort", onclick: () => this.sortBy(c.key) }, c.title, active ? (this.sort.desc ? " ↓" : " ↑") : ""));
      }),
      o.selectable ? el("th", { scope: "col", className: "col-lock" }, "Lock") : null);
    const body = this.rows.map((r) => {
      const gone = r.state === "Gone";
      return el("tr", { "data-id": r.id, className: gone ? "gone" : "" },
        o.selectable ? el("td", { className: "pick" }, el("input", {
          type: "checkbox", "aria-label": `Select ${r.id}`, checked: this.selected.has(r.id), disabled: gone,
          onchange: (e) => { e.target.checked ? this.selected.add(r.id) : this.selected.delete(r.id); o.onSelect?.([...this.selected]); },
        })) : null,
        COLUMNS.map((c) => el("td", { className: `col-${c.key}` },
          c.key === "id" && !gone ? el("button", { type: "button", className: "link", onclick: () => o.onOpen?.(r), "aria-label": `Open ${r.id}` }, r.id) : c.text(r))),
        o.selectable ? el("td", { className: "col-lock" }, r.isLocked ? "Locked" : "") : null);
    });
    const empty = this.rows.length === 0 ? el("p", { className: "empty" }, "Nothing here.") : null;
    fill(this.host, el("table", { className: "rows" }, el("caption", {}, o.caption()), el("thead", {}, head), el("tbody", {}, body)), empty);
    this.renderPager();
  }

  renderPager() {
    const last = Math.min(this.start + this.pageSize, this.count);
    const total = this.capped ? `${this.count}+` : `${this.count}`;
    const text = this.count ? `${this.start + 1}–${last} of ${total}` : "0 of 0";
    fill(this.pager,
      el("button", { type: "button", disabled: this.start === 0, onclick: () => this.go(this.start - this.pageSize) }, "Previous page"),
      el("span", { className: "range", "aria-live": "polite" }, text),
      el("button", { type: "button", disabled: last >= this.count, onclick: () => this.go(this.start + this.pageSize) }, "Next page"));
  }

  async go(start) {
    this.start = Math.max(0, start);
    await this.load();
  }

  async sortBy(key) {
    this.extraOrder = "";
    this.sort = { key, desc: this.sort.key === key ? !this.sort.desc : false };
    this.opts.onSort?.(this.order());
    if (this.condition !== null) await this.show(this.condition);
  }
}
