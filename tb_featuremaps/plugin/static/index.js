// Entry point: TensorBoard's Feature Maps iframe imports this module and calls render().
import { startApp } from "./static/app.js";

export function render() {
  const root = document.createElement("main");
  root.className = "fm";
  root.hidden = true; // until the stylesheet is in, so nothing flashes unstyled
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = "./static/style.css";
  link.addEventListener("load", () => (root.hidden = false));
  link.addEventListener("error", () => (root.hidden = false));
  document.head.append(link);
  document.body.append(root);
  startApp(root);
}
