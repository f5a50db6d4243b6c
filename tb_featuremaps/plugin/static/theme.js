// Light or dark: TensorBoard's own choice (its toggle sets the `dark-mode` class on the host page's body, from the
// system setting unless the user picked one), read from the same-origin parent; the system setting without one.

const HOST_CLASS = "dark-mode";
const DARK_CLASS = "fm-dark";

/** TensorBoard's body when this page is framed by a page of the same origin, else null. */
function hostBody() {
  try {
    return window.parent !== window ? window.parent.document.body : null;
  } catch {
    return null; // another origin
  }
}

/** Keeps the `fm-dark` class of <html> in step with the theme; calls `onChange()` after each change. */
export function followTheme(onChange = () => {}) {
  const apply = (dark) => {
    if (document.documentElement.classList.contains(DARK_CLASS) === dark) return;
    document.documentElement.classList.toggle(DARK_CLASS, dark);
    onChange();
  };
  const body = hostBody();
  if (body) {
    const read = () => apply(body.classList.contains(HOST_CLASS));
    new MutationObserver(read).observe(body, { attributes: true, attributeFilter: ["class"] });
    read();
    return;
  }
  const query = window.matchMedia("(prefers-color-scheme: dark)");
  query.addEventListener("change", () => apply(query.matches));
  apply(query.matches);
}
