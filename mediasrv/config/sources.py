"""Where configuration values come from, layered, and errors that say which one.

Precedence, highest first: ``--set KEY=VALUE``, ``MEDIASRV_SECTION__KEY`` environment
variables, the YAML file, the defaults. Each source becomes a raw mapping; they are merged
(maps merge key by key, anything else is replaced whole) and validated once by
``Config``. A ``ConfigError`` names the dotted key and the source of its value:
``http.listen (from MEDIASRV_HTTP__LISTEN): expected HOST:PORT ...``.
"""

from __future__ import annotations

import json
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import EnvSettingsSource, SettingsError

from mediasrv.config.base import ConfigError, Problem, Secret
from mediasrv.config.model import Config

#: A dotted key as a path: ("transcode", "ladder", 0, "height").
Key = tuple[str | int, ...]

ENV_PREFIX = Config.model_config["env_prefix"]
ENV_DELIMITER = Config.model_config["env_nested_delimiter"]
SET = "--set"


@dataclass(frozen=True)
class Layer:
    """One source's raw mapping and how to name the origin of a value in it."""

    data: dict
    origin: Callable[[Key], str]


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> Config:
    """Defaults, then ``path`` (YAML; None: none), then ``MEDIASRV_*`` variables, then the
    ``KEY=VALUE`` overrides; validated. Raises ConfigError naming the key and its source."""
    layers = []
    if path is not None:
        layers.append(Layer(read_yaml(path), lambda _, label=str(path): f"from {label}"))
    layers.append(Layer(read_environment(), lambda key: f"from {_env_name(key)}"))
    data: dict = {}
    for item in overrides:
        apply_override(data, item)
    layers.append(Layer(data, lambda _: f"from {SET}"))
    return _validate(layers)


def build_config(data: dict) -> Config:
    """Validate one raw mapping (what a YAML file holds) over the defaults; the
    environment is not read."""
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping, got {type(data).__name__}")
    return _validate([Layer(data, lambda _: "from the given mapping")])


def read_yaml(path: str | os.PathLike) -> dict:
    """The YAML file as a mapping with text keys; ConfigError if it cannot be one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except ValueError as exc:  # PyYAML's int() of an over-long number (found by tests/fuzz)
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:  # found by tests/fuzz: PyYAML recurses per nesting level
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    try:
        return _text_keys(loaded)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None


def _text_keys(value: Any) -> Any:
    # YAML keys may be numbers, booleans or dates (found by tests/fuzz); as text they are
    # either unknown keys, named in the error, or map keys (a numeric stream key).
    if isinstance(value, dict):
        return {str(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text_keys(v) for v in value]
    return value


def read_environment() -> dict:
    """The ``MEDIASRV_SECTION__KEY`` variables as a raw mapping (``MEDIASRV_DATA_DIR`` for
    the top-level key; maps and lists as JSON), read by pydantic-settings' environment
    source as ``Config.model_config`` describes.

    A variable with ``__`` that names no key is an error, like an unknown key in the file.
    Variables without ``__`` that name no key (``MEDIASRV_ADMIN_PASSWORD``,
    ``MEDIASRV_FUZZ_EXAMPLES``) belong to something else and are left alone."""
    for name, value in os.environ.items():
        parts = _env_parts(name)
        if parts is not None:
            _check_variable(name, value, parts)
    try:
        return EnvSettingsSource(Config)()
    except SettingsError as exc:  # what _check_variable did not foresee
        raise ConfigError(f"environment: {exc}") from None


def _check_variable(name: str, value: str, parts: list[str]) -> None:
    """What pydantic-settings would ignore or report without naming the variable: an
    unknown section, a variable below a map or list, JSON that does not parse."""
    key = tuple(parts)
    if parts[0] not in Config.model_fields:
        if len(parts) > 1:
            raise ConfigError(f"{_dotted(key)} (from {name}): unknown key "
                              f"(known here: {', '.join(Config.model_fields)})")
        return
    for depth in range(1, len(parts)):
        container = typing.get_origin(field_type(key[:depth]))
        if container in (dict, tuple, list):
            # Names lose their case (a stream key would not) and cannot index a list.
            whole = ENV_PREFIX + ENV_DELIMITER.join(parts[:depth]).upper()
            raise ConfigError(f"{_dotted(key[:depth])} (from {name}): give the whole "
                              f"{'map' if container is dict else 'list'} as JSON in {whole}")
    if _is_complex(field_type(key)):
        try:
            json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"{_dotted(key)} (from {name}): not valid JSON ({exc}); give maps and "
                              'lists as JSON, e.g. {"KEY": "VALUE"} or ["A", "B"]') from None


def _env_parts(name: str) -> list[str] | None:
    if not name.upper().startswith(ENV_PREFIX.upper()):
        return None
    return name[len(ENV_PREFIX):].lower().split(ENV_DELIMITER)


def _env_name(key: Key) -> str:
    """The variable that set ``key``: the longest ``MEDIASRV_A__B`` that exists, else one
    below it (a value nested deeper than the key)."""
    names = {name.upper(): name for name in os.environ}
    parts = []
    for part in key:
        if not isinstance(part, str):
            break
        parts.append(part)
    for size in range(len(parts), 0, -1):
        candidate = (ENV_PREFIX + ENV_DELIMITER.join(parts[:size])).upper()
        if candidate in names:
            return names[candidate]
    below = (ENV_PREFIX + ENV_DELIMITER.join(parts) + ENV_DELIMITER).upper()
    return next((names[n] for n in sorted(names) if n.startswith(below)), "the environment")


def apply_override(data: dict, item: str) -> None:
    """Apply one ``dotted.key=value`` to the raw mapping ``data``.

    ``auth.keys.SECRET=alice`` adds an entry to a map; a list of text takes
    comma-separated items (``webhooks.urls=URL1,URL2``); a map, list or section may be
    given whole as JSON. Anything else stays text, typed by its field at validation."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{SET} {item!r}: expected KEY=VALUE")
    parts = key.split(".")
    if any(not part for part in parts):
        raise ConfigError(f"{SET} {item!r}: empty part in key {key!r}")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[:depth + 1])} (from {SET}): is a value, not a section")
        node = child
    node[parts[-1]] = _override_value(tuple(parts), value)


