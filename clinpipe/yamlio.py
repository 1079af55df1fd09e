"""YAML loading that remembers where each key came from, for errors that name a line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from clinpipe.errors import ConfigError


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader that records the line of every mapping key in a side table; on libyaml's
    parser where PyYAML has it (the pure-Python one took ~1 s of every build's specs)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False):
    mapping = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise ConfigError(f"duplicate key {key!r}", file=loader.name,
                              record=f"line {key_node.start_mark.line + 1}",
                              hint="remove one of the two entries")
        mapping[key] = loader.construct_object(value_node, deep=deep)
        loader.lines[(id(mapping), key)] = key_node.start_mark.line + 1
    loader.maps.append(mapping)
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _construct_timestamp(loader: _LineLoader, node: yaml.ScalarNode):
    """A date-shaped value that is no calendar date (2025-13-45) names its line, not a traceback."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise ConfigError(f"{node.value!r} is not a valid date ({exc})", file=loader.name,
                          record=f"line {node.start_mark.line + 1}",
                          hint="write the date as YYYY-MM-DD with a real month and day") from None


_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


class LoadedYaml:
    """Parsed YAML plus a way to find the line of a key path such as ('forms', 'AE', 'fields', 3)."""

    def __init__(self, path: Path, data: Any, lines: dict):
        self.path = path
        self.data = data
        self._lines = lines

    def line_of(self, loc: tuple) -> int | None:
        node, line = self.data, None
        for part in loc:
            if isinstance(node, dict) and part in node:
                line = self._lines.get((id(node), part), line)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, dict) and node:
                    first = next(iter(node))
                    line = self._lines.get((id(node), first), line)
            else:
                break
        return line


def load_yaml(path: str | Path) -> LoadedYaml:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("file not found", file=path, hint="check the study name and the mappings folder")
    text = path.read_text(encoding="utf-8")
    loader = _LineLoader(text)
    loader.name = str(path)
    loader.lines = {}
    loader.maps = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML ({getattr(exc, 'problem', exc)})", file=path,
                          record=f"line {mark.line + 1}" if mark else None,
                          hint="fix the YAML syntax") from None
    finally:
        loader.dispose()
    return LoadedYaml(path, data, loader.lines)


def validation_error(loaded: LoadedYaml, exc) -> ConfigError:
    """Turn a pydantic ValidationError into a ConfigError naming file, line, key and reason."""
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    line = loaded.line_of(loc)
    key = ".".join(str(p) for p in loc) or "(top level)"
    reason = err["msg"]
    if err["type"] == "extra_forbidden":
        reason = "unknown key"
    more = len(exc.errors()) - 1
    hint = "correct the value" + (f" ({more} more problem(s) after this one)" if more else "")
    return ConfigError(reason, file=loaded.path, record=f"line {line}" if line else None,
                       field=key, hint=hint)
