"""The config loader under structured fuzzing: real key paths with values of every YAML
type (huge numbers, dates, nested lists, non-text keys) and ``--set`` overrides. The only
allowed outcomes are a ``Config`` or a ``ConfigError`` that names a key; random bytes
(tests/fuzz/targets.py) rarely get past the YAML parser, these do.
"""

from __future__ import annotations

import datetime
import os

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from mediasrv.config import Config, ConfigError, load_config


def _paths(cls, prefix="") -> list[str]:
    out = []
    for name, field in cls.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out += _paths(field.annotation, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}")
    return out


PATHS = _paths(Config)
SECTIONS = sorted({p.split(".")[0] for p in PATHS if "." in p})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(), st.text(max_size=12), st.sampled_from(["", "0", "1e400", "nan", "-1", "yes", "keys", "fmp4",
                                                        "127.0.0.1:0", "[::1]:99999", "ab:cd:ef"]),
    st.dates(), st.datetimes(timezones=st.just(datetime.timezone.utc)), st.binary(max_size=4),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.text(max_size=6), st.integers(-3, 3), st.booleans()),
                                            inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def documents(draw):
    doc: dict = {}
    for path in draw(st.lists(st.sampled_from(PATHS + SECTIONS + ["nope", "rtmp.nope"]), max_size=6)):
        node = doc
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = draw(values)
    if draw(st.booleans()):
        doc[draw(st.integers(-2, 2))] = draw(scalars)
    return doc


overrides = st.lists(
    st.one_of(
        st.builds(lambda k, v: f"{k}={v}", st.sampled_from(PATHS + SECTIONS + ["auth.keys.secret", "a..b", ""]),
                  st.text(max_size=12)),
        st.text(max_size=20),
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), overrides)
def test_any_document_and_overrides_give_a_config_or_a_config_error(tmp_path_factory, doc, sets):
    path = tmp_path_factory.getbasetemp() / "fuzz.yaml"
    path.write_text(yaml.dump(doc, allow_unicode=True), encoding="utf-8")
    try:
        config = load_config(path, sets)
    except ConfigError as error:
        assert str(error)
    else:
        assert isinstance(config, Config)


def test_found_by_fuzzing(tmp_path):
    """Inputs the fuzzers found that escaped as TypeError/OverflowError/UnicodeDecodeError."""
    cases = {
        "1: a\nb: c\n": "1 (from {path}): unknown key",
        "rtmp: {1: 2, a: 3}": "rtmp.1 (from {path}): unknown key",
        "hls: {window: 1" + "0" * 400 + "}": "hls.window (from {path}): Input should be less than or equal to 100",
        "hls: {segment_duration: 1" + "0" * 400 + "}": "hls.segment_duration",
        "hls: {window: 1" + "0" * 5000 + "}": "not valid YAML",
        "[" * 5000 + "]" * 5000: "not valid YAML",
    }
    path = tmp_path / "c.yaml"
    for text, message in cases.items():
        path.write_text(text)
        try:
            load_config(path)
        except ConfigError as error:
            assert message.format(path=path) in str(error), (text[:40], str(error))
        else:
            raise AssertionError(f"{text[:40]!r} was accepted")
    path.write_bytes(b"rtmp:\n  app: \x80\n")
    try:
        load_config(path)
    except ConfigError as error:
        assert "not UTF-8" in str(error)
    else:
        raise AssertionError("non-UTF-8 config accepted")


ENV_NAMES = st.one_of(
    st.sampled_from(["MEDIASRV_" + path.upper().replace(".", "__") for path in PATHS + SECTIONS]
                    + ["MEDIASRV_NOPE__X", "MEDIASRV_AUTH__KEYS__K", "MEDIASRV_TRANSCODE__LADDER__0__NAME",
                       "MEDIASRV_", "MEDIASRV___", "MEDIASRV_HTTP__", "MEDIASRV_ADMIN_PASSWORD"]),
    st.from_regex(r"MEDIASRV_[A-Z_]{0,12}", fullmatch=True),
)
ENV_VALUES = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    st.sampled_from(["[]", "{}", "[1", '{"a": 1}', '[{"name": "x"}]', "null", "1e400", "[" * 3000 + "]" * 3000,
                     '{"listen": "x"}', "true"]),
)


@settings(max_examples=200, deadline=None, database=None)
@given(st.dictionaries(ENV_NAMES, ENV_VALUES, max_size=4))
def test_any_environment_gives_a_config_or_a_config_error(variables):
    """``MEDIASRV_*`` variables of any name and value: a Config or a ConfigError, never
    another exception (hypothesis cannot use monkeypatch: the variables are restored here)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        config = load_config(None, [])
    except ConfigError as error:
        assert str(error)
    else:
        assert isinstance(config, Config)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
