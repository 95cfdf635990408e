from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.protocol.attachments import (
    HEADER_SIZE,
    MAGIC,
    AttachmentDecryptor,
    AttachmentEncryptor,
    _derive,
    decrypt_bytes,
    digest,
    encrypt_bytes,
    new_attachment_key,
    sealed_size,
    verify_digest,
)
from veil.protocol.errors import DecryptionFailed, IllegalState
from veil.protocol.keys import aesgcm_decrypt

CS = 32  # a small chunk size makes chunk boundaries cheap to reach


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


_EDGES = [0, 1, CS - 1, CS, CS + 1, 2 * CS, 3 * CS + 1]
_CUTS = st.lists(st.integers(0, 10_000), max_size=6)


@settings(max_examples=150, deadline=None)
@given(size=st.one_of(st.integers(0, 5 * CS + 1), st.sampled_from(_EDGES)), cuts=_CUTS, ct_cuts=_CUTS)
def test_round_trip_streaming(size: int, cuts: list[int], ct_cuts: list[int]) -> None:
    key = new_attachment_key()
    data = bytes(i % 251 for i in range(size))
    enc = AttachmentEncryptor(key, chunk_size=CS)
    ct = enc.header() + b"".join(enc.update(p) for p in _split(data, cuts)) + enc.finalize()
    assert ct == encrypt_bytes(key, data, chunk_size=CS)  # deterministic: nonces come from the index
    assert enc.digest == digest(ct)
    n_chunks = max(1, -(-size // CS))
    assert len(ct) == HEADER_SIZE + size + 16 * n_chunks
    dec = AttachmentDecryptor(key)
    out = b"".join(dec.update(p) for p in _split(ct, ct_cuts)) + dec.finalize()
    assert out == data


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * 65536])
def test_round_trip_default_chunks(size: int) -> None:
    key = new_attachment_key()
    data = bytes(size)
    ct = encrypt_bytes(key, data)
    assert decrypt_bytes(key, ct, expected_digest=digest(ct)) == data


def _three_chunks() -> tuple[bytes, bytes, list[bytes], bytes]:
    key = new_attachment_key()
    data = bytes(range(256))[: 2 * CS + 5]
    ct = encrypt_bytes(key, data, chunk_size=CS)
    header, body = ct[:HEADER_SIZE], ct[HEADER_SIZE:]
    chunks = [body[i:i + CS + 16] for i in range(0, len(body), CS + 16)]
    assert len(chunks) == 3
    return key, header, chunks, data


