"""`Device`: one device of one account — keys, sessions, trust, threads and messages.

Every front end (CLI, web app, tests) uses this class. It is async inside; storage is a
small local SQLite file whose values are all encrypted (see store.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from veil.client.api import ServerAPI
from veil.client.directory import Directory
from veil.client.errors import IdentityChanged, NotSetUp, ServerRejected, ServerUnavailable, UsageError
from veil.client.models import Message, ThreadSummary, thread_key
from veil.client.sessions import Sessions
from veil.client.store import Store
from veil.protocol.devicelist import DeviceEntry, DeviceList, sign_device_list
from veil.protocol.encoding import b64decode, b64encode
from veil.protocol.errors import DecryptionFailed, MalformedData
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.olm import OlmAccount
from veil.protocol.payload import SecretPayload, decode_payload, decode_regular, encode_payload
from veil.protocol.prekeys import prekey_message
from veil.protocol.wire import KIND_REGULAR, KIND_SECRET, Envelope

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
        self.directory = Directory(store, self.api, self.handle, self._identity_public(), self._notice)
        self.lock = asyncio.Lock()
        self._listeners: list[Callable[[Message], None]] = []
        self._context_peer = ""

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
                       display_name: str = "", device_name: str = "first device") -> Device:
        """Create an account, its identity key, this first device and the first device list."""
        identity = IdentityKeyPair.generate()
        api = ServerAPI(server)
        try:
            await api.register(handle, display_name or handle, password, identity.public_b64)
        finally:
            await api.aclose()
        device = await cls._login(profile, server, handle, password, passphrase, device_name, identity)
        await device._publish_device_list([device._own_entry()], version=1)
        return device

    @classmethod
    async def login(cls, profile: Path, server: str, handle: str, password: str, passphrase: str, *,
                    device_name: str = "new device") -> Device:
        """Log a new device in; it can read regular threads, and secret ones once linked."""
        return await cls._login(profile, server, handle, password, passphrase, device_name, None)

    @classmethod
    async def _login(cls, profile: Path, server: str, handle: str, password: str, passphrase: str,
                     device_name: str, identity: IdentityKeyPair | None) -> Device:
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
        device = cls(profile, store, state)
        await device.publish_keys()
        return device

    @classmethod
    async def open(cls, profile: Path, passphrase: str, *, server: str | None = None) -> Device:
        store = Store.open(profile, passphrase)
        state = store.get("device")
        if not state:
            store.close()
            raise NotSetUp(f"{profile} holds no device yet: register, log in or link first")
        state = dict(state)
        if server and server != state["server"]:
            state["server"] = server
            store.put("device", state)
        return cls(profile, store, state)

    async def close(self) -> None:
        await self.api.aclose()
        self.store.close()

    def _save_state(self) -> None:
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
        self._save_state()  # keep the private halves before the server can hand them out
        self.store.commit()
        total = await self.api.upload_keys([self._signed_key(k, v, fallback=False) for k, v in keys.items()],
                                           fallback)
        self.account.mark_keys_as_published()
        self._state["fallback_published"] = True
        self._save_state()
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
        self.directory = Directory(self.store, self.api, self.handle, identity.public_b64, self._notice)
        self._save_state()
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
        index: dict[str, Any] = self.store.get("threads") or {}
        out = [ThreadSummary(peer=v["peer"], is_secret=v["secret"], last_ts=v["last_ts"],
                             last_text=v["last_text"]) for v in index.values()]
        return sorted(out, key=lambda t: t.last_ts, reverse=True)

    def messages(self, peer: str, *, secret: bool) -> list[Message]:
        return [Message.from_record(r) for r in self.store.messages(thread_key(peer, secret))]

    def add_listener(self, callback: Callable[[Message], None]) -> None:
        """Call `callback` with every message or notice stored from now on."""
        self._listeners.append(callback)

    def _store_message(self, m: Message, *, commit: bool = False) -> bool:
        key = thread_key(m.peer, m.is_secret)
        if not self.store.add_message(key, m.id, m.to_record(), commit=False):
            return False
        index: dict[str, Any] = dict(self.store.get("threads") or {})
        index[key] = {"peer": m.peer, "secret": m.is_secret, "last_ts": m.sent_at, "last_text": m.text[:80]}
        self.store.put("threads", index, commit=commit)
        for cb in self._listeners:
            cb(m)
        return True

    def _notice(self, peer: str, code: str, text: str, *, secret: bool = True) -> None:
        if peer == self.handle and self._context_peer:
            peer = self._context_peer
        self._store_message(Message(id="notice-" + uuid.uuid4().hex, peer=peer, is_secret=secret,
                                    kind="notice", sender="", sender_device="", text=text,
                                    sent_at=self.clock(), notice=code))
        if code == "identity_changed" and secret:
            self._notice(peer, code, text, secret=False)

    # -- sending ------------------------------------------------------------------------------
    async def send_text(self, peer: str, text: str, *, secret: bool = False) -> Message:
        if not text:
            raise UsageError("a message needs some text")
        if peer == self.handle:
            raise UsageError("you cannot start a conversation with yourself")
        if not secret:
            return await self._send_regular(peer, text)
        payload = SecretPayload(message_id=uuid.uuid4().hex, sender=self.handle, sender_device=self.device_id,
                                to=peer, sent_at=self.clock(), kind="text", body=text)
        return await self._send_secret(payload)

    async def _send_regular(self, peer: str, text: str) -> Message:
        client_id = uuid.uuid4().hex
        r = await self.api.send_regular(peer, client_id, text)
        m = Message(id=str(r["message_id"]), peer=peer, is_secret=False, kind="text", sender=self.handle,
                    sender_device=self.device_id, text=text, sent_at=int(r["server_ts"]))
        async with self.lock:
            self._store_message(m, commit=True)
        return m

    async def _send_secret(self, payload: SecretPayload) -> Message:
        if not self.is_linked:
            raise UsageError("this device is not linked yet: link it from one of your other devices first")
        peer = payload.to
        m = Message(id=payload.message_id, peer=peer, is_secret=True, kind="text", sender=self.handle,
                    sender_device=self.device_id, text=payload.body, sent_at=payload.sent_at)
        async with self.lock:
            self._context_peer = peer
            try:
                await self._deliver_secret(payload)
            except IdentityChanged:
                held = dict(self.store.get(f"held:{peer}") or {})
                held[payload.message_id] = encode_payload(payload)
                self.store.put(f"held:{peer}", held, commit=False)
                self._store_message(dataclasses.replace(m, status="held"))
                self.store.commit()
                raise
            finally:
                self._context_peer = ""
            self._store_message(m)
            self.store.commit()
        return m

    async def _deliver_secret(self, payload: SecretPayload) -> int:
        """Encrypt `payload` for every trusted device of both people and hand it to the server."""
        peer = payload.to
        plaintext = encode_payload(payload)
        for attempt in range(4):
            them = await self.directory.get(peer, refresh=attempt > 0)
            mine = await self.directory.get(self.handle, refresh=attempt > 0)
            targets = [(peer, d) for d in them.devices]
            targets += [(self.handle, d) for d in mine.devices if d.device_id != self.device_id]
            failed = await self.sessions.ensure(self.api, targets)
            envelopes = []
            for handle, d in targets:
                if (handle, d.device_id) in failed:
                    continue
                olm_type, body = self.sessions.encrypt(d.curve25519, plaintext)
                envelopes.append({"handle": handle, "device_id": d.device_id, "olm_type": olm_type,
                                  "body": b64encode(body)})
            self.store.commit()  # session state advanced: keep it before the network call
            skipped = [{"handle": peer, "device_id": x} for x in them.untrusted]
            skipped += [{"handle": self.handle, "device_id": x} for x in mine.untrusted
                        if x != self.device_id]
            skipped += [{"handle": h, "device_id": x} for h, x in failed]
            try:
                r = await self.api.send({"client_message_id": payload.message_id + f".{attempt}",
                                         "recipient": peer, "envelopes": envelopes, "skipped": skipped})
                return int(r["server_ts"])
            except ServerRejected as exc:
                if exc.status == 409 and exc.code == "device_mismatch" and attempt < 3:
                    continue
                raise
        raise ServerUnavailable("the server kept disagreeing about the device lists")  # pragma: no cover

    async def confirm_identity(self, peer: str) -> int:
        """Accept `peer`'s new identity key and send the messages held for them; return how many."""
        async with self.lock:
            if not self.directory.confirm_identity(peer):
                return 0
            self._notice(peer, "identity_confirmed", f"You accepted {peer}'s new identity key.")
            held: dict[str, bytes] = dict(self.store.get(f"held:{peer}") or {})
            self.store.commit()
            sent = 0
            for mid, raw in held.items():
                self._context_peer = peer
                try:
                    await self._deliver_secret(decode_payload(raw))
                finally:
                    self._context_peer = ""
                for r in self.store.messages(thread_key(peer, True)):
                    if r["id"] == mid:
                        self.store.update_message(mid, {**r, "status": "sent"})
                sent += 1
            self.store.delete(f"held:{peer}")
        return sent

    # -- receiving ----------------------------------------------------------------------------
    async def process(self, envelopes: list[Envelope]) -> list[int]:
        """Decrypt and store envelopes; return the ids that may now be acknowledged."""
        done: list[int] = []
        async with self.lock:
            for env in envelopes:
                try:
                    if env.kind == KIND_SECRET:
                        await self._receive_secret(env)
                    elif env.kind == KIND_REGULAR:
                        self._receive_regular(env)
                    else:
                        log.warning("envelope %d has unknown kind %d; dropped", env.id, env.kind)
                except ServerUnavailable:
                    break  # keep the rest queued: they come again
                done.append(env.id)
            if self.sessions.account_dirty:
                self.sessions.account_dirty = False
                self._save_state()
            self.store.commit()
        return done

    def _receive_regular(self, env: Envelope) -> None:
        try:
            m = decode_regular(env.body)
        except MalformedData:
            self._notice(env.sender, "unreadable", f"A message from {env.sender} could not be read.",
                         secret=False)
            return
        peer = m.to if m.sender == self.handle else m.sender
        self._store_message(Message(id=m.message_id, peer=peer, is_secret=False, kind="text", sender=m.sender,
                                    sender_device=m.sender_device, text=m.text, sent_at=m.ts,
                                    status="sent" if m.sender == self.handle else "received"))

    async def _receive_secret(self, env: Envelope) -> None:
        sender = env.sender
        if not self.store.mark_seen(hashlib.sha256(env.body).digest(), commit=False):
            log.info("envelope %d repeats one already processed; ignored", env.id)
            return
        if self.identity is None:
            return  # not linked yet: nothing for this device can be trusted
        try:
            peer_devices = await self.directory.get(sender)
            entry = peer_devices.entry(env.sender_device)
            if entry is None:
                entry = (await self.directory.get(sender, refresh=True)).entry(env.sender_device)
        except IdentityChanged:
            entry = None
        except ServerRejected:
            entry = None
        if entry is None:
            self._notice(sender, "unverified_sender",
                         f"A message from {sender} was dropped: it came from a device ({env.sender_device}) "
                         f"that is not in {sender}'s signed device list.")
            return
        try:
            plaintext = self.sessions.decrypt(entry.curve25519, env.olm_type, env.body)
        except DecryptionFailed:
            self._notice(sender, "decrypt_failed", f"A message from {sender} could not be decrypted.")
            return
        try:
            p = decode_payload(plaintext)
        except MalformedData:
            self._notice(sender, "unreadable", f"A message from {sender} could not be read.")
            return
        if p.sender != sender or p.sender_device != env.sender_device or (
                sender != self.handle and p.to != self.handle):
            self._notice(sender, "unverified_sender",
                         f"A message claiming to be from {p.sender} could not be verified and was dropped.")
            return
        peer = p.to if sender == self.handle else sender
        if p.kind == "text":
            self._store_message(Message(id=p.message_id, peer=peer, is_secret=True, kind="text",
                                        sender=sender, sender_device=p.sender_device, text=p.body,
                                        sent_at=p.sent_at,
                                        status="sent" if sender == self.handle else "received"))

    async def sync(self) -> int:
        """Fetch everything waiting on the server (REST), process and acknowledge; return the count."""
        total = 0
        while True:
            r = await self.api.fetch(limit=100)
            envs = [Envelope(id=int(e["id"]), kind=int(e["kind"]), sender=str(e["sender"]),
                             sender_device=str(e["sender_device"]), server_ts=int(e["server_ts"]),
                             olm_type=int(e["olm_type"]), body=b64decode(str(e["body"]), what="body"),
                             client_message_id=str(e.get("client_message_id", "")))
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
        return total


class Thread:
    """One conversation as one device sees it: regular or secret, with one peer."""

    def __init__(self, device: Device, peer: str, secret: bool) -> None:
        self.device = device
        self.peer = peer
        self.is_secret = secret

    def messages(self) -> list[Message]:
        return self.device.messages(self.peer, secret=self.is_secret)

    async def send(self, text: str) -> Message:
        return await self.device.send_text(self.peer, text, secret=self.is_secret)

    async def confirm_identity(self) -> int:
        return await self.device.confirm_identity(self.peer)
