"""Name -> building block registries, and the spec type that picks one from config.

A registered class carries a ``Params`` dataclass (its own config fields, with defaults). A
``Spec`` pairs a registered name with parsed params; in YAML it is written either as the bare name
(``sepconv``) or as a mapping (``{name: sepconv, kernel_size: 5}``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Generic, TypeVar

from ..errors import ConfigError
from ..schema import describe, join_path, parse_dataclass, to_plain

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class NoParams:
    """For blocks that take no parameters."""


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        def add(cls: type) -> type:
            if name in self._entries:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            if not dataclasses.is_dataclass(getattr(cls, "Params", None)):
                raise TypeError(f"{self.kind} {name!r}: class needs a `Params` dataclass")
            cls.registered_name = name
            self._entries[name] = cls
            return cls
        return add

    def get(self, name: str) -> type:
        return self._entries[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


@dataclasses.dataclass(frozen=True)
class Spec:
    """A registered block chosen by name, with its parsed parameters."""

    name: str
    params: Any

    registry_: ClassVar[Registry] = None  # class attribute, set by each subclass (not a dataclass field)

    @classmethod
    def parse(cls, raw: Any, path: str) -> "Spec":
        registry = cls.registry_
        if isinstance(raw, cls):
            return raw
        if isinstance(raw, str):
            name, fields = raw, {}
        elif isinstance(raw, dict):
            if "name" not in raw:
                raise ConfigError(join_path(path, "name"),
                                  f"required; one of {', '.join(registry.names())}")
            name, fields = raw["name"], {k: v for k, v in raw.items() if k != "name"}
        else:
            raise ConfigError(path, f"expected a {registry.kind} name ({', '.join(registry.names())}) "
                                    f"or a mapping with `name`, got {describe(raw)}")
        if name not in registry:
            where = join_path(path, "name") if isinstance(raw, dict) else path
            raise ConfigError(where, f"{describe(name)} is not one of {', '.join(registry.names())}")
        params = parse_dataclass(registry.get(name).Params, fields, path)
        return cls(name, params)

    @property
    def cls(self) -> type:
        return self.registry_.get(self.name)

    def to_plain(self) -> Any:
        fields = to_plain(self.params)
        defaults = to_plain(self.cls.Params())
        changed = {k: v for k, v in fields.items() if defaults.get(k) != v}
        return {"name": self.name, **changed} if changed else self.name

    def __str__(self) -> str:
        plain = self.to_plain()
        if isinstance(plain, str):
            return plain
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in plain.items() if k != "name") + ")"