def _fails(key: bytes, ct: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        decrypt_bytes(key, ct)


def test_tampering_is_detected() -> None:
    key, header, chunks, _ = _three_chunks()
    ct = header + b"".join(chunks)
    for i in range(len(ct)):  # every single-bit flip, header included
        _fails(key, ct[:i] + bytes([ct[i] ^ 0x01]) + ct[i + 1:])


def test_truncation_is_detected() -> None:
    key, header, chunks, _ = _three_chunks()
    ct = header + b"".join(chunks)
    for n in range(len(ct)):
        _fails(key, ct[:n])
    _fails(key, header + chunks[0] + chunks[1])  # cut exactly at a chunk boundary


def test_reordering_is_detected() -> None:
    key, header, chunks, _ = _three_chunks()
    _fails(key, header + chunks[1] + chunks[0] + chunks[2])
    _fails(key, header + chunks[0] + chunks[0] + chunks[2])


def test_extension_is_detected() -> None:
    key, header, chunks, _ = _three_chunks()
    _fails(key, header + b"".join(chunks) + b"\x00")
    _fails(key, header + b"".join(chunks) + chunks[2])
    other = encrypt_bytes(key, b"more", chunk_size=CS)  # same key, another file's last chunk
    _fails(key, header + b"".join(chunks) + other[HEADER_SIZE:])


def test_wrong_key_and_bad_header() -> None:
    key, header, chunks, _ = _three_chunks()
    ct = header + b"".join(chunks)
    _fails(new_attachment_key(), ct)
    _fails(key[:16], ct)
    _fails(key, b"VEILATT2" + ct[8:])
    for size in (0, 2**31):
        _fails(key, MAGIC + struct.pack(">I", size) + ct[12:])


def test_rewritten_commitment_does_not_help() -> None:
    k1, k2 = new_attachment_key(), new_attachment_key()
    ct = encrypt_bytes(k1, b"for the abuse reviewer's eyes", chunk_size=CS)
    forged = ct[:12] + _derive(k2)[1] + ct[HEADER_SIZE:]
    _fails(k2, forged)
    _fails(k1, forged)


# --- Key commitment, demonstrated with a real "invisible salamanders" GCM collision -----------
# GHASH arithmetic in GF(2^128) with GCM's bit order (NIST SP 800-38D, algorithm 1).

_R = 0xE1 << 120


def _gmul(x: int, y: int) -> int:
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _ginv(x: int) -> int:
    result, base, e = 1 << 127, x, 2**128 - 2  # 1 << 127 is the field's one
    while e:
        if e & 1:
            result = _gmul(result, base)
        base = _gmul(base, base)
        e >>= 1
    return result


def _ghash(h: int, aad: bytes, ct: bytes) -> int:
    def blocks(b: bytes) -> list[int]:
        b += b"\x00" * (-len(b) % 16)
        return [int.from_bytes(b[i:i + 16], "big") for i in range(0, len(b), 16)]

    y = 0
    for x in [*blocks(aad), *blocks(ct), (len(aad) * 8 << 64) | (len(ct) * 8)]:
        y = _gmul(y ^ x, h)
    return y


def _aes_block(key: bytes, block: bytes) -> int:
    # Tests may reach for raw AES: this builds the attack that src/ must withstand.
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return int.from_bytes(e.update(block) + e.finalize(), "big")


def test_key_commitment_defeats_a_two_key_gcm_collision() -> None:
    k1, k2 = new_attachment_key(), new_attachment_key()
    (e1, c1), (e2, _) = _derive(k1), _derive(k2)
    header = MAGIC + struct.pack(">I", CS) + c1
    nonce = bytes(11) + b"\x01"  # chunk 0, last
    h1, h2 = _aes_block(e1, bytes(16)), _aes_block(e2, bytes(16))
    s1, s2 = _aes_block(e1, nonce + b"\x00\x00\x00\x01"), _aes_block(e2, nonce + b"\x00\x00\x00\x01")
    # With a one-block ciphertext C, tag_k = S_k ^ GHASH_k(header, 0) ^ C·H_k²: solve tag_1 = tag_2.
    rhs = s1 ^ s2 ^ _ghash(h1, header, bytes(16)) ^ _ghash(h2, header, bytes(16))
    c = _gmul(rhs, _ginv(_gmul(h1, h1) ^ _gmul(h2, h2)))
    tag = s1 ^ _ghash(h1, header, c.to_bytes(16, "big"))
    chunk = c.to_bytes(16, "big") + tag.to_bytes(16, "big")
    # Plain AES-GCM accepts this chunk under both keys, showing two different plaintexts...
    p1, p2 = aesgcm_decrypt(e1, nonce, chunk, header), aesgcm_decrypt(e2, nonce, chunk, header)
    assert p1 != p2
    # ...but the attachment format opens it only under the key its header commits to.
    assert decrypt_bytes(k1, header + chunk) == p1
    _fails(k2, header + chunk)
    _fails(k2, header[:12] + _derive(k2)[1] + chunk)  # committing to k2 changes the AAD


def test_digest_check() -> None:
    key = new_attachment_key()
    ct = encrypt_bytes(key, b"photo")
    verify_digest(ct, hashlib.sha256(ct).digest())
    with pytest.raises(DecryptionFailed):
        decrypt_bytes(key, ct, expected_digest=bytes(32))


def test_state_machine_misuse() -> None:
    key = new_attachment_key()
    enc = AttachmentEncryptor(key)
    with pytest.raises(IllegalState):
        enc.update(b"x")
    with pytest.raises(IllegalState):
        _ = enc.digest
    header = enc.header()
    with pytest.raises(IllegalState):
        enc.header()
    ct = header + enc.finalize()
    with pytest.raises(IllegalState):
        enc.finalize()
    dec = AttachmentDecryptor(key)
    with pytest.raises(DecryptionFailed):
        dec.update(ct[:HEADER_SIZE - 1] + bytes([ct[HEADER_SIZE - 1] ^ 0x01]) + ct[HEADER_SIZE:])
    with pytest.raises(IllegalState):  # a failed decryptor refuses further use
        dec.update(ct)
    with pytest.raises(ValueError):
        AttachmentEncryptor(key, chunk_size=0)


def test_64_mib_streams_with_bounded_buffers() -> None:
    key = new_attachment_key()
    piece = bytes(range(256)) * 4000 + b"odd"  # about 1 MiB, not a multiple of the chunk size
    total = 64 * 1024 * 1024
    enc, dec = AttachmentEncryptor(key), AttachmentDecryptor(key)
    h_in, h_out = hashlib.sha256(), hashlib.sha256()
    h_out.update(dec.update(enc.header()))
    sent = 0
    while sent < total:
        p = piece[: total - sent]
        h_in.update(p)
        sent += len(p)
        ct = enc.update(p)
        assert enc.buffered <= 64 * 1024
        for i in range(0, len(ct), 100_000):  # the network hands ciphertext over in odd slices
            h_out.update(dec.update(ct[i:i + 100_000]))
            assert dec.buffered <= 64 * 1024 + 16
    h_out.update(dec.update(enc.finalize()))
    h_out.update(dec.finalize())
    assert h_in.digest() == h_out.digest()


# --- update_into: the zero-copy form the pipelined client paths use ---------------------------

@settings(max_examples=150, deadline=None)
@given(size=st.one_of(st.integers(0, 6 * CS + 1), st.sampled_from(_EDGES)), cuts=_CUTS, ct_cuts=_CUTS,
       as_view=st.booleans())
def test_update_into_matches_update_for_any_split(size: int, cuts: list[int], ct_cuts: list[int],
                                                  as_view: bool) -> None:
    """One reused output buffer, inputs as bytes or memoryviews of any size: the same ciphertext
    and plaintext as `update`, and `sealed_size` predicts the length."""
    key = new_attachment_key()
    data = bytes(i % 253 for i in range(size))
    enc = AttachmentEncryptor(key, chunk_size=CS)
    out = bytearray(7)  # too small on purpose: it grows, never shrinks
    ct = enc.header()
    for p in _split(data, cuts):
        assert len(p) + enc.buffered <= CS or enc.output_size(len(p)) > 0
        with enc.update_into(memoryview(p) if as_view else p, out) as sealed:
            ct += bytes(sealed)
    ct += enc.finalize()
    assert ct == encrypt_bytes(key, data, chunk_size=CS)
    assert len(ct) == sealed_size(size, chunk_size=CS)
    assert enc.digest == digest(ct)
    dec = AttachmentDecryptor(key)
    out2 = bytearray()
    plain = b""
    for p in _split(ct, ct_cuts):
        with dec.update_into(memoryview(p) if as_view else p, out2) as got:
            plain += bytes(got)
        assert dec.buffered <= CS + 16
    assert plain + dec.finalize() == data


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=400), cuts=_CUTS, keep_header=st.booleans())
def test_hostile_bytes_only_ever_raise_decryption_failed(body: bytes, cuts: list[int], keep_header: bool) -> None:
    """Bytes from the network that were not made under this key: whatever their split, the
    decryptor returns nothing and fails with the single DecryptionFailed."""
    key = new_attachment_key()
    ct = (encrypt_bytes(key, b"", chunk_size=CS)[:HEADER_SIZE] if keep_header else b"") + body
    dec = AttachmentDecryptor(key)
    out = bytearray()
    with pytest.raises(DecryptionFailed):
        for p in _split(ct, cuts):
            with dec.update_into(p, out) as got:
                assert len(got) == 0  # a valid header, but no chunk of this key can follow
        dec.finalize()


def test_sealed_size() -> None:
    for n in (0, 1, 65535, 65536, 65537, 3 * 65536, 10**6):
        assert sealed_size(n) == len(encrypt_bytes(new_attachment_key(), bytes(n)))
    with pytest.raises(ValueError):
        sealed_size(-1)
