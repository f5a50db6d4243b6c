"""Which run folder a training logs to: a new one for a new training, the same one for a resume.

The rule (``docs/format.md``, "Where"): a training that starts from scratch never
writes into a folder that already holds feature maps (it takes the next free
``<run_name>_N``); a resumed one (``initial_epoch > 0``) continues the newest
folder of its name at the step that folder last logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Optional

from ..format import filesystem
from ..format.eventfile import read_events

_EVENT_FILE = "events.out.tfevents."


def _summary_steps(run_dir: str) -> Iterator[int]:
    """The step of each event with a summary in ``run_dir``'s event files, read lazily in file order."""
    try:
        names = sorted(name for name, folder in filesystem.entries(run_dir) if name.startswith(_EVENT_FILE) and not folder)
    except OSError:  # no such directory (yet)
        return
    for name in names:
        for event in read_events(filesystem.join(run_dir, name)):
            if event.summary.value:
                yield event.step


def last_logged_step(run_dir: str) -> Optional[int]:
    """The largest step of any summary in ``run_dir``'s event files, or None if it holds none."""
    return max(_summary_steps(run_dir), default=None)


def holds_summaries(run_dir: str) -> bool:
    """Whether ``run_dir`` holds any summary; stops reading at the first one."""
    return next(_summary_steps(run_dir), None) is not None


@dataclass(frozen=True)
class RunChoice:
    """Where a training logs and what that folder held before."""

    run_dir: str
    number: int
    """1 for ``run_name`` itself, N for ``run_name_N``."""
    last_step: Optional[int]
    """The last step the folder already holds (a resume continues after it), or None for a fresh folder."""
    taken: tuple[str, ...] = ()
    """Folders of this name skipped because they hold another training's steps."""


def _siblings(log_dir: str, run_name: str) -> list[tuple[int, str]]:
    """``(number, path)`` of ``run_name`` (1) and the existing ``run_name_N`` folders, by number."""
    pattern = re.compile(re.escape(run_name) + r"_([0-9]+)")
    try:
        names = [name for name, folder in filesystem.entries(log_dir) if folder]
    except OSError:  # no such directory (yet)
        names = []
    found = {1: filesystem.join(log_dir, run_name)}
    for name in names:
        match = pattern.fullmatch(name)
        if match and int(match.group(1)) >= 2:
            found[int(match.group(1))] = filesystem.join(log_dir, name)
    return sorted(found.items())


def choose_run_dir(log_dir: str, run_name: str, resume: bool, after: int = 0) -> RunChoice:
    """The folder a training logs to (see the module docstring).

    ``after``: numbers up to this one are never chosen for a fresh training (the
    same callback used with another model moves on even from an empty folder).
    """
    siblings = _siblings(log_dir, run_name)
    if resume:
        for number, path in reversed(siblings):
            last = last_logged_step(path)
            if last is not None:
                return RunChoice(path, number, last)
    taken = []
    number = 1
    for number, path in siblings:
        if number <= after:
            continue
        if not holds_summaries(path):  # a fresh training only needs to know, not the last step
            return RunChoice(path, number, None, tuple(taken))
        taken.append(path)
    number = max(number, after) + 1
    return RunChoice(filesystem.join(log_dir, f"{run_name}_{number}"), number, None, tuple(taken))
