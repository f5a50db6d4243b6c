// The selection kept in the iframe's own location.hash, so a reload shows the same view (the rules: selection.js).
import { fromHash, toHash } from "./selection.js";

export const readHash = () => fromHash(location.hash.slice(1));

/** Writes `state` to the hash without adding a history entry. */
export function writeHash(state) {
  // An absolute URL: a relative "#…" would resolve against the page's <base>, not the page.
  const url = new URL(location.href);
  url.hash = toHash(state);
  if (url.href !== location.href) history.replaceState(history.state, "", url.href);
}
