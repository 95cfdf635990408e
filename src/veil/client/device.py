"""`Device`: one device of one account — keys, sessions, trust, threads and messages.

Every front end (CLI, web app, tests) uses this class. It is async inside; storage is a
small local SQLite file whose values are all encrypted (see store.py).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from veil.client import attachments, inbox, reports, sending, stickers, timers
from veil.client.api import ServerAPI
from veil.client.directory import Directory
from veil.client.errors import NotSetUp, UsageError
from veil.client.models import Message, ThreadSummary, thread_key
from veil.client.sessions import Sessions
from veil.client.store import Store
from veil.client.verification import Verifications
from veil.protocol.devicelist import DeviceEntry, DeviceList, sign_device_list
from veil.protocol.encoding import b64decode
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.olm import OlmAccount
from veil.protocol.payload import Attachment, RegularMessage
from veil.protocol.prekeys import prekey_message
from veil.protocol.wire import Envelope

if TYPE_CHECKING:
    from veil.client.stream import StreamLink

__all__ = ["Device", "Thread"]

log = logging.getLogger("veil.client")

_OTK_TARGET = 50
_OTK_LOW = 20
Clock = Callable[[], int]


def _now_ms() -> int:
    return int(time.time() * 1000)


class Device:
    """One device: open it with `Device.open`, or make it with `register` / `login`."""

    def __init__(self, profile: Path, store: Store, state: dict[str, Any], *, clock: Clock = _now_ms) -> None:
        import asyncio

        self.profile = profile
        self.store = store
        self._state = state
        self.clock = clock
        self.api = ServerAPI(state["server"], state.get("token"))
        self.account = OlmAccount.from_pickle(state["account"], store.pickle_key)
        self.identity: IdentityKeyPair | None = (
            IdentityKeyPair.from_private_bytes(state["identity"]) if state.get("identity") else None)
        self.sessions = Sessions(store, self.account)
        self.directory = Directory(store, self.api, self.handle, self._identity_public(), self.notice)
        self.lock = asyncio.Lock()
        self._listeners: list[Callable[[Message], None]] = []
        self.context_peer = ""  # the thread a send is for: where notices about your own account go
        self.typing: dict[tuple[str, bool], int] = {}  # (peer, secret) → typing until (ms)
        self.verifications = Verifications(self)
        self.stream_link: StreamLink | None = None  # set while listen() holds a stream open
        self.outbox = sending.Outbox(self)  # secret sends waiting for the server's answer
        self._thread_index: dict[str, Any] | None = None  # the "threads" record, written once per commit
        self._thread_index_dirty = False
        self.timer_cache: dict[str, int] = {}  # peer → secret thread timer (timers.thread_timer)
        store.before_commit.append(self._write_state)

    # -- properties ---------------------------------------------------------------------------
    @property
    def handle(self) -> str:
        return str(self._state["handle"])

    @property
    def device_id(self) -> str:
        return str(self._state["device_id"])

    @property
    def server_url(self) -> str:
        return str(self._state["server"])

    @property
    def is_linked(self) -> bool:
        """True once this device holds the account identity key (registered or linked)."""
        return self.identity is not None

    def _identity_public(self) -> str:
        return self.identity.public_b64 if self.identity else str(self._state.get("identity_public", ""))

    # -- creating and opening -----------------------------------------------------------------
    @classmethod
    async def register(cls, profile: Path, server: str, handle: str, password: str, passphrase: str, *,
                       display_name: str = "", device_name: str = "first device", clock: Clock = _now_ms) -> Device:
        """Create an account, its identity key, this first device and the first device list."""
        identity = IdentityKeyPair.generate()
        api = ServerAPI(server)
        try:
            await api.register(handle, display_name or handle, password, identity.public_b64)
        finally:
            await api.aclose()
        device = await cls._login(profile, server, handle, password, passphrase, device_name, identity, clock)
        await device._publish_device_list([device._own_entry()], version=1)
        return device

    @classmethod
    async def login(cls, profile: Path, server: str, handle: str, password: str, passphrase: str, *,
                    device_name: str = "new device", clock: Clock = _now_ms) -> Device:
        """Log a new device in; it can read regular threads, and secret ones once linked."""
        return await cls._login(profile, server, handle, password, passphrase, device_name, None, clock)

    @classmethod
    async def _login(cls, profile: Path, server: str, handle: str, password: str, passphrase: str,
                     device_name: str, identity: IdentityKeyPair | None, clock: Clock) -> Device:
        if Store.exists(profile):
            raise UsageError(f"{profile} already holds a device; choose another profile folder")
        account = OlmAccount()
        api = ServerAPI(server)
        try:
            r = await api.login(handle, password, device_name, account.curve25519, account.ed25519)
        finally:
            await api.aclose()
        store = Store.create(profile, passphrase)
        state: dict[str, Any] = {
            "server": server, "handle": handle, "device_id": r["device_id"], "token": r["token"],
            "account": account.pickle(store.pickle_key),
            "identity": identity.private_bytes() if identity else None,
        }
        store.put("device", state)
        device = cls(profile, store, state, clock=clock)
        await device.publish_keys()
        if identity is None:
            await device.load_history()  # a new device of an existing account sees regular history
        return device

    @classmethod
    async def open(cls, profile: Path, passphrase: str, *, server: str | None = None,
                   clock: Clock = _now_ms) -> Device:
        store = Store.open(profile, passphrase)
        state = store.get("device")
        if not state:
            store.close()
            raise NotSetUp(f"{profile} holds no device yet: register, log in or link first")
        state = dict(state)
        if server and server != state["server"]:
            state["server"] = server
            store.put("device", state)
        device = cls(profile, store, state, clock=clock)
        device.expire()  # messages whose time ran out while the device was closed
        return device

    async def close(self) -> None:
        self.outbox.close()
        await self.api.aclose()
        self.store.close()

    def _write_state(self) -> None:
        """Before every commit: what this class keeps in memory and writes once per transaction."""
        if self.sessions.account_dirty:  # an inbound session used up a one-time key
            self.sessions.account_dirty = False
            self.save_state()
        if self._thread_index_dirty and self._thread_index is not None:
            self._thread_index_dirty = False
            self.store.put("threads", self._thread_index, commit=False)

    def _threads(self) -> dict[str, Any]:
        if self._thread_index is None:
            self._thread_index = dict(self.store.get("threads") or {})
        return self._thread_index

    def save_state(self) -> None:
        self._state["account"] = self.account.pickle(self.store.pickle_key)
        self._state["identity"] = self.identity.private_bytes() if self.identity else None
        self.store.put("device", self._state, commit=False)

    def _own_entry(self) -> DeviceEntry:
        return DeviceEntry(device_id=self.device_id, curve25519=self.account.curve25519,
                           ed25519=self.account.ed25519)

    # -- keys ---------------------------------------------------------------------------------
    async def publish_keys(self, server_count: int | None = None) -> int:
        """Top the server's one-time keys up to the target; publish a fallback key once."""
        count = server_count if server_count is not None else await self.api.key_count()
        if count >= _OTK_LOW and self._state.get("fallback_published"):
            return count
        keys = self.account.generate_one_time_keys(max(0, _OTK_TARGET - count))
        fallback = None
        if not self._state.get("fallback_published"):
            kid, key = self.account.generate_fallback_key()
            fallback = self._signed_key(kid, key, fallback=True)
        self.save_state()  # keep the private halves before the server can hand them out
        self.store.commit()
        total = await self.api.upload_keys([self._signed_key(k, v, fallback=False) for k, v in keys.items()],
                                           fallback)
        self.account.mark_keys_as_published()
        self._state["fallback_published"] = True
        self.save_state()
        self.store.commit()
        return total

    def _signed_key(self, key_id: str, key: str, *, fallback: bool) -> dict[str, str]:
        sig = self.account.sign(prekey_message(self.handle, self.device_id, key_id, key, fallback=fallback))
        return {"key_id": key_id, "key": key, "signature": sig}

    async def _publish_device_list(self, devices: list[DeviceEntry], *, version: int) -> DeviceList:
        if self.identity is None:
            raise UsageError("only a device that holds the identity key can change the device list")
        dl = sign_device_list(self.identity, self.handle, version, devices)
        await self.api.put_device_list({"handle": dl.handle, "version": dl.version, "signature": dl.signature,
                                        "devices": [{"device_id": d.device_id, "curve25519": d.curve25519,
                                                     "ed25519": d.ed25519} for d in dl.devices]})
        self.directory.forget(self.handle)
        return dl

    async def own_device_list(self) -> DeviceList | None:
        info = await self.api.user(self.handle)
        raw = info.get("device_list")
        if raw is None:
            return None
        import msgspec

        return msgspec.convert(raw, DeviceList)

    async def reset_identity(self, password: str) -> None:
        """Re-create the account identity from this device (when every old device is lost).

        The server revokes the account's other devices; contacts see a new safety number and
        hold their messages until they confirm it.
        """
        identity = IdentityKeyPair.generate()
        current = await self.own_device_list()
        await self.api.call("PUT", "/v1/identity",
                            {"password": password, "identity_key": identity.public_b64})
        self.identity = identity
        self.directory = Directory(self.store, self.api, self.handle, identity.public_b64, self.notice)
        self.save_state()
        self.store.commit()
        await self._publish_device_list([self._own_entry()], version=(current.version if current else 0) + 1)

    # -- devices ------------------------------------------------------------------------------
    async def devices(self) -> list[dict[str, Any]]:
        return await self.api.devices()

    async def revoke(self, device_id: str) -> None:
        """Revoke one of this account's devices and sign a device list without it."""
        await self.api.revoke(device_id)
        current = await self.own_device_list()
        if current is not None and self.identity is not None and current.device(device_id):
            remaining = [d for d in current.devices if d.device_id != device_id]
            if remaining:
                await self._publish_device_list(remaining, version=current.version + 1)

    # -- threads ------------------------------------------------------------------------------
    def thread(self, peer: str, *, secret: bool = False) -> Thread:
        return Thread(self, peer, secret)

    def threads(self) -> list[ThreadSummary]:
        index = self._threads()
        out = [ThreadSummary(peer=v["peer"], is_secret=v["secret"], last_ts=v["last_ts"],
                             last_text=v["last_text"], timer=self.timer(v["peer"]) if v["secret"] else 0)
               for v in index.values()]
        return sorted(out, key=lambda t: t.last_ts, reverse=True)

    def messages(self, peer: str, *, secret: bool) -> list[Message]:
        return [Message.from_record(r) for r in self.store.messages(thread_key(peer, secret))]

    def add_listener(self, callback: Callable[[Message], None]) -> None:
        """Call `callback` with every message or notice stored from now on."""
        self._listeners.append(callback)

    def store_message(self, m: Message, *, commit: bool = False) -> bool:
        key = thread_key(m.peer, m.is_secret)
        if not self.store.add_message(key, m.id, m.to_record(), commit=False):
            return False
        preview = m.text or {"image": "📷 Photo", "video": "🎬 Video", "sticker": "Sticker"}.get(m.kind, "")
        self._threads()[key] = {"peer": m.peer, "secret": m.is_secret, "last_ts": m.sent_at,
                                "last_text": preview[:80]}
        self._thread_index_dirty = True  # written by the next commit (one write per transaction)
        if commit:
            self.store.commit()
        for cb in self._listeners:
            cb(m)
        return True

    def notice(self, peer: str, code: str, text: str, *, secret: bool = True, dedupe: str = "") -> None:
        if peer == self.handle and self.context_peer:
            peer = self.context_peer
        mid = f"notice-{dedupe}-{int(secret)}" if dedupe else "notice-" + uuid.uuid4().hex
        self.store_message(Message(id=mid, peer=peer, is_secret=secret,
                                    kind="notice", sender="", sender_device="", text=text,
                                    sent_at=self.clock(), notice=code))
        if code == "identity_changed" and secret:
            self.notice(peer, code, text, secret=False)

    # -- sending ------------------------------------------------------------------------------
    async def send_text(self, peer: str, text: str, *, secret: bool = False) -> Message:
        if not text:
            raise UsageError("a message needs some text")
        self._check_peer(peer)
        if not secret:
            return await sending.send_regular(self, peer, text=text)
        p = sending.new_payload(self, peer, "text", body=text, timer=timers.thread_timer(self, peer))
        own = sending.own_secret_message(self, p)
        await sending.send_secret(self, p, show=own)
        return own

    async def send_media(self, peer: str, path: Path, *, secret: bool = False, caption: str = "") -> Message:
        """Send a photo (JPEG, PNG, WebP, GIF) or a video (MP4, WebM)."""
        self._check_peer(peer)
        path = Path(path)
        kind = attachments.inspect(path).kind
        if not secret:
            att, local = await attachments.prepare(self, path, secret=False)
            return await sending.send_regular(self, peer, text=caption, kind=kind,
                                              attachment=msgspec.to_builtins(att), local_attachment=local)
        timer = timers.thread_timer(self, peer)
        downloads = 0
        if timer:  # a disappearing blob goes once every target device has it
            them, mine = await self.directory.get(peer), await self.directory.get(self.handle)
            downloads = len(them.devices) + len(mine.devices) - 1
        att, local = await attachments.prepare(self, path, secret=True, downloads=downloads)
        p = sending.new_payload(self, peer, kind, body=caption, timer=timer, attachment=att)
        own = sending.own_secret_message(self, p, attachment=local)
        await sending.send_secret(self, p, show=own)
        return own

    async def send_sticker(self, peer: str, sticker_id: str, *, secret: bool = False) -> Message:
        self._check_peer(peer)
        pack = stickers.load_pack()
        try:
            ref = f"{pack.name}/{pack.get(sticker_id).id}"
        except stickers.UnknownSticker as exc:
            raise UsageError(f"{exc}; `veil stickers` lists them") from exc
        if not secret:
            return await sending.send_regular(self, peer, kind="sticker", sticker=ref)
        p = sending.new_payload(self, peer, "sticker", sticker=ref, timer=timers.thread_timer(self, peer))
        own = sending.own_secret_message(self, p)
        await sending.send_secret(self, p, show=own)
        return own

    def _check_peer(self, peer: str) -> None:
        if peer == self.handle:
            raise UsageError("you cannot start a conversation with yourself")

    async def set_timer(self, peer: str, seconds: int) -> None:
        """Set the secret thread's disappearing-message timer, for everyone in it."""
        if seconds not in timers.TIMERS:
            raise UsageError(f"disappearing messages can be set to {sorted(timers.TIMERS)} seconds")
        p = sending.new_payload(self, peer, "timer", body=str(seconds))
        await sending.send_secret(self, p)
        async with self.lock:
            timers.set_thread_timer(self, peer, seconds)
            self.notice(peer, "timer", timers.timer_notice("You", seconds), dedupe=p.message_id)
            self.store.commit()

    def timer(self, peer: str) -> int:
        return timers.thread_timer(self, peer)

    async def unsend(self, peer: str, message_id: str, *, secret: bool = False) -> None:
        """Remove one of your own messages, within 24 hours, from every device of both people."""
        record = self.store.get_message(message_id)
        if record is None or record.get("peer") != peer or record.get("is_secret") != secret:
            raise UsageError("there is no such message in this thread")
        if record["sender"] != self.handle:
            raise UsageError("you can only unsend your own messages")
        if self.clock() - int(record["sent_at"]) > inbox.UNSEND_WINDOW_MS:
            raise UsageError("messages can only be unsent within 24 hours of sending")
        if secret:
            p = sending.new_payload(self, peer, "unsend", ref=message_id)
            await sending.send_secret(self, p)
        else:
            await self.api.call("POST", f"/v1/threads/{peer}/messages/{message_id}/unsend", {})
        async with self.lock:
            attachments.delete_local(self, record.get("attachment"))
            self.store.delete_message(message_id, commit=False)
            self.notice(peer, "unsent", "You unsent a message.", secret=secret, dedupe="unsend-" + message_id)
            self.store.commit()

    async def mark_read(self, peer: str, *, secret: bool, receipt: bool = True) -> int:
        """The thread is shown: start countdowns and tell the sender; return how many were new."""
        async with self.lock:
            newly = timers.mark_read(self, peer, secret=secret)
        if newly and receipt:
            if secret:
                await sending.send_secret(self, sending.new_payload(self, peer, "read", body=",".join(newly)))
            else:
                await self.api.call("POST", f"/v1/threads/{peer}/events", {"kind": "read", "ref": ",".join(newly)})
        return len(newly)

    async def send_typing(self, peer: str, *, secret: bool) -> None:
        if secret:
            await sending.send_secret(self, sending.new_payload(self, peer, "typing"))
        else:
            await self.api.call("POST", f"/v1/threads/{peer}/events", {"kind": "typing", "ref": ""})

    def is_typing(self, peer: str, *, secret: bool) -> bool:
        return self.typing.get((peer, secret), 0) > self.clock()

    async def notify_screenshot(self, peer: str) -> None:
        """Tell the other person you took a screenshot of the secret thread (nothing can prevent one)."""
        p = sending.new_payload(self, peer, "screenshot")
        await sending.send_secret(self, p)
        async with self.lock:
            self.notice(peer, "screenshot", "You took a screenshot.", dedupe=p.message_id)
            self.store.commit()

    def expire(self, now: int | None = None) -> int:
        """Delete every message whose disappearing timer ran out (also those that ran out while closed)."""
        return timers.expire(self, now)

    def save_attachment(self, message_id: str, out: Path) -> Path:
        record = self.store.get_message(message_id)
        if record is None or not record.get("attachment"):
            raise UsageError("that message has no attachment on this device")
        return attachments.save(self, record["attachment"], Path(out))

    async def confirm_identity(self, peer: str) -> int:
        """Accept `peer`'s new identity key and send the messages held for them; return how many."""
        return await sending.confirm_identity(self, peer)

    # -- verification and reports --------------------------------------------------------------
    def safety_number(self, peer: str) -> str:
        """The 60-digit safety number shared with `peer` (the same on both sides)."""
        return self.verifications.safety_number(peer)

    def is_verified(self, peer: str) -> bool:
        return bool(self.directory.peer_record(peer).get("verified"))

    def mark_verified(self, peer: str, *, how: str = "safety number") -> None:
        rec = self.directory.peer_record(peer)
        if not rec.get("identity_key"):
            raise UsageError(f"no identity key known for {peer} yet")
        if not rec.get("verified"):
            rec["verified"] = True
            self.store.put(f"peer:{peer}", rec, commit=False)
            self.notice(peer, "verified", f"You marked {peer} as verified ({how}).")
            self.store.commit()

    async def report(self, peer: str, *, secret: bool, last: int = 0, message_ids: list[str] | None = None,
                     reason: str = "") -> dict[str, Any]:
        """Report messages from `peer` to the server's moderators (revealing only those)."""
        return await reports.report(self, peer, secret=secret, last=last, message_ids=message_ids,
                                    reason=reason)

    async def block(self, peer: str) -> None:
        await self.api.call("PUT", f"/v1/blocks/{peer}")

    async def unblock(self, peer: str) -> None:
        await self.api.call("DELETE", f"/v1/blocks/{peer}")

    async def blocked(self) -> list[str]:
        return [str(h) for h in (await self.api.call("GET", "/v1/blocks"))["blocked"]]

    # -- receiving ----------------------------------------------------------------------------
    async def process(self, envelopes: list[Envelope]) -> list[int]:
        """Decrypt and store envelopes; return the ids that may now be acknowledged."""
        done = await inbox.process(self, envelopes)
        self.expire()
        return done

    async def sync(self) -> int:
        """Fetch everything waiting on the server (REST), process and acknowledge; return the count."""
        total = 0
        while True:
            r = await self.api.fetch(limit=100)
            envs = [Envelope(id=int(e["id"]), kind=int(e["kind"]), sender=str(e["sender"]),
                             sender_device=str(e["sender_device"]), server_ts=int(e["server_ts"]),
                             olm_type=int(e["olm_type"]), body=b64decode(str(e["body"]), what="body"),
                             client_message_id=str(e.get("client_message_id", "")),
                             commitment=b64decode(str(e.get("commitment") or ""), what="commitment"),
                             franking_tag=b64decode(str(e.get("franking_tag") or ""), what="franking tag"))
                    for e in r["envelopes"]]
            if not envs:
                break
            done = await self.process(envs)
            if done:
                await self.api.ack(done)
            total += len(done)
            if len(done) < len(envs) or not r.get("more"):
                break
        if self.is_linked:
            await self.publish_keys()
        self.expire()
        return total

    async def load_history(self) -> int:
        """Fetch the whole readable history of regular threads (a new device sees it all)."""
        n = 0
        threads = (await self.api.call("GET", "/v1/threads"))["threads"]
        for t in threads:
            peer = str(t["peer"])
            before: str | None = None
            pages: list[list[dict[str, Any]]] = []
            while True:
                page = await self.api.history(peer, before=before, limit=100)
                msgs = list(page["messages"])
                if msgs:
                    pages.append(msgs)
                if not page.get("more") or not msgs:
                    break
                before = str(msgs[0]["message_id"])
            async with self.lock:
                for msgs in reversed(pages):
                    for raw in msgs:
                        raw = dict(raw)
                        att = raw.get("attachment")
                        m = RegularMessage(message_id=str(raw["message_id"]), sender=str(raw["sender"]),
                                           sender_device=str(raw.get("sender_device", "")),
                                           to=self.handle if raw["sender"] != self.handle else peer,
                                           text=str(raw.get("text", "")), ts=int(raw["ts"]),
                                           kind=str(raw.get("kind", "text")), sticker=str(raw.get("sticker", "")),
                                           attachment=msgspec.convert(att, Attachment) if att else None)
                        if not self.store.has_message(m.message_id):
                            await inbox.apply_regular(self, m)
                            n += 1
                self.store.commit()
        return n


