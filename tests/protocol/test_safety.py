from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.protocol.errors import MalformedData, Mismatch
from veil.protocol.keys import IdentityKeyPair
from veil.protocol.safety import QR_VERSION, format_groups, qr_payload, safety_number, verify_qr_payload

# libsignal-protocol-c tests/test_fingerprint.c (and libsignal rust/protocol/src/fingerprint.rs).
ALICE_IDENTITY = bytes.fromhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
BOB_IDENTITY = bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
ALICE_ID = b"+14152222222"
BOB_ID = b"+14153333333"
DISPLAYABLE = "300354477692869396892869876765458257569162576843440918079131"


def test_libsignal_vector() -> None:
    assert safety_number(ALICE_IDENTITY, ALICE_ID, BOB_IDENTITY, BOB_ID, iterations=5200) == DISPLAYABLE


def test_libsignal_vector_from_bobs_side() -> None:
    assert safety_number(BOB_IDENTITY, BOB_ID, ALICE_IDENTITY, ALICE_ID) == DISPLAYABLE


@settings(max_examples=20, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32),
       st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_symmetric_and_sixty_digits(k1: bytes, k2: bytes, h1: str, h2: str) -> None:
    a = safety_number(k1, h1.encode(), k2, h2.encode(), iterations=16)
    assert a == safety_number(k2, h2.encode(), k1, h1.encode(), iterations=16)
    assert len(a) == 60 and a.isdigit()


def test_a_different_key_changes_the_number() -> None:
    a, b, m = (IdentityKeyPair.generate().public_bytes for _ in range(3))
    assert safety_number(a, b"alice", b, b"bob") != safety_number(a, b"alice", m, b"bob")


def test_format_groups() -> None:
    text = format_groups(DISPLAYABLE)
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0] == "30035 44776 92869 39689"
    assert all(len(g) == 5 for line in lines for g in line.split())
    assert text.replace("\n", "").replace(" ", "") == DISPLAYABLE
    assert len(format_groups(DISPLAYABLE, per_line=6).splitlines()) == 2
    for bad in ("123", DISPLAYABLE[:-1] + "x", "٣" * 60):
        with pytest.raises(MalformedData):
            format_groups(bad)


def test_qr_verifies_both_ways() -> None:
    a, b = IdentityKeyPair.generate().public_bytes, IdentityKeyPair.generate().public_bytes
    shown_by_alice = qr_payload(QR_VERSION, a, b"alice", b, b"bob")
    verify_qr_payload(shown_by_alice, b, b"bob", a, b"alice")  # Bob scans Alice's screen
    shown_by_bob = qr_payload(QR_VERSION, b, b"bob", a, b"alice")
    verify_qr_payload(shown_by_bob, a, b"alice", b, b"bob")


def test_qr_detects_a_man_in_the_middle_on_either_side() -> None:
    a, b, m = (IdentityKeyPair.generate().public_bytes for _ in range(3))
    # Alice's device holds the attacker's key for Bob: Bob's scan of her screen fails...
    shown_by_alice = qr_payload(QR_VERSION, a, b"alice", m, b"bob")
    with pytest.raises(Mismatch):
        verify_qr_payload(shown_by_alice, b, b"bob", a, b"alice")
    # ...and so does the scan when Bob holds the attacker's key for Alice.
    shown = qr_payload(QR_VERSION, a, b"alice", b, b"bob")
    with pytest.raises(Mismatch):
        verify_qr_payload(shown, b, b"bob", m, b"alice")
    # Same keys, different handle: also refused.
    with pytest.raises(Mismatch):
        verify_qr_payload(shown, b, b"bob", a, b"mallory")


def test_qr_rejects_garbage_and_unknown_versions() -> None:
    a, b = IdentityKeyPair.generate().public_bytes, IdentityKeyPair.generate().public_bytes
    good = qr_payload(QR_VERSION, a, b"alice", b, b"bob")
    for bad in (b"", good[:-1], b"XYZ" + good[3:], good[:3] + b"\x09" + good[4:]):
        with pytest.raises(MalformedData):
            verify_qr_payload(bad, b, b"bob", a, b"alice")
    with pytest.raises(MalformedData):
        qr_payload(2, a, b"alice", b, b"bob")
