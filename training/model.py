"""The blog post's network: the classic TensorFlow "Deep MNIST" convolutional layout."""

from __future__ import annotations

import keras


def build_model(input_shape: tuple = (28, 28, 1), num_classes: int = 10, learning_rate: float = 1e-3) -> keras.Model:
    """Conv 5x5 (32) → max-pool → conv 5x5 (64) → max-pool → dense 1024 → softmax, compiled with Adam."""
    model = keras.Sequential(
        [
            keras.Input(input_shape, name="digits"),
            keras.layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(1024, activation="relu", name="fc1"),
            keras.layers.Dense(num_classes, activation="softmax", name="predictions"),
        ],
        name="deep_mnist",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
