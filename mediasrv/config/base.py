"""What every configuration section shares: the error types, the secret marker, listen
addresses and the naming rules other modules validate against."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class ConfigError(ValueError):
    """A configuration file or value is invalid. The message names the dotted key and
    where its value came from; the command line turns it into exit status 2."""


class Problem(ValueError):
    """A rule broken by configuration values, raised by a section's validator.

    ``key`` is dotted relative to the section that found it (``listen``,
    ``ladder[1].name``); ``because`` names other keys (same base) the rule depends on, so
    the error can say where their values came from too. ``mediasrv.config.sources`` turns
    it into a ``ConfigError``."""

    def __init__(self, key: str, message: str, because: tuple[str, ...] = ()) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message
        self.because = because


@dataclass(frozen=True)
class Secret:
    """Field metadata: the value is key material (a password, a token, an HMAC key) and
    ``mediasrv check-config`` prints it as ``***``. With ``keys=True`` the secrets are
    the keys of a map (``auth.keys``: secret stream key -> public name).

    The JSON Schema marks such a field ``writeOnly`` (it is read by the server, never shown)."""

    keys: bool = False

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict:
        schema = handler(core_schema)
        schema["writeOnly"] = True
        return schema


class Section(BaseModel):
    """Base of every section: immutable, unknown keys refused, numbers finite.

    Numbers given where text is expected are taken as text (a YAML ``app: 123`` or a
    numeric stream key), as they always were."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        coerce_numbers_to_str=True,
        validate_default=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_is_defaults(cls, data: Any) -> Any:
        # ``rtmp:`` with nothing under it is YAML null: the section's defaults.
        return {} if data is None else data


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A parsed ``HOST:PORT`` of a listener."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_LISTEN_RE = re.compile(r"\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([^:\[\]\s]*):(\d{1,5})")


def listen_address(value: str) -> ListenAddress:
    """Parse ``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (all interfaces); ValueError says why."""
    text = str(value).strip()
    match = _LISTEN_RE.fullmatch(text)
    if not match:
        raise ValueError(f"expected HOST:PORT (e.g. 0.0.0.0:1935), got {value!r}")
    host = match.group(1) or match.group(3) or "0.0.0.0"
    port = int(match.group(2) or match.group(4))
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return ListenAddress(host, port)


def parse_listen(value: str, key: str) -> ListenAddress:
    """``listen_address`` for callers outside the config: ConfigError naming ``key``."""
    try:
        return listen_address(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


HANDLE_RULE = "3-32 characters: lowercase letters, digits, '_' or '-', starting with a letter or digit"
HANDLE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{2,31}")

STREAM_NAME_RULE = "1-64 characters: letters, digits, '_', '-', '.', not starting with '.'"
STREAM_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")

GIFT_ID_RE = re.compile(r"[a-z0-9_-]{1,32}")
