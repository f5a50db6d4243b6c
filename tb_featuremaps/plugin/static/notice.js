// A dismissable notice of the runs and layers TensorBoard could not read (the runs route's `errors`), as text.
import { el } from "./dom.js";

const SHOWN = 8; // entries listed; the rest are counted
const LONGEST = 300; // characters of one entry

/** "run · tag: error" for one entry of `errors` (any field may be missing or of the wrong type). */
function describe(entry) {
  const run = String(entry?.run ?? "?");
  const tag = entry?.tag == null ? "" : ` · ${entry.tag}`;
  const text = `${run}${tag}: ${String(entry?.error ?? "unreadable")}`;
  return text.length > LONGEST ? `${text.slice(0, LONGEST - 1)}…` : text;
}

export class Notice {
  constructor() {
    this.dismissed = null; // the errors the user dismissed, as JSON: they stay hidden until they change
    this.key = "[]";
    this.title = el("p", { class: "fm-notice-title" });
    this.list = el("ul");
    this.more = el("p", { class: "fm-notice-more" });
    this.close = el("button", { type: "button", class: "fm-icon fm-close", "aria-label": "Dismiss", title: "Dismiss", text: "×" });
    this.close.addEventListener("click", () => {
      this.dismissed = this.key;
      this.root.hidden = true;
    });
    this.root = el("section", { class: "fm-notice", role: "status", hidden: true }, el("div", {}, this.title, this.list, this.more), this.close);
  }

  /** Shows `errors` ([{run, tag, error}], or anything else for none) unless the same list was dismissed. */
  show(errors) {
    const list = Array.isArray(errors) ? errors : [];
    this.key = JSON.stringify(list);
    this.root.hidden = !list.length || this.key === this.dismissed;
    if (!list.length) return;
    this.title.textContent = list.length === 1 ? "TensorBoard could not read this:" : `TensorBoard could not read these ${list.length}:`;
    this.list.replaceChildren(...list.slice(0, SHOWN).map((entry) => el("li", { text: describe(entry) })));
    this.more.textContent = list.length > SHOWN ? `and ${list.length - SHOWN} more` : "";
    this.more.hidden = list.length <= SHOWN;
  }
}
