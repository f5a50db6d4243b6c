"""The fixed inputs ("probes") fed through the model at each log event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Optional

import numpy as np

from ..warning import warn

MAX_PROBES = 32
"""Most probes one callback takes: each costs a grid per layer per step."""

MAX_POOL = 5000
"""Most pool inputs one producer takes: the pool goes through the model at every log step."""


@dataclass
class Probes:
    """Probe inputs (one array per model input) and a text label per probe.

    ``names`` holds the input names of probes given as a dict (in ``inputs``
    order) until :func:`fit_to_model` orders them like the model's inputs.
    """

    inputs: list
    labels: list
    names: Optional[list] = None


def default_digits() -> tuple[np.ndarray, np.ndarray]:
    """The ten shipped MNIST digits (uint8 ``[10, 28, 28]``) and their labels 0..9."""
    with resources.files("tb_featuremaps").joinpath("data/mnist_probes.npz").open("rb") as handle:
        data = np.load(handle)
        return data["images"], data["labels"]


def to_numpy(value: Any) -> np.ndarray:
    """``value`` as a NumPy array: TF/JAX arrays, and torch tensors (detached, on the CPU; bfloat16 as float32) too.

    Raises ValueError (a phrase for the caller to prefix with the argument's name) for a meta-device tensor.
    """
    if hasattr(value, "detach"):  # a PyTorch tensor that may require grad or live on a GPU
        if getattr(value, "is_meta", False):
            raise ValueError("is a tensor on the meta device, which holds no values; pass tensors with values (on the CPU or a GPU)")
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            value = value.float()
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def _is_dataset(value: Any) -> bool:
    """A ``tf.data.Dataset`` or an iterator of batches."""
    return hasattr(value, "element_spec") or (hasattr(value, "__iter__") and hasattr(value, "__next__"))


def _from_dataset(dataset: Any, owner: str) -> tuple[Any, Any]:
    """The first batch of a ``tf.data.Dataset`` (or any iterator of batches) as (x, y)."""
    try:
        batch = next(iter(dataset))
    except StopIteration:
        raise ValueError(f"{owner}: probes is an empty {type(dataset).__name__}; pass a dataset or iterator that yields a batch.") from None
    except Exception as error:
        raise _unreadable(owner, "probes", dataset, error) from error
    if isinstance(batch, tuple) and len(batch) in (2, 3):
        return batch[0], batch[1]
    return batch, None


def _unreadable(owner: str, what: str, dataset: Any, error: Exception) -> ValueError:
    """The error for a dataset or generator that raised while being read, naming the argument."""
    return ValueError(
        f"{owner}: {what}= could not be read: {type(error).__name__}: {error}. "
        f"The {type(dataset).__name__} given as {what}= raised while its batches were read; pass one that can be iterated, or arrays."
    )


def _first(value: Any, count: int) -> Any:
    """The first ``count`` examples of a batch (an array, or a list or dict of arrays per input)."""
    if isinstance(value, dict):
        return {key: _first(item, count) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_first(item, count) for item in value]
    return to_numpy(value)[:count]


def _labels_argument(labels: Any, owner: str, what: str = "probes") -> list:
    """User labels as a list of strings; refuses a bare string, a mapping or a scalar (``what``: whose labels)."""
    name, each = ("labels", "probe") if what == "probes" else (f"{what}_labels", f"{what} input")
    if isinstance(labels, (str, bytes, dict)) or not hasattr(labels, "__len__") and not hasattr(labels, "numpy"):
        raise ValueError(
            f"{owner}: {name} must be a sequence with one label per {each} (e.g. a list of strings), got {type(labels).__name__} {labels!r:.60}."
        )
    values = labels if isinstance(labels, (list, tuple)) else to_numpy(labels).tolist()
    if not isinstance(values, list):
        raise ValueError(f"{owner}: {name} must be a sequence with one label per {each}, got the scalar {values!r}.")
    return [str(label) for label in values]


def _labels_from(targets: Any, count: int) -> list:
    targets = to_numpy(targets)
    if targets.ndim == 2 and targets.shape[1] > 1:  # one-hot
        targets = targets.argmax(axis=1)
    return [str(v) for v in targets.reshape(count, -1)[:, 0].tolist()]


def prepare(
    probes: Any, labels: Optional[Sequence] = None, owner: str = "FeatureMapsWriter", limit: int = MAX_PROBES, what: str = "probes"
) -> Probes:
    """Normalises user probes (array, tensor, list or dict per input, or a dataset).

    Raises ValueError for empty, non-numeric, ragged or too many probes (more
    than ``limit``), or a bad label count; ``what`` names the argument in errors.
    """
    if probes is None:
        images, digits = default_digits()
        return Probes([images.astype(np.float32) / 255.0], [str(d) for d in digits.tolist()])
    targets = None
    if _is_dataset(probes):
        probes, targets = _from_dataset(probes, owner)
        count = _batch_size(probes)
        if count is not None and count > MAX_PROBES:
            warn(
                f"{owner}: the dataset's first batch holds {count} examples; the first {MAX_PROBES} are the probes.",
            )
            probes = _first(probes, MAX_PROBES)
            targets = None if targets is None else _first(targets, MAX_PROBES)
    names = [str(name) for name in probes] if isinstance(probes, dict) else None
    if isinstance(probes, dict):
        probes = list(probes.values())
    try:
        arrays = [to_numpy(p) for p in probes] if isinstance(probes, (list, tuple)) else [to_numpy(probes)]
    except ValueError as error:  # to_numpy's phrase
        raise ValueError(f"{owner}: {what}= {error}.") from error
    if not arrays:
        raise ValueError(f"{owner}: {what} is empty; pass at least one input example.")
    for array in arrays:
        if array.ndim == 0 or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_) or np.iscomplexobj(array):
            raise ValueError(
                f"{owner}: {what} must be numeric arrays with a batch axis, got {array.dtype} {array.shape}; "
                "pass the model's input tensors (e.g. preprocessed real-valued images), not raw strings, objects or complex numbers."
            )
    counts = {int(a.shape[0]) for a in arrays}
    if len(counts) != 1:
        raise ValueError(f"{owner}: every input's {what} need the same batch size, got {sorted(counts)}.")
    count = counts.pop()
    if count == 0:
        raise ValueError(f"{owner}: {what} is empty; pass at least one input example.")
    if count > limit:
        many = f"{count} probes" if what == "probes" else f"a {what} of {count} inputs"
        raise ValueError(f"{owner}: {many} is more than the {limit} it takes; pass {what}[:{limit}] or fewer.")
    if labels is None:
        labels = _labels_from(targets, count) if targets is not None else [str(i) for i in range(count)]
    labels = _labels_argument(labels, owner, what)
    if len(labels) != count:
        raise ValueError(f"{owner}: got {len(labels)} labels for {count} {what}; pass one label per {'probe' if what == 'probes' else 'input'}.")
    return Probes(arrays, labels, names)


def prepare_pool(pool: Any, labels: Any = None, owner: str = "FeatureMapsWriter") -> Probes:
    """Normalises a pool of inputs (array, tensor, list or dict per input, or a dataset read up to :data:`MAX_POOL`).

    Raises ValueError as :func:`prepare` does; labels default to the dataset's
    targets or the pool index.
    """
    if _is_dataset(pool):
        pool, targets = _read_dataset(pool, owner)
        if labels is None and targets is not None:
            labels = _labels_from(targets, _batch_size(pool))
    return prepare(pool, labels, owner, limit=MAX_POOL, what="pool")


def _read_dataset(dataset: Any, owner: str) -> tuple[list, Any]:
    """Batches of a dataset (or iterator) concatenated up to :data:`MAX_POOL` examples, as (x, y)."""
    inputs, targets, count = [], [], 0
    try:
        for batch in dataset:
            x, y = (batch[0], batch[1]) if isinstance(batch, tuple) and len(batch) in (2, 3) else (batch, None)
            inputs.append(x)
            targets.append(y)
            count += _batch_size(x) or 0
            if count >= MAX_POOL:
                break
    except Exception as error:
        raise _unreadable(owner, "pool", dataset, error) from error
    if not inputs:
        raise ValueError(f"{owner}: pool is an empty {type(dataset).__name__}; pass a dataset or iterator that yields batches.")

    def joined(parts: list) -> Any:
        first = parts[0]
        if isinstance(first, dict):
            return {key: joined([part[key] for part in parts]) for key in first}
        if isinstance(first, (list, tuple)):
            return [joined([part[i] for part in parts]) for i in range(len(first))]
        return np.concatenate([to_numpy(part) for part in parts])[:MAX_POOL]

    return joined(inputs), None if targets[0] is None else joined(targets)


def _batch_size(value: Any) -> Optional[int]:
    """The batch size of a batch (its first array's first axis), or None if it has no batch axis."""
    while isinstance(value, (dict, list, tuple)) and value:
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    shape = getattr(value, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) and shape[0] is not None else None


def _order_by_name(probes: Probes, input_names: Sequence[str], owner: str, what: str = "probes") -> Probes:
    """Orders probes (or the pool, ``what``) given as a dict like the model's inputs."""
    given = dict(zip(probes.names, probes.inputs))
    if sorted(given) != sorted(input_names):
        raise ValueError(
            f"{owner}: {what}= is keyed {sorted(given)} but the model's inputs are named {list(input_names)}; "
            f"pass {what}= with one array per input, keyed by input name."
        )
    return Probes([given[name] for name in input_names], probes.labels)


def fit_to_model(
    probes: Probes,
    input_shapes: Sequence[Sequence[Optional[int]]],
    default: bool,
    input_names: Optional[Sequence[str]] = None,
    owner: str = "FeatureMapsLogger",
    what: str = "probes",
) -> Probes:
    """Checks (and, for the default digits, reshapes) probes against the model's inputs.

    Probes given as a dict are ordered by ``input_names`` first; ``what`` names the argument in errors.
    """
    if probes.names is not None:
        probes = _order_by_name(probes, input_names or [], owner, what)
    expected = [tuple(shape) for shape in input_shapes]
    if default and len(expected) == 1:
        shape = expected[0][1:]
        digits = probes.inputs[0]
        if all(d is not None for d in shape) and int(np.prod(shape)) == digits[0].size:
            return Probes([digits.reshape((len(digits), *shape))], probes.labels)
    if len(probes.inputs) != len(expected):
        raise ValueError(
            f"{owner}: the model has {len(expected)} inputs {expected} but {len(probes.inputs)} {what} "
            f"arrays were given; pass {what}= as a list with one array per model input."
        )
    for array, shape in zip(probes.inputs, expected):
        if len(array.shape) != len(shape) or any(e is not None and e != a for e, a in zip(shape[1:], array.shape[1:])):
            hint = "the default probes are 28x28 MNIST digits; " if default else ""
            raise ValueError(
                f"{owner}: {what} have shape {tuple(array.shape)} but the model expects {shape}; "
                f"{hint}pass {what}= shaped like a batch of the model's input."
            )
    return probes


def probe_image(example: np.ndarray, channels_first: bool = False) -> np.ndarray:
    """A displayable uint8 picture of one probe: gray ``[H, W]`` or RGB ``[H, W, 3]``.

    Images are min-max scaled; non-image inputs show their first channel.
    """
    example = np.asarray(example, dtype=np.float32)
    if channels_first and example.ndim == 3:
        example = np.moveaxis(example, 0, -1)
    if example.ndim == 3 and example.shape[-1] == 3:
        picture = example
    else:
        if example.ndim >= 3:
            example = example[..., 0]
        while example.ndim > 2:
            example = example[example.shape[0] // 2]
        picture = example.reshape(1, -1) if example.ndim < 2 else example
    finite = np.isfinite(picture)
    low, high = (picture[finite].min(), picture[finite].max()) if finite.any() else (0.0, 0.0)
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.clip(np.where(finite, (picture - low) * scale, 0), 0, 255).astype(np.uint8)
