"""The HLS URL signer (``httpkit.url_signing``): expiry, path prefix, tampering, with
the clock passed in; and the secret kept in the data directory."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat

from mediasrv.httpkit.url_signing import SECRET_FILE, UrlSigner, load_or_create_secret


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_signature_is_valid_until_it_expires_then_refused():
    clock = Clock(1_000_000.2)
    signer = UrlSigner("s3cret", ttl=30, clock=clock)
    value = signer.sign("alice")
    expires = int(value.split(".")[0])
    assert expires == 1_000_031  # whole seconds, rounded up
    assert signer.valid("alice", value)
    clock.now = expires  # the last second it is valid
    assert signer.valid("alice", value)
    clock.now = expires + 0.001
    assert not signer.valid("alice", value)


def test_a_signature_covers_one_stream_prefix_only():
    signer = UrlSigner("s3cret", ttl=30, clock=Clock(100.0))
    value = signer.sign("alice")
    assert not signer.valid("bob", value)
    assert not signer.valid("alic", value)
    assert not signer.valid("alice2", value)


def test_tampered_or_malformed_signatures_are_refused():
    clock = Clock(100.0)
    signer = UrlSigner("s3cret", ttl=30, clock=clock)
    value = signer.sign("alice")
    expires, sig = value.split(".")
    # A later expiry with the same signature: the expiry is signed.
    assert not signer.valid("alice", f"{int(expires) + 1000}.{sig}")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert not signer.valid("alice", f"{expires}.{flipped}")
    for bad in ("", expires, f"{expires}.", f".{sig}", f"{expires}.{sig}=", f"x{expires}.{sig}", value + "A",
                f"{expires}.{sig}" + "A" * 100):
        assert not signer.valid("alice", bad), bad
    # Another secret (another site's cache) does not open it.
    assert not UrlSigner("other", ttl=30, clock=clock).valid("alice", value)


def test_the_signature_is_the_documented_hmac():
    """What the nginx check (deploy/nginx-hls-sign.js) computes: base64url, unpadded,
    HMAC-SHA256 of "/live/NAME/\\nEXPIRES"."""
    value = UrlSigner("k", ttl=10, clock=Clock(0.0)).sign("cam")
    mac = hmac.new(b"k", b"/live/cam/\n10", hashlib.sha256).digest()
    assert value == "10." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def test_the_secret_is_generated_once_into_the_data_dir(tmp_path):
    assert load_or_create_secret("given", tmp_path) == "given"
    assert not (tmp_path / SECRET_FILE).exists()
    first = load_or_create_secret("", tmp_path / "data")
    assert len(first) >= 40
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret("", tmp_path / "data") == first  # kept across restarts
