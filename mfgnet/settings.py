"""Validated settings: the one style every mfgnet config follows.

A config is a dataclass deriving from [`Settings`][mfgnet.settings.Settings] whose fields
declare their allowed values in their metadata ([`choice`][mfgnet.settings.choice],
[`number`][mfgnet.settings.number], [`numbers`][mfgnet.settings.numbers], [`flag`][mfgnet.settings.flag],
[`path`][mfgnet.settings.path]).  Construction validates every field (also nested settings
given as dicts), so a bad value raises
[`ProblemError`][mfgnet.problems.validation.ProblemError] naming the field and its allowed
range, whether it came from Python, a Hydra override or a YAML preset:

    >>> GridSolverConfig(cells=4)
    ProblemError: solver.cells must be an integer in [8, 1000000] (grid too coarse), got 4

Floats are always finite: NaN and ±inf are rejected in every float field.  This module
imports neither torch nor numpy, so configs can be composed and checked without them.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any

from mfgnet.problems.validation import ProblemError

__all__ = ["Settings", "choice", "flag", "number", "numbers", "path", "text"]


def choice(default: str, *others: str, doc: str = "") -> Any:
    """A string field that takes ``default`` or one of ``others``."""
    return dataclasses.field(default=default, metadata={"choices": (default, *others), "doc": doc})


def number(default: float | int | None, lo: float, hi: float = math.inf, *, integer: bool = False,
           lo_open: bool = False, hi_open: bool = False, optional: bool = False, hint: str = "",
           doc: str = "") -> Any:
    """A numeric field in [lo, hi].

    Parameters
    ----------
    default : float or int or None
        The default value.
    lo : float
        The lower end.
    hi : float
        The upper end (default unbounded).
    integer : bool
        Only integers are allowed.
    lo_open : bool
        Exclude ``lo``.
    hi_open : bool
        Exclude ``hi``.
    optional : bool
        Also allow None.
    hint : str
        A reason shown with the range in error messages (e.g. "grid too coarse below 8").
    doc : str
        One line for ``--help``.

    Returns
    -------
    dataclasses.Field
        The field, to be assigned in a ``Settings`` dataclass body.
    """
    meta = {"range": (lo, hi), "integer": integer, "lo_open": lo_open, "hi_open": hi_open, "optional": optional,
            "hint": hint, "doc": doc}
    return dataclasses.field(default=default, metadata=meta)


def numbers(default: list[float] | None, lo: float, hi: float = math.inf, *, lo_open: bool = False,
            hi_open: bool = False, optional: bool = False, doc: str = "") -> Any:
    """A list of numbers, each in [lo, hi] (the bounds as in :func:`number`); ``optional``: also None."""
    meta = {"each": {"range": (lo, hi), "integer": False, "lo_open": lo_open, "hi_open": hi_open},
            "optional": optional, "doc": doc}
    return dataclasses.field(default_factory=lambda: None if default is None else list(default), metadata=meta)


def flag(default: bool | None, doc: str = "", *, optional: bool = False) -> Any:
    """A true/false field; ``optional``: also None (a default that the code decides per problem)."""
    return dataclasses.field(default=default, metadata={"flag": True, "optional": optional, "doc": doc})


def path(default: str | None = None, doc: str = "") -> Any:
    """A filesystem path (str) or None."""
    return dataclasses.field(default=default, metadata={"path": True, "doc": doc})


def text(default: str | None = None, doc: str = "") -> Any:
    """Free text (a name, a Hydra interpolation) or None."""
    return dataclasses.field(default=default, metadata={"text": True, "doc": doc})


class Settings:
    """Base of every config dataclass: validation on construction, dict round trips.

    Subclasses set ``section`` (the prefix of their fields in messages, e.g. ``"solver"``)
    and are ``@dataclass`` (frozen or not).  Nested settings are fields whose type is
    another Settings dataclass (with its own ``section``); they may be given as mappings.
    """

    section: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = hints[f.name]
            where = f"{self.section}.{f.name}" if self.section else f.name
            if isinstance(kind, type) and issubclass(kind, Settings):
                value = _nested(kind, value, where)
            else:
                value = check_field(where, f, value)
            object.__setattr__(self, f.name, value)  # also for frozen dataclasses

    @classmethod
    def from_dict(cls, data: Mapping | None = None):
        """Build from a (nested) mapping such as a Hydra node; unknown keys are errors."""
        data = dict(data or {})
        where = cls.section
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            prefix = f"{where}." if where else ""
            raise ProblemError(f"unknown setting(s) {[prefix + k for k in unknown]}; "
                               f"allowed: {sorted(prefix + n for n in names)}")
        return cls(**data)

    def to_dict(self) -> dict:
        """Plain nested dict of every field."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def replace(self, **overrides: Any):
        """A validated copy with ``overrides``; nested fields as ``"optim.lr"`` keys,
        ``optim__lr`` keywords or partial dicts (``optim={"lr": 1e-3}``)."""
        base = self.to_dict()
        for key, value in overrides.items():
            parts = key.replace("__", ".").split(".")
            node = base
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ProblemError(f"unknown setting {self.section}.{key}")
                node = node[part]
            if isinstance(value, Mapping) and isinstance(node.get(parts[-1]), dict):
                node[parts[-1]] = {**node[parts[-1]], **value}
            else:
                node[parts[-1]] = value
        return type(self).from_dict(base)


