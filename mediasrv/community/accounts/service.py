"""Accounts: passwords, bearer tokens, the admin bootstrap, live access, stream keys,
go-live settings and covers. Async methods run the store's (blocking) calls in a thread.

- Passwords: ``hashlib.scrypt`` (n=2^14, r=8, p=1), a random 16-byte salt per user, kept
  as ``scrypt$n$r$p$salt$hash``; compared in constant time.
- Tokens: 32 random bytes, handed out once; the store keeps their SHA-256. Logout deletes
  one; an admin (or the user) can delete all of a user's tokens.
- Stream keys: 24 random bytes. A publish looks its key up by SHA-256 (no comparison
  that leaks timing). Rotation replaces the row: the old key stops working for every new
  publish at once, while a stream already live on it goes on (nothing is re-checked).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mediasrv.config import HANDLE_RE, Config
from mediasrv.ports import STREAM_KEY_PREFIX, PublishDecision
from mediasrv.community.accounts.mailer import Mailer
from mediasrv.image_pool import DecodePool
from mediasrv.images import StillImage, decode_cover, inspect_cover
from mediasrv.community.accounts.privacy import ViewerCountPrivacy
from mediasrv.community.accounts.relations import Relations
from mediasrv.community.accounts.suspensions import Suspensions
from mediasrv.store.reach import Suspension
from mediasrv.store.accounts import AccessRequest, AccountStore, CreatorSettings, HandleTaken, RequestPending, User

log = logging.getLogger("mediasrv.accounts")

SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
PASSWORD_MIN, PASSWORD_MAX = 8, 256
ADMIN_PASSWORD_ENV = "MEDIASRV_ADMIN_PASSWORD"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=64 * 1024 * 1024)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


#: Compared against when the handle is unknown, so a login takes as long either way.
_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(bytes(16))}${_b64(bytes(32))}"


def _duration(seconds: float) -> str:
    """``86400`` → ``1 day``, ``7200`` → ``2 hours``, ``90`` → ``90 s``."""
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} s"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: The store's name of the operator's live-access threshold (``site_settings``).
MIN_FOLLOWERS_SETTING = "live_access.min_followers"


class AccountSuspended(Exception):
    """A login with the right password to a suspended account (the route answers 403 with
    the reason and the end: only the account's owner learns them)."""

    def __init__(self, suspension: Suspension) -> None:
        super().__init__(suspension.reason)
        self.suspension = suspension


class AccessRequestRefused(Exception):
    """A live-access request or decision that cannot be taken: ``status`` is the HTTP one."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True, slots=True)
class LiveAccess:
    """Where a creator stands with the live-access rule."""

    allowed: bool
    reason: str
    followers: int
    min_followers: int
    #: ``granted``/``revoked`` by an admin, or None (the rule decides).
    override: str | None

    def to_json(self) -> dict:
        return {"allowed": self.allowed, "reason": self.reason, "followers": self.followers,
                "min_followers": self.min_followers, "override": self.override}


def evaluate_live_access(user: User, followers: int, override: str | None, min_followers: int, *,
                         open_mode: bool = False, counting: str = "") -> LiveAccess:
    """The rule: creators (and moderators, admins) with ``min_followers`` followers may go
    live; an admin's grant or revoke overrides the count. In ``auth.mode: open``
    (``open_mode``) anyone may publish, so no follower minimum applies to a creator's key
    either (an admin's revoke still does). ``counting`` says which followers count (told
    with a refusal: the creator sees why the number is lower than their profile's)."""
    def result(allowed: bool, reason: str) -> LiveAccess:
        return LiveAccess(allowed, reason, followers, min_followers, override)

    if not user.at_least("creator"):
        return result(False, f"only creators can go live (this account is a {user.role})")
    if override == "revoked":
        return result(False, "live access was revoked by an admin")
    if override == "granted":
        return result(True, "live access was granted by an admin")
    if open_mode:
        return result(True, "this server lets every creator go live")
    if followers < min_followers:
        return result(False, f"live access requires {min_followers} followers, you have {followers}"
                             + (f" ({counting})" if counting else ""))
    if min_followers:
        return result(True, f"you have {followers} followers (at least {min_followers} needed)")
    return result(True, "no follower minimum")


class AccountService:
    """The accounts component (``app[ACCOUNTS]``)."""

    def __init__(self, store: AccountStore, config: Config, *, clock: Callable[[], float] = time.time,
                 on_operator_demoted: Callable[[User], None] = lambda user: None,
                 on_creator_demoted: Callable[[User], None] = lambda user: None,
                 relations: Relations | None = None, suspensions: Suspensions | None = None,
                 privacy: ViewerCountPrivacy | None = None,
                 image_pool: DecodePool | None = None, mailer: Mailer | None = None) -> None:
        """``on_operator_demoted(user)``: told when a moderator's or an admin's role is
        lowered below moderator (the playback gate revokes every private live's grants:
        operators may play any of them). ``on_creator_demoted(user)``: told when a creator
        (or above) becomes a viewer (their live ends). ``relations``, ``suspensions``,
        ``privacy``: blocks and mutes, suspended accounts, hidden viewer counts (kept in
        memory: ``load`` reads them); made here from ``store`` when not given.
        ``image_pool``: where covers are decoded (bounded; None: a thread each, for tests
        of other things). ``mailer``: sends verification links when ``email.enabled``."""
        self.store = store
        self.image_pool = image_pool
        self.mailer = mailer
        self.on_operator_demoted = on_operator_demoted
        self.on_creator_demoted = on_creator_demoted
        self.relations = relations if relations is not None else Relations(store, clock=clock)
        self.suspensions = suspensions if suspensions is not None else Suspensions(store, clock=clock)
        self.privacy = privacy if privacy is not None else ViewerCountPrivacy(store, clock=clock)
        self.config = config
        self.clock = clock
        self.covers_dir = config.data_path / "covers"
        self.logins_failed = 0
        self.publishes_refused = 0

    async def _run(self, fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    # --- lifecycle ----------------------------------------------------------------------

    async def load(self) -> None:
        """Read what is decided in memory (blocks and mutes, suspensions, hidden viewer
        counts) from the store: once, before the first request."""
        await self.relations.load(self.store)
        await self.suspensions.load()
        await self.privacy.load()

    async def bootstrap_admin(self) -> User | None:
        """Create the configured admin if no user has its handle (an existing one is kept)."""
        settings = self.config.accounts
        password = settings.admin_password or os.environ.get(ADMIN_PASSWORD_ENV, "")
        if not password:
            return None
        existing = await self._run(self.store.get_user_by_handle, settings.admin_handle)
        if existing is not None:
            return existing
        if len(password) < PASSWORD_MIN:
            log.error("admin bootstrap skipped: the admin password must have at least %d characters", PASSWORD_MIN)
            return None
        user = await self.create_user(settings.admin_handle, password, display_name=settings.admin_handle,
                                      role="admin")
        log.info("created the admin account %s", user.handle)
        return user

    # --- users and tokens ---------------------------------------------------------------

    async def create_user(self, handle: str, password: str, *, display_name: str = "", role: str = "viewer",
                          email: str | None = None, verify_url: Callable[[str], str] | None = None) -> User:
        """Raises ``HandleTaken``. Inputs are validated by the caller (HTTP layer).
        ``email`` (with ``email.enabled``): a verification link, ``verify_url(token)``,
        is mailed to it."""
        assert HANDLE_RE.fullmatch(handle)
        password_hash = await self._run(hash_password, password)
        user = await self._run(self.store.create_user, handle, display_name or handle, password_hash, role,
                               self.clock())
        if user.at_least("creator"):
            await self.stream_key(user)
        if email and verify_url is not None:
            await self.send_verification(user, email, verify_url)
        return user

    # --- email verification -------------------------------------------------------------

    def verifies_email(self) -> bool:
        """Whether this server verifies emails (``email.enabled``): followers then count
        toward live access only once their email is verified."""
        return self.config.email.enabled and self.mailer is not None

    async def send_verification(self, user: User, email: str, verify_url: Callable[[str], str]) -> bool:
        """Keep ``email`` (unverified) and mail it a link that verifies it; False when the
        mail could not be sent (logged; the account stays, unverified)."""
        if not self.verifies_email():
            return False
        token = secrets.token_urlsafe(32)
        now = self.clock()
        await self._run(self.store.add_email_verification, user.id, email, sha256_hex(token), now,
                        now + self.config.email.link_lifetime)
        body = (f"Hello {user.display_name},\n\nconfirm that this address is yours by opening this link "
                f"(valid for {int(self.config.email.link_lifetime // 3600) or 1} h):\n\n{verify_url(token)}\n\n"
                "If you did not register, ignore this mail.\n")
        return await self.mailer.send(email, "Confirm your email address", body)

    async def email_status(self, user: User) -> tuple[str, bool]:
        """The user's email (empty: none) and whether it is verified."""
        email, verified_at = await self._run(self.store.email_status, user.id)
        return email, verified_at is not None

    async def verify_email(self, token: str) -> User | None:
        """Verify the address a link was sent to; the user, or None for an unknown, used
        or expired link."""
        if not token or len(token) > 200:
            return None
        user_id = await self._run(self.store.verify_email, sha256_hex(token), self.clock())
        return await self._run(self.store.get_user, user_id) if user_id is not None else None

    async def login(self, handle: str, password: str) -> tuple[str, float, User] | None:
        """A new bearer token for valid credentials, else None (same work either way).
        Raises ``AccountSuspended`` for the right password of a suspended account."""
        user = await self._run(self.store.get_user_by_handle, handle) if HANDLE_RE.fullmatch(handle) else None
        stored = await self._run(self.store.get_password_hash, user.id) if user else None
        ok = await self._run(verify_password, password, stored or _DUMMY_HASH)
        if not (ok and user and stored):
            self.logins_failed += 1
            return None
        suspension = self.suspensions.active(user.id)
        if suspension is not None:
            raise AccountSuspended(suspension)
        token = "msv_" + secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + self.config.accounts.token_lifetime
        await self._run(self.store.add_token, sha256_hex(token), user.id, now, expires)
        return token, expires, user

    async def user_for_token(self, token: str) -> User | None:
        if not token or len(token) > 200:
            return None
        user = await self._run(self.store.user_for_token, sha256_hex(token), self.clock())
        # Suspending revokes every token; one made meanwhile still does not authenticate.
        return None if user is None or self.suspensions.is_suspended(user.id) else user

    async def logout(self, token: str) -> bool:
        return await self._run(self.store.delete_token, sha256_hex(token))

    async def revoke_tokens(self, user: User) -> int:
        return await self._run(self.store.delete_tokens, user.id)

    async def change_password(self, user: User, current: str, new: str, *, keep_token: str | None = None) -> int | None:
        """Change the password when ``current`` is right (else None) and end every other
        session: each login token but ``keep_token`` (the one asking) stops working, so
        whoever knew the old password is logged out everywhere. Returns how many
        sessions were ended."""
        stored = await self._run(self.store.get_password_hash, user.id)
        if not stored or not await self._run(verify_password, current, stored):
            return None
        keep = sha256_hex(keep_token) if keep_token else None
        return await self._run(self.store.change_password, user.id, await self._run(hash_password, new), keep)

    def creators_may_register(self) -> bool:
        """Anyone may sign up as a creator (open registration), so a viewer may become one."""
        return self.config.accounts.open_registration

    async def become_creator(self, user: User) -> User:
        """A viewer becomes a creator (the caller checks ``creators_may_register``); a
        creator or above stays what they are."""
        if user.at_least("creator"):
            return user
        return await self.set_role(user, "creator")

    async def set_role(self, user: User, role: str) -> User:
        await self._run(self.store.set_role, user.id, role)
        if role in ("creator", "moderator", "admin"):
            await self.stream_key(user)
        changed = await self._run(self.store.get_user, user.id)
        if user.at_least("moderator") and changed is not None and not changed.at_least("moderator"):
            self.on_operator_demoted(changed)
        if user.at_least("creator") and changed is not None and not changed.at_least("creator"):
            self.on_creator_demoted(changed)  # a viewer cannot be live: their live ends
        return changed

    async def user_by_id(self, user_id: int) -> User | None:
        return await self._run(self.store.get_user, user_id)

    async def get_user(self, handle: str) -> User | None:
        if not HANDLE_RE.fullmatch(handle):
            return None
        return await self._run(self.store.get_user_by_handle, handle)

    # --- live access --------------------------------------------------------------------

    async def counted_followers(self, user: User) -> int:
        """Followers that count toward live access: accounts older than
        ``accounts.follower_min_age``, with a verified email when this server verifies
        emails (a burst of fresh accounts following a creator does not count)."""
        created_before = self.clock() - self.config.accounts.follower_min_age
        return await self._run(self.store.counted_follower_count, user.id, created_before, self.verifies_email())

    async def live_access(self, user: User) -> LiveAccess:
        followers = await self.counted_followers(user)
        override = await self._run(self.store.get_live_access, user.id)
        return evaluate_live_access(user, followers, override, await self.min_followers(),
                                    open_mode=self.config.auth.mode == "open", counting=self._counting())

    def _counting(self) -> str:
        """Which followers count toward live access, in words ("" when all do)."""
        rules = []
        age = self.config.accounts.follower_min_age
        if age > 0:
            rules.append(f"accounts at least {_duration(age)} old")
        if self.verifies_email():
            rules.append("with a verified email")
        return "followers count from " + " ".join(rules) if rules else ""

    async def min_followers(self) -> int:
        """The live-access threshold: the operator's (set in /admin, kept in the store), else
        ``live_access.min_followers`` from the configuration."""
        stored = await self._run(self.store.get_site_setting, MIN_FOLLOWERS_SETTING)
        return int(stored) if stored is not None else self.config.live_access.min_followers

    async def store_has_min_followers(self) -> bool:
        """Whether an operator set the threshold (else the configuration's applies)."""
        return await self._run(self.store.get_site_setting, MIN_FOLLOWERS_SETTING) is not None

    async def set_min_followers(self, value: int | None) -> int:
        """Set the threshold for this community (None: back to the configuration's)."""
        await self._run(self.store.set_site_setting, MIN_FOLLOWERS_SETTING,
                        None if value is None else str(int(value)), self.clock())
        return await self.min_followers()

    async def request_live_access(self, user: User, message: str) -> AccessRequest:
        """A creator below the threshold asks an operator; one request may wait at a time."""
        if not user.at_least("creator"):
            raise AccessRequestRefused(403, f"only creators can go live (this account is a {user.role})")
        access = await self.live_access(user)
        if access.allowed:
            raise AccessRequestRefused(409, "you already have live access")
        if access.override == "revoked":
            raise AccessRequestRefused(409, "an operator revoked your live access: ask them directly")
        try:
            return await self._run(self.store.add_access_request, user.id, message, self.clock())
        except RequestPending:
            raise AccessRequestRefused(409, "your earlier request is still waiting for an operator") from None

    async def access_requests(self, *, status: str | None = None, user: User | None = None,
                              limit: int = 100) -> list[AccessRequest]:
        return await self._run(self.store.list_access_requests, status=status,
                               user_id=None if user is None else user.id, limit=limit)

    async def decide_access_request(self, request_id: int, grant: bool, reason: str, by: User) -> AccessRequest:
        """Grant (live access from now on) or refuse (with a reason the creator sees)."""
        decided = await self._run(self.store.decide_access_request, request_id, "granted" if grant else "refused",
                                  reason, by.id, self.clock())
        if decided is None:
            existing = await self._run(self.store.get_access_request, request_id)
            if existing is None:
                raise AccessRequestRefused(404, "no such request")
            raise AccessRequestRefused(409, f"this request was already {existing.status}")
        return decided

    async def set_live_access(self, user: User, access: str | None, by: User) -> LiveAccess:
        await self._run(self.store.set_live_access, user.id, access, by.id, self.clock())
        return await self.live_access(user)

    async def check_publish(self, key: str, *, check_only: bool = False) -> PublishDecision:
        """``auth.mode: accounts`` (and a key of the account form in ``open``): the key must
        be a creator's current stream key and the creator must hold live access; the
        public name is the creator's handle, and the broadcast starts private when the
        creator's ``backstage`` setting is on. The reason never contains the key.
        ``check_only``: a question before any publish (WHIP's ``OPTIONS``): the same
        decision, but a refusal is not counted as a refused publish."""
        refused = 0 if check_only else 1
        if not key or len(key) > 200:
            self.publishes_refused += refused
            return PublishDecision(False, reason="unknown stream key")
        user = await self._run(self.store.user_for_key_hash, sha256_hex(key))
        if user is None:
            self.publishes_refused += refused
            return PublishDecision(False, reason="unknown stream key")
        suspension = self.suspensions.active(user.id)
        if suspension is not None:
            self.publishes_refused += refused
            return PublishDecision(False, reason=f"this account is suspended: {suspension.reason}")
        access = await self.live_access(user)
        if not access.allowed:
            self.publishes_refused += refused
            return PublishDecision(False, reason=access.reason)
        # Backstage: a new broadcast starts private until the creator makes it public.
        visibility, mature = await self.audience(user)
        return PublishDecision(True, user.handle, private=(await self.settings(user)).backstage,
                               visibility=visibility, mature=mature)

    async def audience(self, user: User) -> tuple[str, bool]:
        """Who may watch the creator's next live (their ``visibility`` as the site allows it,
        issue 18) and whether it is 18+."""
        saved = await self._run(self.store.visibility_setting, user.id)
        return self.config.live.effective_visibility(saved.visibility), saved.mature

    async def set_audience(self, user: User, *, visibility: str | None = None,
                           mature: bool | None = None) -> tuple[str, bool]:
        """Save the creator's default visibility and/or 18+ flag; the effective pair after."""
        saved = await self._run(self.store.set_visibility_setting, user.id, visibility=visibility, mature=mature)
        return self.config.live.effective_visibility(saved.visibility), saved.mature

    async def is_following(self, user: User, creator_id: int) -> bool:
        return await self._run(self.store.is_following, user.id, creator_id)

    async def invite(self, creator: User, user: User) -> bool:
        """Invite ``user`` to ``creator``'s private lives; False when invited already."""
        return await self._run(self.store.add_invite, creator.id, user.id, self.clock())

    async def uninvite(self, creator: User, user: User) -> bool:
        return await self._run(self.store.remove_invite, creator.id, user.id)

    async def invites(self, creator: User) -> list:
        return await self._run(self.store.list_invites, creator.id)

    async def is_invited(self, creator_id: int, user: User) -> bool:
        return await self._run(self.store.is_invited, creator_id, user.id)

    # --- stream keys --------------------------------------------------------------------

    async def stream_key(self, user: User) -> str:
        """The user's current key (made on first use)."""
        key = await self._run(self.store.get_stream_key, user.id)
        return key if key is not None else await self.rotate_stream_key(user)

    async def rotate_stream_key(self, user: User) -> str:
        key = STREAM_KEY_PREFIX + secrets.token_urlsafe(24)
        await self._run(self.store.set_stream_key, user.id, key, sha256_hex(key), self.clock())
        return key

    # --- go-live settings and the cover -------------------------------------------------

    async def settings(self, user: User) -> CreatorSettings:
        return await self._run(self.store.get_settings, user.id)

    async def update_settings(self, user: User, **values) -> CreatorSettings:
        return await self._run(self.store.update_settings, user.id, self.clock(), **values)

    async def save_by_default(self, handle: str) -> bool | None:
        """The creator's "save the broadcast by default" setting for stream ``handle``;
        None when no user has that handle (for the recorder's undecided broadcasts)."""
        user = await self.get_user(handle)
        if user is None:
            return None
        return (await self.settings(user)).save_by_default

    def cover_path(self, settings: CreatorSettings) -> Path | None:
        return self.covers_dir / settings.cover if settings.cover else None

    async def set_cover(self, user: User, data: bytes) -> tuple[CreatorSettings, StillImage]:
        """Check and re-encode ``data`` (raises ``ImageError``: nothing is stored then),
        write it under ``data_dir/covers`` and make it the user's cover."""
        uploads = self.config.uploads
        # The header first (cheap): a file that is no image, or one too large decoded, is
        # refused without taking a decoder.
        header = await self._run(inspect_cover, data, max_bytes=uploads.max_cover_bytes,
                                 max_pixels=uploads.max_cover_pixels,
                                 max_decode_bytes=self.config.images.max_decode_mb * 1024 * 1024)
        # Decoding, the costly part, in the bounded pool (raises PoolBusy when it is full).
        run = self.image_pool.run if self.image_pool is not None else self._run
        image = await run(decode_cover, data, header)
        name = f"{user.id}-{secrets.token_hex(6)}.jpg"
        await self._run(self._write_file, name, image.jpeg)
        old = await self.settings(user)
        settings = await self.update_settings(user, cover=name)
        if old.cover and old.cover != name:
            await self._run(self._remove_file, old.cover)
        return settings, image

    async def remove_cover(self, user: User) -> CreatorSettings:
        old = await self.settings(user)
        settings = await self.update_settings(user, cover="")
        if old.cover:
            await self._run(self._remove_file, old.cover)
        return settings

    def _write_file(self, name: str, data: bytes) -> None:
        self.covers_dir.mkdir(parents=True, exist_ok=True)
        temp = self.covers_dir / f".{name}.tmp"
        temp.write_bytes(data)
        os.replace(temp, self.covers_dir / name)

    def _remove_file(self, name: str) -> None:
        try:
            (self.covers_dir / name).unlink()
        except FileNotFoundError:
            pass


__all__ = [
    "AccountService", "AccountSuspended", "HandleTaken", "LiveAccess", "evaluate_live_access", "hash_password", "verify_password",
]
