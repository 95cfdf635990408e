"""Short Authentication String (SAS) verification over vodozemac, as a sans-I/O state machine.

This is the second and last module that imports vodozemac (`olm.py` is the first): SAS is a
separate primitive (an ephemeral X25519 exchange, HKDF to emoji, HMAC of keys), and keeping it
apart keeps `olm.py` about sessions. As there, no binding type leaves this module: callers see
base64 strings, `(emoji, name)` pairs and our own errors.

Flow (Matrix `m.sas.v1`, which vodozemac implements)::

    created ──receive_key──▶ keys_exchanged ──confirm──▶ confirmed
       │                          │                          │
       └──────────cancel / any failure───────────────────────┴──▶ cancelled (final)

- Each side sends `public_key`, then calls `receive_key` with the other's key. The SAS info
  string is `info|starter key|accepter key`, so both sides hash the same bytes and each
  exchanged key is bound into the emoji (`we_started` says which key is whose).
- Both people compare the 7 emoji; if they match, the user calls `confirm()`; if not, `cancel()`.
- Only then (state `confirmed`) does a device `mac()` the keys it vouches for and
  `verify_mac()` the other side's MACs: a device must never vouch for keys the user has not
  compared. A MAC that arrives earlier is held by the caller until confirmation.
- An illegal step raises `IllegalState`; a failed `receive_key` or `verify_mac` cancels the
  object, and a cancelled object refuses everything after (it cannot be "retried" into trust).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import vodozemac as _vz

from veil.protocol.errors import IllegalState, MalformedData, Mismatch

__all__ = ["EMOJI_TABLE", "SasState", "SasVerification"]

# The Matrix SAS emoji table (matrix-spec data-definitions/sas-emoji.json): index → (emoji, name).
EMOJI_TABLE: Final[tuple[tuple[str, str], ...]] = (
    ("🐶", "Dog"), ("🐱", "Cat"), ("🦁", "Lion"), ("🐎", "Horse"),
    ("🦄", "Unicorn"), ("🐷", "Pig"), ("🐘", "Elephant"), ("🐰", "Rabbit"),
    ("🐼", "Panda"), ("🐓", "Rooster"), ("🐧", "Penguin"), ("🐢", "Turtle"),
    ("🐟", "Fish"), ("🐙", "Octopus"), ("🦋", "Butterfly"), ("🌷", "Flower"),
    ("🌳", "Tree"), ("🌵", "Cactus"), ("🍄", "Mushroom"), ("🌏", "Globe"),
    ("🌙", "Moon"), ("\u2601\ufe0f", "Cloud"), ("🔥", "Fire"), ("🍌", "Banana"),
    ("🍎", "Apple"), ("🍓", "Strawberry"), ("🌽", "Corn"), ("🍕", "Pizza"),
    ("🎂", "Cake"), ("\u2764\ufe0f", "Heart"), ("😀", "Smiley"), ("🤖", "Robot"),
    ("🎩", "Hat"), ("👓", "Glasses"), ("🔧", "Spanner"), ("🎅", "Santa"),
    ("👍", "Thumbs Up"), ("\u2602\ufe0f", "Umbrella"), ("\u231b", "Hourglass"), ("\u23f0", "Clock"),
    ("🎁", "Gift"), ("💡", "Light Bulb"), ("📕", "Book"), ("\u270f\ufe0f", "Pencil"),
    ("📎", "Paperclip"), ("\u2702\ufe0f", "Scissors"), ("🔒", "Lock"), ("🔑", "Key"),
    ("🔨", "Hammer"), ("\u260e\ufe0f", "Telephone"), ("🏁", "Flag"), ("🚂", "Train"),
    ("🚲", "Bicycle"), ("\u2708\ufe0f", "Aeroplane"), ("🚀", "Rocket"), ("🏆", "Trophy"),
    ("\u26bd", "Ball"), ("🎸", "Guitar"), ("🎺", "Trumpet"), ("🔔", "Bell"),
    ("\u2693", "Anchor"), ("🎧", "Headphones"), ("📁", "Folder"), ("📌", "Pin"),
)


class SasState(StrEnum):
    CREATED = "created"
    KEYS_EXCHANGED = "keys_exchanged"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


# (state, step) → next state; a step absent here is illegal in that state.
_TRANSITIONS: Final[dict[tuple[SasState, str], SasState]] = {
    (SasState.CREATED, "receive_key"): SasState.KEYS_EXCHANGED,
    (SasState.KEYS_EXCHANGED, "emoji"): SasState.KEYS_EXCHANGED,
    (SasState.KEYS_EXCHANGED, "confirm"): SasState.CONFIRMED,
    (SasState.CONFIRMED, "emoji"): SasState.CONFIRMED,
    (SasState.CONFIRMED, "mac"): SasState.CONFIRMED,
    (SasState.CONFIRMED, "verify_mac"): SasState.CONFIRMED,
    (SasState.CREATED, "cancel"): SasState.CANCELLED,
    (SasState.KEYS_EXCHANGED, "cancel"): SasState.CANCELLED,
    (SasState.CONFIRMED, "cancel"): SasState.CANCELLED,
    (SasState.CANCELLED, "cancel"): SasState.CANCELLED,
}


class SasVerification:
    """One side of one SAS verification. Not reusable: make a new one per attempt."""

    __slots__ = ("_emoji", "_established", "_public_key", "_sas", "_state")

    def __init__(self) -> None:
        self._sas: _vz.Sas | None = _vz.Sas()
        self._public_key = str(self._sas.public_key.to_base64())
        self._established: _vz.EstablishedSas | None = None
        self._emoji: list[tuple[str, str]] = []
        self._state = SasState.CREATED

    @property
    def state(self) -> SasState:
        return self._state

    @property
    def public_key(self) -> str:
        """Our ephemeral Curve25519 key (unpadded base64), to send to the other side."""
        return self._public_key

    def _step(self, step: str) -> None:
        nxt = _TRANSITIONS.get((self._state, step))
        if nxt is None:
            raise IllegalState(f"cannot {step} a SAS verification that is {self._state}")
        self._state = nxt

    def _abort(self) -> None:
        self._state = SasState.CANCELLED
        self._sas = None
        self._established = None

    def receive_key(self, their_key_b64: str, *, we_started: bool, info: str) -> list[tuple[str, str]]:
        """Take the other side's public key; return the 7 (emoji, name) pairs to compare.

        `info` must be the same string on both sides (e.g. "VEIL_SAS_V1|<txn>|<handles and
        devices of starter then accepter>"); the two public keys are appended here.
        """
        self._step("receive_key")
        assert self._sas is not None
        try:
            if their_key_b64 == self._public_key:
                raise MalformedData("the other side sent back our own SAS key")
            their_key = _vz.Curve25519PublicKey.from_base64(their_key_b64)
            starter, accepter = (self._public_key, their_key_b64) if we_started else (their_key_b64,
                                                                                       self._public_key)
            self._established = self._sas.diffie_hellman(their_key)
            sas_bytes = self._established.bytes(f"{info}|{starter}|{accepter}")
            indices = bytes(sas_bytes.emoji_indices)  # bytes in the binary, a list in the stub
        except MalformedData:
            self._abort()
            raise
        except Exception as exc:  # the binding raises several exception types
            self._abort()
            raise MalformedData("the other side's SAS key is not valid") from exc
        self._sas = None  # a vodozemac Sas is single-use; drop the secret as soon as possible
        if len(indices) != 7 or max(indices) >= len(EMOJI_TABLE):
            self._abort()
            raise MalformedData("unexpected SAS output")
        self._emoji = [EMOJI_TABLE[i] for i in indices]
        return list(self._emoji)

    @property
    def emoji(self) -> list[tuple[str, str]]:
        self._step("emoji")
        return list(self._emoji)

    def confirm(self) -> None:
        """The user saw the same emoji on both screens."""
        self._step("confirm")

    def cancel(self) -> None:
        """The emoji differ, the user gave up, or the other side cancelled. Final."""
        self._step("cancel")
        self._abort()

    def mac(self, key_id: str, key_b64: str, info: str) -> str:
        """MAC one key we vouch for (e.g. our identity key), for the other side to verify.

        `info` is the MAC context from the sender's point of view; the MAC covers `info + key_id`,
        so a MAC cannot be moved to another key id.
        """
        self._step("mac")
        assert self._established is not None
        return str(self._established.calculate_mac(key_b64, info + key_id))

    def verify_mac(self, key_id: str, key_b64: str, info: str, mac_b64: str) -> None:
        """Check the other side's MAC of one of its keys; on mismatch raise Mismatch and cancel."""
        self._step("verify_mac")
        assert self._established is not None
        try:
            self._established.verify_mac(key_b64, info + key_id, mac_b64)
        except Exception as exc:
            self._abort()
            raise Mismatch("the SAS MAC does not match: verification cancelled") from exc
