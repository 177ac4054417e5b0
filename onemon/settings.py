"""TOML configuration into frozen dataclasses: defaults in code, every error reported at once."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """One or more configuration errors, each naming its key."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclasses.dataclass(frozen=True)
class Loaded(typing.Generic[T]):
    """A loaded configuration and the warnings (unknown keys) met on the way."""

    config: T
    warnings: list[str]


def load_file(cls: type[T], path: Path) -> Loaded[T]:
    """Read a TOML file into ``cls``; a missing file is an error naming it."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError([f"{path}: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    return load(cls, data)


def load(cls: type[T], data: dict[str, Any]) -> Loaded[T]:
    """Build ``cls`` from a TOML table; raises :class:`ConfigError` listing every bad key."""
    errors: list[str] = []
    warnings: list[str] = []
    config = _build(cls, data, "", errors, warnings)
    if errors:
        raise ConfigError(errors)
    return Loaded(config, warnings)


def _build(cls: Any, data: Any, prefix: str, errors: list[str], warnings: list[str]) -> Any:
    if not isinstance(data, dict):
        errors.append(f"{prefix.rstrip('.') or 'config'}: expected a table")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            warnings.append(f"{prefix}{key}: unknown key, ignored")
    values: dict[str, Any] = {}
    for name in fields:
        if name in data:
            values[name] = _convert(hints[name], data[name], prefix + name, errors, warnings)
    try:
        result = cls(**values)
    except (TypeError, ValueError) as exc:
        errors.append(f"{prefix.rstrip('.') or 'config'}: {exc}")
        return None
    if hasattr(result, "validate"):
        try:
            problems = result.validate()
        except (TypeError, ValueError):
            problems = []  # a value of the wrong type, already reported above
        errors.extend(f"{prefix}{problem}" for problem in problems)
    return result


def _convert(hint: Any, value: Any, key: str, errors: list[str], warnings: list[str]) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".", errors, warnings)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, key, errors, warnings)
    if origin is Literal:
        if value not in args:
            errors.append(f"{key}: must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            errors.append(f"{key}: expected a list, got {type(value).__name__}")
            return value
        item = args[0] if args else Any
        items = [_convert(item, v, f"{key}[{i}]", errors, warnings) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Path:
        if not isinstance(value, str):
            errors.append(f"{key}: expected a path string, got {type(value).__name__}")
        return Path(str(value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{key}: expected a number, got {value!r}")
        return float(value) if isinstance(value, int | float) else value
    if hint is bool or hint is int or hint is str:
        if type(value) is not hint:
            errors.append(f"{key}: expected {hint.__name__}, got {value!r}")
        return value
    return value


def load_or_default(cls: type[T], path: Path | None, default_path: Path) -> Loaded[T]:
    """``path`` if given, else ``default_path`` if it exists, else the built-in defaults."""
    if path is None:
        if not default_path.exists():
            return load(cls, {})
        path = default_path
    return load_file(cls, path)
