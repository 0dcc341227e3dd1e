"""Turn raw YAML/dict data into frozen, typed dataclasses, or fail naming the field.

Why not pydantic: the allowed values of several fields (mixer and activation names, their own
parameters) come from registries that grow at run time, and we want one-line messages of the form
``stages[2].mixer.kernel_size: expected an int, got 'seven'``. This module is small enough to read.

Rules:
- a dataclass is read from a mapping; unknown keys are rejected with the list of known ones;
  missing fields take their default; a field without default is required;
- ``bool`` is never accepted as ``int``/``float``, ints are accepted as floats;
- tuples are read from lists; ``Literal`` lists its allowed values;
- a class with a ``parse(raw, path)`` classmethod parses itself (registry-backed specs);
- a field's ``metadata["check"]`` is a callable returning an error message or None.
"""
from __future__ import annotations

import dataclasses
import functools
import reprlib
import types
import typing
from typing import Any, Literal, Union

from .errors import ConfigError


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a bool", int: "an int", float: "a float", str: "a string", list: "a list",
            dict: "a mapping", tuple: "a list"}.get(type(value), type(value).__name__)


# Bounded repr: a value's full repr can be huge (a YAML alias bomb shares one list 10⁹ times) and
# an error message needs 60 characters of it.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 8, 8, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 60


def describe(value: Any) -> str:
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int of over 4,300 digits refuses str()
        text = f"an int of {value.bit_length()} bits" if isinstance(value, int) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def parse(tp: Any, raw: Any, path: str) -> Any:
    """Parse ``raw`` as type ``tp``; raise ConfigError naming ``path`` on failure."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return raw
    if origin in (Union, types.UnionType):
        return _parse_union(typing.get_args(tp), raw, path)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if raw not in allowed or type(raw) is bool and True not in allowed:
            raise ConfigError(path, f"{describe(raw)} is not one of {', '.join(map(str, allowed))}")
        return raw
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(raw, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {type_name(raw)} {describe(raw)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse(args[0], item, join_path(path, i)) for i, item in enumerate(raw))
        if len(raw) != len(args):
            raise ConfigError(path, f"expected a list of {len(args)} values, got {len(raw)}")
        return tuple(parse(a, item, join_path(path, i)) for i, (a, item) in enumerate(zip(args, raw)))
    if tp is type(None):
        if raw is not None:
            raise ConfigError(path, f"expected null, got {describe(raw)}")
        return None
    if isinstance(tp, type) and hasattr(tp, "parse") and callable(tp.parse):
        return tp.parse(raw, path)
    if dataclasses.is_dataclass(tp):
        return parse_dataclass(tp, raw, path)
    if tp is bool:
        if not isinstance(raw, bool):
            raise ConfigError(path, f"expected true or false, got {type_name(raw)} {describe(raw)}")
        return raw
    if tp is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            if isinstance(raw, float) and raw.is_integer():
                return int(raw)
            raise ConfigError(path, f"expected an int, got {type_name(raw)} {describe(raw)}")
        return raw
    if tp is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ConfigError(path, f"expected a number, got {type_name(raw)} {describe(raw)}")
        return float(raw)
    if tp is dict:
        if not isinstance(raw, dict):
            raise ConfigError(path, f"expected a mapping, got {type_name(raw)} {describe(raw)}")
        return dict(raw)
    if tp is str:
        if not isinstance(raw, str):
            raise ConfigError(path, f"expected a string, got {type_name(raw)} {describe(raw)}")
        return raw
    raise TypeError(f"schema: unsupported type {tp!r} at {path}")  # a bug, not user input


def _parse_union(options: tuple, raw: Any, path: str) -> Any:
    if raw is None and type(None) in options:
        return None
    failures = []
    for option in options:
        if option is type(None):
            continue
        try:
            return parse(option, raw, path)
        except ConfigError as err:
            failures.append((option, err))
    # Report the branch shaped like the input (the list branch for a list, else the others).
    is_list = isinstance(raw, (list, tuple))
    shaped = [err for option, err in failures if (typing.get_origin(option) is tuple) == is_list]
    if len(shaped) == 1:
        raise shaped[0]
    deepest = max((err for _, err in failures), key=lambda e: len(e.path))
    if deepest.path != path or len(failures) == 1:
        raise deepest
    raise ConfigError(path, "; or ".join(err.message for _, err in failures))


def parse_dataclass(cls: type, raw: Any, path: str) -> Any:
    if isinstance(raw, cls):
        return raw
    if not isinstance(raw, dict):
        raise ConfigError(path, f"expected a mapping with keys {', '.join(field_names(cls))}, "
                                f"got {type_name(raw)} {describe(raw)}")
    hints = _type_hints(cls)
    known = field_names(cls)
    for key in raw:
        if key not in known:
            raise ConfigError(join_path(path, str(key)),
                              f"unknown field; allowed: {', '.join(known)}")
    values = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        fpath = join_path(path, field.name)
        if field.name in raw:
            value = parse(hints[field.name], raw[field.name], fpath)
        elif field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            raise ConfigError(fpath, "required field is missing")
        check = field.metadata.get("check")
        if check is not None and value is not None:
            problem = check(value)
            if problem:
                raise ConfigError(fpath, f"{problem}, got {describe(value)}")
        values[field.name] = value
    return cls(**values)


@functools.lru_cache(maxsize=None)
def _type_hints(cls: type) -> dict:
    return typing.get_type_hints(cls)  # evaluating string annotations is slow: once per class


@functools.lru_cache(maxsize=None)
def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


def to_plain(obj: Any) -> Any:
    """Dataclasses/tuples -> dicts/lists for YAML and JSON. Specs may define ``to_plain``."""
    if hasattr(obj, "to_plain") and not isinstance(obj, type):
        return obj.to_plain()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


# Small reusable value checks for ``field(metadata={"check": ...})``.
def positive(value) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value) -> str | None:
    return None if value >= 0 else "must be >= 0"


def probability(value) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


def odd_positive(value) -> str | None:
    return None if value > 0 and value % 2 == 1 else "must be a positive odd int"
