"""Configuration: the documented file, overrides, and errors that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from mediasrv.cli import startup_banner
from mediasrv.config import Config, ConfigError, build_config, load_config

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
