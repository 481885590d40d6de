"""``http.trusted_proxies``: X-Forwarded-For is believed only from trusted proxies, and
read from the right (the client may have written anything on the left)."""

from __future__ import annotations

import pytest

from mediasrv.config import ConfigError, load_config
from mediasrv.httpkit.forwarded import client_address, parse_networks

TRUSTED = parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"])


@pytest.mark.parametrize("peer, header, expected", [
    ("127.0.0.1", "203.0.113.7", "203.0.113.7"),                    # nginx on the same host
    ("10.1.2.3", "203.0.113.7, 10.9.9.9", "203.0.113.7"),           # a CDN, then nginx: both trusted
    ("127.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7"),           # the client's own "6.6.6.6" is ignored
    ("198.51.100.1", "203.0.113.7", "198.51.100.1"),                # an untrusted peer's header is ignored
    ("127.0.0.1", None, "127.0.0.1"),                               # no header: the proxy itself
    ("127.0.0.1", "", "127.0.0.1"),
    ("127.0.0.1", "10.0.0.5, 10.0.0.6", "10.0.0.5"),                # every hop trusted: the left-most
    ("127.0.0.1", "203.0.113.7, junk", "127.0.0.1"),                # malformed: stop, keep the proxy's word
    ("::1", "2001:db8::1", "2001:db8::1"),
    ("::ffff:127.0.0.1", "203.0.113.7", "203.0.113.7"),             # IPv4-mapped peer
    ("127.0.0.1", "203.0.113.7:51234", "203.0.113.7"),              # with a port
    ("127.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
])
def test_client_address(peer, header, expected):
    assert client_address(peer, header, TRUSTED) == expected


def test_nothing_trusted_by_default():
    config = load_config(None, [])
    assert config.http.trusted_proxies == ()
    assert client_address("127.0.0.1", "203.0.113.7", parse_networks(config.http.trusted_proxies)) == "127.0.0.1"


def test_config_key_takes_a_list_and_names_a_bad_entry():
    config = load_config(None, ["http.trusted_proxies=127.0.0.1/32, 10.0.0.0/8"])
    assert config.http.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8")
    with pytest.raises(ConfigError, match=r"http\.trusted_proxies\[1\] \(from --set\): 'nginx' is not an IP address"):
        load_config(None, ["http.trusted_proxies=127.0.0.1,nginx"])
