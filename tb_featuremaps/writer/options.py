"""``Options``: every option of a producer, declared once with its default, type and meaning, and checked once.

The writer, the Keras and PyTorch loggers, the Keras callback and the Lightning
callback all take these options; each public class declares only what is its
own (the model, ``log_dir``, when to log) and gets the rest from here through
:func:`takes`, which also writes the options into its ``inspect.signature``
(what ``help()``, IPython and notebooks show) and its docstring. It lives
beside the writer because the writer consumes most of the options and must not
depend on the producers above it.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from ..format import metadata
from . import arguments


def _option(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True, eq=False)
class Options:
    """The options of a producer, checked when made (a ``ValueError`` naming the option and the fix).

    Producers take them as keywords; ``options=Options(...)`` passes a set at
    once (keywords given beside it override it). ``dataclasses.replace`` makes a
    changed copy, checked again.
    """

    probes: Any = _option(
        None,
        "Inputs to visualise, shaped like one batch of the model's input (at most 32); a list or dict of them for several "
        "inputs; or a dataset (its first batch). Default: ten shipped MNIST digits.",
    )
    labels: Optional[Sequence] = _option(
        None, "One label per probe (shown in the panel); default: the digit class, the dataset's targets or the index."
    )
    layers: Any = _option(
        None,
        "What to log: layer names or paths, compiled regexes, classes or layer objects (checked by the producer, which "
        "knows its framework's layers); default: every convolution and pooling layer.",
    )
    run_name: str = _option(metadata.DEFAULT_RUN_NAME, 'The run\'s folder under log_dir (docs/format.md, "Where").')
    step_unit: str = _option("step", 'What a step counts, shown in the panel: "epoch", "batch" or "step".')
    resume: bool = _option(False, "Continue the newest run of this name after its last logged step, instead of a new folder.")
    max_filters: int = _option(128, "At most this many filters (the first ones) are drawn per layer; wider layers are capped, with one warning.")
    max_tile_size: int = _option(64, "Feature maps larger than this (pixels per side) are block-averaged down to fit.")
    write_weights: bool = _option(True, "Also log the kernels of convolution layers as grids.")
    write_images: Union[bool, str] = _option(
        "first",
        "Also write the grids for the stock Images dashboard: \"first\" the first probe's grid per layer, True every probe's, "
        "False none (the Feature Maps panel reads its own series, never these copies).",
    )
    max_step_bytes: Optional[int] = _option(
        arguments.DEFAULT_MAX_STEP_BYTES,
        "A step's budget of encoded bytes (default 4 MiB; None: no budget). When the run's first step would take more, the "
        "run is drawn smaller, the same at every step, in a fixed order (Images copies, patch size, ranks, tile size) until "
        'it fits, and one warning says what was reduced (docs/format.md, "Step budget"). Probes, filters and stats are never dropped.',
    )
    pool: Any = _option(
        None,
        "Inputs among which each filter's strongest responses are found at every step (e.g. x_val[:500]; laid out like "
        "probes, or a dataset read up to 5,000 examples); off by default. Logs, per filter, its top_k strongest pool inputs, "
        "the patches under them and how much its response changed since the previous step.",
    )
    pool_labels: Optional[Sequence] = _option(None, "One label per pool input (default: the dataset's targets or the index).")
    top_k: Optional[int] = _option(None, f"How many strongest pool inputs are kept per filter (default {arguments.DEFAULT_TOP_K}; only with pool=).")
    timer: Optional[Callable[[str, float], None]] = _option(None, "Called as timer(stage, seconds) after each stage of a log event (benchmarks).")
    background: bool = _option(
        True, "Draw, encode and write on a background thread (the caller only copies to host and queues); False: before log returns."
    )
    all_ranks: bool = _option(
        False, "Log on every process of a distributed training (give each its own run_name); by default only the chief does (docs/distributed.md)."
    )
    owner: str = field(default="Options", repr=False, metadata={"doc": ""})
    """Who error messages name: the public class given these options (not an option)."""

    def __post_init__(self) -> None:
        owner = self.owner
        arguments.labels_need_probes(owner, self.probes, self.labels)
        arguments.labels_need_probes(owner, self.pool, self.pool_labels, "pool")
        checked = {
            "run_name": arguments.run_name(owner, self.run_name),
            "step_unit": arguments.choice(owner, "step_unit", self.step_unit, metadata.STEP_UNITS),
            "resume": arguments.boolean(owner, "resume", self.resume),
            "max_filters": arguments.positive_integer(owner, "max_filters", self.max_filters),
            "max_tile_size": arguments.positive_integer(owner, "max_tile_size", self.max_tile_size),
            "write_weights": arguments.boolean(owner, "write_weights", self.write_weights),
            "write_images": arguments.images(owner, self.write_images),
            "max_step_bytes": arguments.optional_positive_integer(owner, "max_step_bytes", self.max_step_bytes),
            "top_k": None if self.top_k is None else arguments.top_k(owner, self.top_k, self.pool),
            "background": arguments.boolean(owner, "background", self.background),
            "all_ranks": arguments.boolean(owner, "all_ranks", self.all_ranks),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)  # NumPy integers and booleans as Python ones

    @property
    def kept(self) -> int:
        """How many strongest pool inputs are kept per filter: ``top_k`` or its default."""
        return arguments.DEFAULT_TOP_K if self.top_k is None else self.top_k

    def writer_keywords(self) -> dict[str, Any]:
        """The options ``FeatureMapsWriter`` takes, as its keywords."""
        return {name: getattr(self, name) for name in WRITER_OPTIONS}


NAMES: tuple[str, ...] = tuple(item.name for item in dataclasses.fields(Options) if item.name != "owner")
"""Every option, in declaration order."""

WRITER_OPTIONS = tuple(name for name in NAMES if name not in ("probes", "labels", "layers", "write_weights", "all_ranks"))
"""The options the writer takes as keywords (the rest are the producers': what to run, kernels, which process)."""

_FIELDS = {item.name: item for item in dataclasses.fields(Options)}


def collect(cls: type, owner: str, options: Any, given: Mapping[str, Any], **positional: Any) -> Options:
    """The options an instance of ``cls`` (a class made by :func:`takes`) was given: ``options=`` (or the defaults) with
    the keywords ``given`` beside it and the ``positional`` ones that are not None (``probes``, ``labels``, ``layers``),
    which override it.

    Raises ``TypeError`` for a keyword ``cls`` does not take, as Python does, naming
    what it takes; ``ValueError`` for a bad value.
    """
    given = {**given, **{name: value for name, value in positional.items() if value is not None}}
    unknown = [name for name in given if name not in cls.ACCEPTS]
    if unknown:
        names = ", ".join(cls.__signature__.parameters)
        raise TypeError(f"{owner} got an unexpected keyword argument {unknown[0]!r}; it takes {names}.")
    if options is None:
        return Options(**given, owner=owner)
    if not isinstance(options, Options):
        raise ValueError(f"{owner}: options must be a tb_featuremaps.Options, got {type(options).__name__}; pass options=Options(...) or keywords.")
    return dataclasses.replace(options, **given, owner=owner)


def takes(*, exclude: Sequence[str] = ()) -> Callable[[type], type]:
    """Gives a producer's public class every option but ``exclude``: in its ``inspect.signature`` and docstring.

    The class's ``__init__`` declares its own parameters and ends with
    ``options=None, **given``; the options that are not among its own parameters
    are shown as keyword-only ones, with their defaults and types, after its own
    keywords. The class's ``ACCEPTS`` names the options it takes (for :func:`collect`).
    """

    def decorate(cls: type) -> type:
        own = [parameter for parameter in inspect.signature(cls.__init__).parameters.values() if parameter.kind != parameter.VAR_KEYWORD]
        taken = [name for name in NAMES if name not in exclude]
        named = {parameter.name for parameter in own}
        added = [name for name in taken if name not in named]
        last = [parameter for parameter in own if parameter.name in ("options", "owner")]
        keyword = [parameter for parameter in own if parameter.kind == parameter.KEYWORD_ONLY and parameter not in last]
        positional = [parameter for parameter in own if parameter.kind != parameter.KEYWORD_ONLY and parameter.name != "self"]
        options = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_FIELDS[name].default, annotation=_FIELDS[name].type) for name in added
        ]
        cls.__signature__ = inspect.Signature(positional + keyword + options + last)
        cls.ACCEPTS = tuple(taken)
        cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n" + describe(added)
        return cls

    return decorate


def describe(names: Sequence[str]) -> str:
    """The docstring section listing ``names`` with their meaning and default (indented as a class docstring)."""
    lines = ["    Options (keywords; ``options=Options(...)`` gives a set at once):"]
    for name in names:
        doc, default = _FIELDS[name].metadata["doc"], _FIELDS[name].default
        lines.append(f"        {name}: {doc}" + ("" if "default" in doc.lower() else f" Default: {default!r}."))
    return "\n".join(lines) + "\n"