class Thread:
    """One conversation as one device sees it: regular or secret, with one peer."""

    def __init__(self, device: Device, peer: str, secret: bool) -> None:
        self.device = device
        self.peer = peer
        self.is_secret = secret

    def messages(self) -> list[Message]:
        return self.device.messages(self.peer, secret=self.is_secret)

    @property
    def timer(self) -> int:
        return self.device.timer(self.peer) if self.is_secret else 0

    async def send(self, text: str) -> Message:
        return await self.device.send_text(self.peer, text, secret=self.is_secret)

    async def send_media(self, path: Path, caption: str = "") -> Message:
        return await self.device.send_media(self.peer, path, secret=self.is_secret, caption=caption)

    async def send_sticker(self, sticker_id: str) -> Message:
        return await self.device.send_sticker(self.peer, sticker_id, secret=self.is_secret)

    async def set_timer(self, seconds: int) -> None:
        if not self.is_secret:
            raise UsageError("disappearing messages are a feature of secret conversations")
        await self.device.set_timer(self.peer, seconds)

    async def unsend(self, message_id: str) -> None:
        await self.device.unsend(self.peer, message_id, secret=self.is_secret)

    async def mark_read(self) -> int:
        return await self.device.mark_read(self.peer, secret=self.is_secret)

    async def notify_screenshot(self) -> None:
        if not self.is_secret:
            raise UsageError("screenshot notices are sent in secret conversations")
        await self.device.notify_screenshot(self.peer)

    async def confirm_identity(self) -> int:
        return await self.device.confirm_identity(self.peer)
