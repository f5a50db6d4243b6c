// What the panel shows when no run holds feature maps: how to log some.
import { el } from "./dom.js";

const CODE = `from tb_featuremaps import FeatureMapsCallback

callback = FeatureMapsCallback("logs")  # writes logs/feature_maps
model.fit(x_train, y_train, epochs=10, callbacks=[callback])`;

export function emptyState() {
  return el(
    "section",
    { class: "fm-empty", "aria-labelledby": "fm-empty-title" },
    el("h2", { id: "fm-empty-title", text: "No feature maps logged yet" }),
    el("p", { text: "Add the callback to your Keras training to see what each convolution layer sees, epoch by epoch:" }),
    el("pre", {}, el("code", { text: CODE })),
    el("p", {}, "Then start ", el("code", { text: "tensorboard --logdir logs" }), ". New runs and steps show up here by themselves while training runs."),
  );
}
