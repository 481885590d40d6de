"""Configuration: the documented file, overrides, and errors that name the key."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema_rs
import pytest
import yaml
from pydantic import BaseModel, ValidationError

from mediasrv.cli import startup_banner
from mediasrv.config import (
    Config,
    ConfigError,
    RungConfig,
    Secret,
    build_config,
    config_schema,
    load_config,
    redacted,
    replace,
    schema_text,
)

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = ROOT / "config" / "mediasrv.yaml"


def _leaf_keys(obj, prefix=""):
    for name in type(obj).model_fields:
        value = getattr(obj, name)
        if isinstance(value, BaseModel):
            yield from _leaf_keys(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def _flatten(mapping, prefix=""):
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_documented_file_lists_every_key_with_its_default():
    raw = yaml.safe_load(DOCUMENTED.read_text())
    assert sorted(_flatten(raw)) == sorted(_leaf_keys(Config()))
    assert load_config(DOCUMENTED) == Config()


def test_every_documented_key_has_a_comment():
    lines = DOCUMENTED.read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "- ")) or stripped.endswith(":"):
            continue
        above = lines[index - 1].strip()
        assert above.startswith("#"), (
            f"line {index + 1} ({stripped}) has no comment above it"
        )


def test_overrides_set_values_and_add_map_entries():
    config = load_config(None, ["rtmp.listen=127.0.0.1:19350", "auth.mode=keys", "auth.keys.SECRET=alice",
                                "auth.keys.other=bob", "hls.low_latency=false", "hls.window=9"])
    assert (config.rtmp.address.host, config.rtmp.address.port) == ("127.0.0.1", 19350)
    assert config.auth.keys == {"SECRET": "alice", "other": "bob"}
    assert config.hls.low_latency is False and config.hls.window == 9


@pytest.mark.parametrize(
    "override, key",
    [
        ("rtmp.listen=nohost", "rtmp.listen"),
        ("rtmp.listen=1.2.3.4:99999", "rtmp.listen"),
        ("hls.window=lots", "hls.window"),
        ("hls.window=1", "hls.window"),
        ("hls.format=avi", "hls.format"),
        ("hls.low_latency=maybe", "hls.low_latency"),
        ("hls.enabled=maybe", "hls.enabled"),
        ("rtmp.nope=1", "rtmp.nope"),
        ("auth.mode=webhook", "auth.webhook.url"),
        ("auth.mode=keys", "auth.keys"),
        ("auth.keys.k=../etc", "auth.keys"),
        ("rtmp.app=a/b", "rtmp.app"),
        ("rtmp.listen.port=1", "rtmp.listen"),
    ],
)
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert str(info.value).startswith(key), str(info.value)


def test_hls_off_only_where_nothing_needs_it():
    # The transcoder's rungs and the cluster's edges consume HLS: turning it off under
    # them is refused, naming the key.
    with pytest.raises(ConfigError, match=r"^hls\.enabled \(from --set\): false needs transcode\.enabled: false"):
        load_config(None, ["hls.enabled=false"])
    with pytest.raises(ConfigError, match=r"^hls\.enabled \(from --set\): false needs cluster\.redis_url empty"):
        load_config(None, ["hls.enabled=false", "transcode.enabled=false", "cluster.redis_url=redis://127.0.0.1:6379/0"])
    config = load_config(None, ["hls.enabled=false", "transcode.enabled=false"])
    assert config.hls.enabled is False
    assert load_config(None, []).hls.enabled is True


def test_ladder_rungs_are_validated():
    with pytest.raises(ConfigError, match=r"^transcode.ladder\[0\].height"):
        build_config({"transcode": {"ladder": [{"name": "x", "height": 719}]}})
    with pytest.raises(ConfigError, match=r"^transcode.ladder\[1\].name"):
        build_config({"transcode": {"ladder": [{"name": "a"}, {"name": "a"}]}})
    with pytest.raises(ConfigError, match=r"^transcode.ladder\[0\].preset"):
        build_config({"transcode": {"ladder": [{"name": "a", "preset": "turbo"}]}})
    with pytest.raises(ConfigError, match=r"^transcode\.ladder \(from the given mapping\): Input should be a valid tuple"):
        build_config({"transcode": {"ladder": "720p"}})
    config = build_config({"transcode": {"ladder": [{"name": "240p", "height": 240}]}})
    assert [r.name for r in config.transcode.ladder] == ["240p"]


def test_bad_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("rtmp: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level"):
        load_config(path)
    path.write_text("hls:\n  window: 'x'\n")
    with pytest.raises(ConfigError, match="^hls.window"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_typed_yaml_values_are_not_coerced_silently():
    with pytest.raises(ConfigError, match="^hls.low_latency"):
        build_config({"hls": {"low_latency": "yes please"}})
    with pytest.raises(ConfigError, match="^rtmp.max_connections"):
        build_config({"rtmp": {"max_connections": 1.5}})


def test_cli_exits_2_with_the_key_named():
    result = subprocess.run(
        [sys.executable, "-m", "mediasrv.cli", "serve", "--set", "rtmp.listen=bogus"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "rtmp.listen" in result.stderr


def test_banner_tells_a_creator_what_to_type():
    config = load_config(None, ["rtmp.listen=127.0.0.1:1935", "http.listen=127.0.0.1:8080"])
    text = startup_banner(config, 8080, 1935)
    assert "rtmp://127.0.0.1:1935/live" in text
    assert "http://127.0.0.1:8080/live/<name>/index.m3u8" in text
    assert "Stream Key" in text
    assert "http://127.0.0.1:8080/whip, Bearer Token: the same stream key" in text
    assert "/whip" not in startup_banner(load_config(None, ["webrtc.enabled=false"]), 8080, 1935)


def test_banner_tells_a_creator_the_keyframe_interval_to_set():
    config = load_config(None, ["hls.segment_duration=3"])
    assert "Keyframe Interval: 3 s" in startup_banner(config, 8080, 1935)


def test_banner_in_accounts_mode_points_to_the_studio_and_the_channel_page():
    """Issue 16, item 9: the key is in the studio (no API call to make by hand), viewers
    watch at /watch/<handle>, and the encoder line carries a key, not a stream name."""
    text = startup_banner(load_config(None, ["auth.mode=accounts", "http.public_url=https://tv.example"]), 8080, 1935)
    assert "Studio: https://tv.example/studio" in text
    assert "Page:   https://tv.example/watch/<handle>" in text
    assert "Watch:  https://tv.example/live/<handle>/index.m3u8" in text
    assert "/api/me/stream-key" not in text
    ffmpeg = next(line for line in text.splitlines() if "ffmpeg" in line)
    assert ffmpeg.endswith("/live/<your stream key>"), ffmpeg
    open_mode = startup_banner(load_config(None, []), 8080, 1935)
    assert "/studio" not in open_mode and "Page:   http://localhost:8080/watch/<name>" in open_mode
    assert next(line for line in open_mode.splitlines() if "ffmpeg" in line).endswith("/live/mystream")


# --- sources: defaults < YAML file < MEDIASRV_* variables < --set --------------------------


def test_each_source_overrides_the_ones_below_it(tmp_path, monkeypatch):
    path = tmp_path / "mediasrv.yaml"
    path.write_text("hls:\n  window: 7\n  segment_duration: 4\n  part_duration: 0.5\n")
    monkeypatch.setenv("MEDIASRV_HLS__WINDOW", "8")
    monkeypatch.setenv("MEDIASRV_HLS__SEGMENT_DURATION", "3")
    config = load_config(path, ["hls.window=9"])
    assert config.hls.window == 9  # --set beats the variable and the file
    assert config.hls.segment_duration == 3.0  # the variable beats the file
    assert config.hls.part_duration == 0.5  # the file beats the default
    assert config.hls.keep_after_end == Config().hls.keep_after_end == 300.0  # the default


def test_environment_variables_configure_nested_keys_and_the_top_level(monkeypatch):
    monkeypatch.setenv("MEDIASRV_HTTP__LISTEN", "0.0.0.0:9000")
    monkeypatch.setenv("MEDIASRV_AUTH__MODE", "accounts")
    monkeypatch.setenv("MEDIASRV_AUTH__WEBHOOK__TIMEOUT", "2.5")  # deeper with more __
    monkeypatch.setenv("mediasrv_hls__low_latency", "false")  # names are case-insensitive
    monkeypatch.setenv("MEDIASRV_DATA_DIR", "/srv/mediasrv")
    config = load_config()
    assert config.http.address.port == 9000 and config.http.listen == "0.0.0.0:9000"
    assert config.auth.mode == "accounts" and config.auth.webhook.timeout == 2.5
    assert config.hls.low_latency is False
    assert config.data_path == Path("/srv/mediasrv")


def test_environment_maps_and_lists_are_json_and_maps_merge_across_sources(tmp_path, monkeypatch):
    path = tmp_path / "mediasrv.yaml"
    path.write_text("auth:\n  mode: keys\n  keys: {FromFile: alice}\n")
    monkeypatch.setenv("MEDIASRV_AUTH__KEYS", '{"FromEnv": "bob"}')
    monkeypatch.setenv("MEDIASRV_WEBHOOKS__URLS", '["http://a.example/hook", "https://b.example/hook"]')
    monkeypatch.setenv("MEDIASRV_WEBHOOKS__SECRET", "s3cret")
    monkeypatch.setenv("MEDIASRV_TRANSCODE__LADDER", '[{"name": "240p", "height": 240}]')
    monkeypatch.setenv("MEDIASRV_HTTP", '{"public_url": "https://live.example"}')  # a whole section
    config = load_config(path, ["auth.keys.FromSet=carol"])
    # The case of a stream key survives (JSON, not the variable's name).
    assert config.auth.keys == {"FromFile": "alice", "FromEnv": "bob", "FromSet": "carol"}
    assert config.webhooks.urls == ("http://a.example/hook", "https://b.example/hook")
    assert [(r.name, r.height) for r in config.transcode.ladder] == [("240p", 240)]
    assert config.http.public_url == "https://live.example"


def test_variables_that_are_not_config_keys_are_left_alone(monkeypatch):
    # Used by the accounts service, the webhooks and the test suite; no "__", no key.
    monkeypatch.setenv("MEDIASRV_ADMIN_PASSWORD", "pw-1234")
    monkeypatch.setenv("MEDIASRV_FUZZ_EXAMPLES", "10")
    monkeypatch.setenv("OTHER__THING", "x")
    assert load_config() == Config()


@pytest.mark.parametrize("name, value, message", [
    ("MEDIASRV_HTTP__LISTEN", "nohost",
     r"^http\.listen \(from MEDIASRV_HTTP__LISTEN\): expected HOST:PORT"),
    ("MEDIASRV_HLS__WINDOW", "1",
     r"^hls\.window \(from MEDIASRV_HLS__WINDOW\): Input should be greater than or equal to 2, got '1'"),
    ("MEDIASRV_AUTH__MODE", "sometimes",
     r"^auth\.mode \(from MEDIASRV_AUTH__MODE\): Input should be 'open', 'keys', 'webhook' or 'accounts'"),
    ("MEDIASRV_HTTP__NOPE", "1", r"^http\.nope \(from MEDIASRV_HTTP__NOPE\): unknown key \(known here: listen, "),
    ("MEDIASRV_NOPE__KEY", "1", r"^nope\.key \(from MEDIASRV_NOPE__KEY\): unknown key \(known here: data_dir, rtmp, "),
    ("MEDIASRV_WEBHOOKS__URLS", "http://a/x",
     r"^webhooks\.urls \(from MEDIASRV_WEBHOOKS__URLS\): not valid JSON .*give maps and lists as JSON"),
    ("MEDIASRV_HTTP", '{"listen": "bad"}', r"^http\.listen \(from MEDIASRV_HTTP\): expected HOST:PORT"),
    ("MEDIASRV_AUTH__KEYS__Secret", "alice",
     r"^auth\.keys \(from MEDIASRV_AUTH__KEYS__Secret\): give the whole map as JSON in MEDIASRV_AUTH__KEYS"),
    ("MEDIASRV_TRANSCODE__LADDER", '[{"name": "x", "height": 241}]',
     r"^transcode\.ladder\[0\]\.height \(from MEDIASRV_TRANSCODE__LADDER\): Input should be a multiple of 2"),
])
def test_a_bad_variable_is_named_with_its_key(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_config()


def test_errors_name_the_source_of_the_value(tmp_path, monkeypatch):
    path = tmp_path / "site.yaml"
    path.write_text("rtmp:\n  max_connections: 0\n")
    with pytest.raises(ConfigError, match=rf"^rtmp\.max_connections \(from {re.escape(str(path))}\): "
                                          r"Input should be greater than or equal to 1, got 0$"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^rtmp\.max_connections \(from --set\): "):
        load_config(path, ["rtmp.max_connections=-5"])
    # A rule on a key left at its default says so, and where the key it depends on was set.
    monkeypatch.setenv("MEDIASRV_AUTH__MODE", "keys")
    with pytest.raises(ConfigError, match=r"^auth\.keys \(default\): at least one key is required when auth\.mode "
                                          r"is keys \(auth\.mode from MEDIASRV_AUTH__MODE\)$"):
        load_config(path, ["rtmp.max_connections=5"])


def test_every_error_is_listed_and_a_secret_stream_key_is_not_echoed():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["hls.window=0", "chat.rate=0", "auth.keys.TopSecretKey=../x"])
    text = str(info.value)
    assert text.splitlines()[0].startswith("auth.keys.<key> (from --set): ")
    assert "hls.window (from --set)" in text and "chat.rate (from --set)" in text
    assert "TopSecretKey" not in text


def test_cli_exits_2_naming_the_variable(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mediasrv.cli", "check-config"], capture_output=True, text=True, timeout=60,
        env={**_clean_environ(), "MEDIASRV_RTMP__LISTEN": "bogus"})
    assert result.returncode == 2
    assert "rtmp.listen (from MEDIASRV_RTMP__LISTEN)" in result.stderr


def _clean_environ() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.upper().startswith("MEDIASRV_")}


# --- bounds are declared on the fields ------------------------------------------------------


def _number_fields(model=Config, prefix=""):
    """(dotted key, minimum, maximum) of every number of the sections (None: no bound)."""
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _number_fields(field.annotation, f"{prefix}{name}.")
        elif field.annotation in (int, float):
            low = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
            high = next((m.le for m in field.metadata if hasattr(m, "le")), None)
            yield f"{prefix}{name}", low, high


def test_numbers_outside_their_field_bounds_are_refused_naming_the_key():
    numbers = list(_number_fields())
    assert len(numbers) >= 56  # the old _RANGES table's keys, and any added since
    assert [key for key, low, high in numbers if low is None or high is None] == [], "every number has bounds"
    for key, low, high in numbers:
        for value, word in ((low - 1, "greater"), (high + 1, "less")):
            with pytest.raises(ConfigError, match=rf"^{re.escape(key)} \(from --set\): Input should be "
                                                  rf"{word} than or equal to"):
                load_config(None, [f"{key}={value}"])


def test_bounds_of_list_items_are_on_their_fields_too():
    with pytest.raises(ConfigError, match=r"^gifts\.catalogue\[1\]\.price \(from the given mapping\): "
                                          r"Input should be greater than or equal to 1"):
        build_config({"gifts": {"catalogue": [{"id": "a", "name": "A"}, {"id": "b", "name": "B", "price": 0}]}})
    with pytest.raises(ConfigError, match=r"^transcode\.ladder\[0\]\.max_fps .*less than or equal to 240"):
        build_config({"transcode": {"ladder": [{"name": "x", "max_fps": 241}]}})


# --- check-config: the configuration as loaded, secrets as *** -----------------------------

SECRETS = {
    "MEDIASRV_ACCOUNTS__ADMIN_PASSWORD": "admin-pw-5521",
    "MEDIASRV_WEBHOOKS__SECRET": "hmac-key-7734",
    "MEDIASRV_RECORDING__ADMIN_TOKEN": "rec-token-9182",
    "MEDIASRV_AUTH__KEYS": '{"stream-key-1111": "alice", "stream-key-2222": "bob"}',
}


def test_check_config_prints_secrets_as_stars(tmp_path):
    path = tmp_path / "mediasrv.yaml"
    path.write_text("cluster:\n  redis_url: redis://default:redis-pw-3366@redis:6379/0\n"
                    "auth:\n  mode: keys\n  webhook:\n    url: https://auth.example/check?token=hook-tok-4477&v=2\n")
    result = subprocess.run(
        [sys.executable, "-m", "mediasrv.cli", "check-config", "-c", str(path),
         "--set", "webhooks.urls=https://hooks.example/in"],
        capture_output=True, text=True, timeout=60, env={**_clean_environ(), **SECRETS})
    assert result.returncode == 0, result.stderr
    for secret in ("admin-pw-5521", "hmac-key-7734", "rec-token-9182", "stream-key-1111", "stream-key-2222",
                   "redis-pw-3366", "hook-tok-4477"):
        assert secret not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["accounts"]["admin_password"] == "***"
    assert shown["webhooks"]["secret"] == "***"
    assert shown["recording"]["admin_token"] == "***"
    # The public names of the keys are not secret, and how many keys there are is useful.
    assert sorted(shown["auth"]["keys"].values()) == ["alice", "bob"]
    assert all(key.startswith("***") for key in shown["auth"]["keys"])
    assert shown["cluster"]["redis_url"] == "redis://default:***@redis:6379/0"
    assert shown["auth"]["webhook"]["url"] == "https://auth.example/check?token=***&v=2"
    # What is not secret is printed as loaded; an unset secret shows that it is unset.
    assert shown["webhooks"]["urls"] == ["https://hooks.example/in"]
    assert shown["cluster"]["key_prefix"] == "mediasrv"
    assert redacted(Config())["accounts"]["admin_password"] == ""


#: Keys whose names sound secret but whose values are not: file paths, a prefix, a duration.
NOT_SECRET = {"rtmp.tls_key", "http.tls_key", "cluster.key_prefix", "accounts.token_lifetime"}


def _leaf_fields(model=Config, prefix=""):
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _leaf_fields(field.annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field


def test_every_key_named_like_a_secret_is_marked_secret_or_known_not_to_be():
    named = {key: field for key, field in _leaf_fields()
             if re.search(r"secret|password|token|key", key.rsplit(".", 1)[-1])}
    assert NOT_SECRET <= set(named)
    unmarked = [key for key, field in named.items()
                if key not in NOT_SECRET and not any(isinstance(m, Secret) for m in field.metadata)]
    assert unmarked == [], "mark these Secret (mediasrv/config/model.py) or list them in NOT_SECRET"


# --- the JSON Schema of the file ------------------------------------------------------------

SCHEMA = ROOT / "config" / "mediasrv.schema.json"


def test_committed_schema_is_current():
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), (
        "config/mediasrv.schema.json is out of date: run `make schema` "
        "(or `mediasrv config-schema > config/mediasrv.schema.json`) and commit it")


def test_config_schema_command_prints_the_schema():
    result = subprocess.run([sys.executable, "-m", "mediasrv.cli", "config-schema"],
                            capture_output=True, text=True, timeout=60,
                            env={**_clean_environ(), "MEDIASRV_HTTP__LISTEN": "bogus"})  # needs no config
    assert result.returncode == 0, result.stderr
    assert result.stdout == schema_text()


def test_schema_accepts_the_documented_file_and_refuses_what_the_loader_refuses():
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert validator.is_valid(yaml.safe_load(DOCUMENTED.read_text()))
    for document in ({"hls": {"window": 1}}, {"rtmp": {"nope": 1}}, {"auth": {"mode": "sometimes"}},
                     {"transcode": {"ladder": [{"name": "x", "height": 241}]}}, {"cluster": {"key_prefix": "a b"}}):
        assert not validator.is_valid(document), document
        with pytest.raises(ConfigError):
            build_config(document)
    secrets = [key for key, field in _leaf_fields() if any(isinstance(m, Secret) for m in field.metadata)]
    schema = config_schema()
    for key in secrets:
        section, name = key.split(".")
        definition = schema["$defs"][type(getattr(Config(), section)).__name__]
        assert definition["properties"][name]["writeOnly"] is True, key


# --- copies ---------------------------------------------------------------------------------


def test_config_objects_are_frozen_and_replace_makes_a_validated_copy():
    config = load_config(None, ["http.listen=127.0.0.1:8080"])
    with pytest.raises(ValidationError):
        config.http.listen = "127.0.0.1:9"
    http = replace(config.http, listen="127.0.0.1:9090")
    assert http.address.port == 9090 and config.http.address.port == 8080
    moved = replace(config, http=http)
    assert moved.http.address.port == 9090 and moved.rtmp == config.rtmp
    with pytest.raises(ValidationError):
        replace(config.hls, window=1)
    assert hash(Config().transcode.ladder[0]) == hash(RungConfig(**dict(Config().transcode.ladder[0])))
