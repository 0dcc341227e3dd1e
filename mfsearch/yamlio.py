"""YAML loading with YAML 1.2 numbers, bounded in time and memory.

- Numbers: PyYAML (YAML 1.1) reads ``1e6`` and ``4.0e6`` as strings; we read them as floats.
- Speed: libyaml's parser when PyYAML has it (4x faster than the pure-Python one, same resolver).
- Config files above ``MAX_FILE_BYTES`` (1 MiB; ours are a few KB) are refused before parsing:
  a 10 MB file took 69 s and 3 GB to parse and reject.
- Aliases: a document whose values, each alias expanded, number more than ``MAX_VALUES`` is
  refused. A 486-byte "billion laughs" (nine aliases of nine aliases ...) expands to 10⁹ values;
  loading it shares them and is quick, but anything that walks or prints the value (an error
  message's repr, ``to_plain``, MLflow params) took 42 s and 3.9 GB. Counting the expansion on the
  node graph, each shared node once, is linear in the file.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

MAX_FILE_BYTES = 1 << 20
MAX_VALUES = 100_000  # our largest YAML holds a few hundred

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


class TooManyValues(yaml.YAMLError):
    """The document expands (aliases included) to more than ``MAX_VALUES`` values."""


def load_yaml(text: str) -> Any:
    """Parse one YAML document; raises ``yaml.YAMLError`` (``TooManyValues`` for alias bombs)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node, {})
        if expanded > MAX_VALUES:
            raise TooManyValues(f"holds {expanded:.3g} values (aliases expanded), more than the {MAX_VALUES:,} "
                                f"a config may hold (a 'billion laughs' alias bomb?)")
        return loader.construct_document(node)
    except RecursionError:  # lists nested ~1000 deep: both the count and PyYAML's constructor recurse
        raise yaml.YAMLError("nested too deeply") from None
    except ValueError as err:  # e.g. an int of over 4,300 digits (Python's int-parsing limit)
        raise yaml.YAMLError(str(err).splitlines()[0][:200]) from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values under ``node`` with every alias expanded; each shared node is counted once (memo)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a node that contains itself (recursive alias): counted once, no infinite loop
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = size
    return size


def load_yaml_file(path: str | Path) -> Any:
    """Read and parse a config file; ``ConfigError`` naming the file when it is too large, not
    UTF-8 text or not valid YAML."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError("", f"{size:,} bytes, more than the {MAX_FILE_BYTES:,} (1 MiB) a config file may "
                              f"have; is this the right file?", str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("", "not UTF-8 text (is this the right file?)", str(path)) from None
    try:
        return load_yaml(text)
    except TooManyValues as err:
        raise ConfigError("", str(err), str(path)) from None
    except yaml.YAMLError as err:
        raise ConfigError("", f"not valid YAML: {err}".replace("\n", " "), str(path)) from None