def _override_value(key: Key, text: str) -> Any:
    hint = field_type(key)
    if _is_complex(hint) and text.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"{_dotted(key)} (from {SET}): not valid JSON ({exc or 'nested too deeply'})") from None
    if typing.get_origin(hint) is tuple and _bare(typing.get_args(hint)[0]) is str:
        # --set webhooks.urls=URL1,URL2 (an empty value is the empty list).
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def field_type(key: Key) -> Any:
    """The declared type at a dotted path of ``Config`` (a map's value type below a map,
    the item type below a list); None where no key is declared."""
    hint: Any = Config
    for part in key:
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            field = hint.model_fields.get(str(part))
            if field is None:
                return None
            hint = field.annotation
        elif typing.get_origin(hint) is dict:
            hint = typing.get_args(hint)[1]
        elif typing.get_origin(hint) in (tuple, list):
            hint = typing.get_args(hint)[0]
        else:
            return None
        hint = _bare(hint)
    return hint


def _bare(hint: Any) -> Any:
    """``Annotated[T, ...]`` -> ``T``."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint


def _is_complex(hint: Any) -> bool:
    return (isinstance(hint, type) and issubclass(hint, BaseModel)) or typing.get_origin(hint) in (dict, tuple, list)


def _merge(low: dict, high: dict) -> dict:
    out = dict(low)
    for key, value in high.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _validate(layers: list[Layer]) -> Config:
    merged: dict = {}
    for layer in layers:
        merged = _merge(merged, layer.data)
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, layers)) from None
    except RecursionError:
        raise ConfigError("config: nested too deeply") from None


#: Errors listed in one ConfigError; the rest are counted.
MAX_LISTED = 10


def _explain(error: ValidationError, layers: list[Layer]) -> str:
    lines = []
    for item in error.errors():
        key: Key = tuple(item["loc"])
        cause = (item.get("ctx") or {}).get("error")
        related: tuple[Key, ...] = ()
        if isinstance(cause, Problem):
            related = tuple(key + _split(other) for other in cause.because)
            key, message = key + _split(cause.key), cause.message
        elif isinstance(cause, Exception):
            message = str(cause)
        elif item["type"] == "extra_forbidden":
            known = field_type(key[:-1])
            names = ", ".join(known.model_fields) if isinstance(known, type) and issubclass(known, BaseModel) else ""
            message = f"unknown key (known here: {names})"
        elif item["type"] == "string_pattern_mismatch":
            message = f"{_shown(item['input'], key)} does not match {item['ctx']['pattern']}"
        else:
            message = item["msg"] + _got(item["input"], key)
        also = [f"{_dotted(other)} {_origin(other, layers)}" for other in related
                if _origin(other, layers) != "default"]
        origin = _origin(key, layers)
        lines.append(f"{_dotted(key)} ({origin}): {message}" + (f" ({'; '.join(also)})" if also else ""))
    if len(lines) > MAX_LISTED:
        lines[MAX_LISTED:] = [f"... and {len(lines) - MAX_LISTED} more"]
    return "\n".join(lines)


def _origin(key: Key, layers: list[Layer]) -> str:
    """Where the value at ``key`` came from: the highest layer holding it, else the default."""
    for layer in reversed(layers):
        if _holds(layer.data, key):
            return layer.origin(key)
    return "default"


def _holds(data: Any, key: Key) -> bool:
    for part in key:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False
    return True


def _split(dotted: str) -> Key:
    """``ladder[1].name`` -> ("ladder", 1, "name")."""
    out: list[str | int] = []
    for part in dotted.split("."):
        name, *indexes = part.split("[")
        out.append(name)
        out += [int(index.rstrip("]")) for index in indexes]
    return tuple(out)


def _dotted(key: Key) -> str:
    """("transcode", "ladder", 0, "height") -> ``transcode.ladder[0].height``; a secret
    map key (``auth.keys``) is shown as ``<key>``."""
    text = ""
    for depth, part in enumerate(key):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            shown = "<key>" if _is_secret_map(key[:depth]) else part
            text += f".{shown}" if text else shown
    return text or "config"


def _is_secret_map(key: Key) -> bool:
    return any(isinstance(m, Secret) and m.keys for m in _metadata(key))


def _is_secret(key: Key) -> bool:
    # The values of a map whose keys are the secrets (auth.keys: public names) are not.
    return any(isinstance(m, Secret) and not m.keys for depth in range(len(key)) for m in _metadata(key[:depth + 1]))


def _metadata(key: Key) -> list:
    if not key:
        return []
    parent = field_type(key[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        field = parent.model_fields.get(str(key[-1]))
        return list(field.metadata) if field is not None else []
    return []


def _shown(value: Any, key: Key) -> str:
    if _is_secret(key):
        return "the value"
    try:
        text = repr(value)
    except ValueError:  # an int beyond str()'s digit limit
        return "the value"
    return text if len(text) <= 60 else text[:57] + "..."


def _got(value: Any, key: Key) -> str:
    if isinstance(value, (dict, list, tuple)):
        return f", got a {'mapping' if isinstance(value, dict) else 'list'}"
    return f", got {_shown(value, key)}"