def _nested(kind: type, value: Any, where: str) -> Settings:
    if isinstance(value, kind):
        return value
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return kind.from_dict(dict(value.items()))
    raise ProblemError(f"{where} must be a mapping of its fields, got {value!r}")


def check_field(where: str, f: dataclasses.Field, value: Any) -> Any:
    """``value`` validated against the field's metadata (returns it, floats as float)."""
    meta = f.metadata
    if "choices" in meta:
        if value not in meta["choices"]:
            raise ProblemError(f"{where} must be one of {list(meta['choices'])}, got {value!r}")
        return value
    if "range" in meta:
        return _check_number(where, meta, value)
    if "each" in meta:
        if value is None and meta.get("optional"):
            return None
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise ProblemError(f"{where} must be a list of numbers in {describe_range(meta['each'])}"
                               f"{' or null' if meta.get('optional') else ''}, got {value!r}")
        return [_check_number(f"{where}[{i}]", meta["each"], item) for i, item in enumerate(value)]
    if meta.get("flag"):
        if value is None and meta.get("optional"):
            return None
        if not isinstance(value, bool):
            raise ProblemError(f"{where} must be true or false{' or null' if meta.get('optional') else ''}, "
                               f"got {value!r}")
        return value
    if meta.get("path"):
        if value is None or isinstance(value, str):
            return value
        if hasattr(value, "__fspath__"):
            return str(value)
        raise ProblemError(f"{where} must be a path or null, got {value!r}")
    if meta.get("text"):
        if value is not None and not isinstance(value, str):
            raise ProblemError(f"{where} must be a string or null, got {value!r}")
        return value
    return value  # containers (lists, dicts) are checked by their users


def _check_number(where: str, meta: dict, value: Any) -> Any:
    if value is None and meta.get("optional"):
        return None
    integer = meta.get("integer", False)
    allowed = describe_range(meta)
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        kind = "an integer" if integer else "a finite number"
        raise ProblemError(f"{where} must be {kind} in {allowed}, got {value!r}")
    lo, hi = meta["range"]
    below = value <= lo if meta.get("lo_open") else value < lo
    above = value >= hi if meta.get("hi_open") else value > hi
    if not math.isfinite(value) or below or above:
        hint = f" ({meta['hint']})" if meta.get("hint") else ""
        raise ProblemError(f"{where} must be {'an integer' if integer else 'a finite number'} in "
                           f"{allowed}{hint}, got {value!r}")
    return int(value) if integer else float(value)


def describe_range(meta: dict) -> str:
    """``[lo, hi]`` / ``(lo, inf)`` text of a number field's metadata."""
    lo, hi = meta["range"]
    left = "(" if meta.get("lo_open") else "["
    right = ")" if hi == math.inf or meta.get("hi_open") else "]"
    text_ = f"{left}{lo}, {hi}{right}"
    return text_ + (" or null" if meta.get("optional") else "")
