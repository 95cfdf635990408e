"""Attachment encryption: streaming, chunked, key-committing AES-256-GCM (sans-I/O).

Format::

    header  = b"VEILATT1" ‖ chunk_size (u32 BE) ‖ commitment (32 bytes)
    chunk_i = AES-256-GCM(enc_key, nonce_i, plaintext_i, aad=header)     (plaintext_i ≤ chunk_size)
    nonce_i = i as 11-byte big-endian ‖ last-chunk flag (1 byte: 0 or 1)

    enc_key    = HKDF-SHA256(K, salt="", info="veil attachment v1 aes-256-gcm")
    commitment = HKDF-SHA256(K, salt="", info="veil attachment v1 key commitment")

K is a fresh 32-byte key per attachment, sent inside the end-to-end encrypted message with the
SHA-256 `digest` of the whole ciphertext; the file itself goes to the server's blob store.

Why each piece:

- **STREAM** (Hoang–Reyhanitabar–Rogaway–Vizár): the index in the nonce stops reordering, and
  the last-chunk flag stops truncation at a chunk boundary and extension after the end. Every
  chunk but the last holds exactly `chunk_size` bytes; the last holds 0..chunk_size (an empty
  file is one empty last chunk), so there is exactly one valid split of any ciphertext.
- **Key commitment**: GCM is not committing, so one ciphertext can be made to open under two
  keys ("invisible salamanders", Dodis et al. 2018; Albertini et al. 2020): a sender could show
  the server's abuse reviewer one picture and the recipient another. The commitment is a
  one-way function of K, checked (constant time) before any chunk is opened, so a ciphertext
  commits to the single K its header names. Being in the AAD, it cannot be swapped either.
- **Bounded memory**: both directions keep at most one sealed chunk buffered between calls,
  so a 1 GiB file streams through in 64 KiB steps. The decryptor refuses a header whose
  `chunk_size` exceeds `MAX_CHUNK_SIZE`, so a hostile header cannot make it buffer more.
  `update_into` seals or opens straight from the caller's buffer into a reused output buffer
  (AES-GCM `encrypt_into`/`decrypt_into`): no per-chunk copies, no fresh buffer per call.

Every failure is the single `DecryptionFailed` (Fernet's rule): wrong key, bad magic, a bad
tag, truncation and trailing bytes look the same to the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from veil.protocol.errors import DecryptionFailed, IllegalState
from veil.protocol.keys import hkdf, random_bytes

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "HEADER_SIZE",
    "MAX_CHUNK_SIZE",
    "AttachmentDecryptor",
    "AttachmentEncryptor",
    "decrypt_bytes",
    "digest",
    "encrypt_bytes",
    "new_attachment_key",
    "sealed_size",
    "verify_digest",
]

MAGIC = b"VEILATT1"
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 4 * 1024 * 1024
HEADER_SIZE = len(MAGIC) + 4 + 32
TAG_SIZE = 16
KEY_SIZE = 32

_INFO_ENC = b"veil attachment v1 aes-256-gcm"
_INFO_COMMIT = b"veil attachment v1 key commitment"
_MAX_INDEX = 2 ** 88 - 1


def new_attachment_key() -> bytes:
    """A fresh random attachment key K (never reuse one for two files)."""
    return random_bytes(KEY_SIZE)


def _derive(key: bytes) -> tuple[bytes, bytes]:
    if len(key) != KEY_SIZE:
        raise DecryptionFailed("could not decrypt")
    return hkdf(key, salt=b"", info=_INFO_ENC), hkdf(key, salt=b"", info=_INFO_COMMIT)


def _nonce(index: int, last: bool) -> bytes:
    if index > _MAX_INDEX:
        raise DecryptionFailed("could not decrypt")  # unreachable in practice: 2**88 chunks
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def digest(ciphertext: bytes) -> bytes:
    """SHA-256 of the whole ciphertext: sent with K, checked before decrypting anything."""
    return hashlib.sha256(ciphertext).digest()


def verify_digest(ciphertext: bytes, expected: bytes) -> None:
    """Raise DecryptionFailed unless `ciphertext` hashes to `expected` (constant time)."""
    if not hmac.compare_digest(digest(ciphertext), expected):
        raise DecryptionFailed("could not decrypt")


Buffer = bytes | bytearray | memoryview


class AttachmentEncryptor:
    """Encrypt a stream: `header()` first, then `update(data)` any number of times, then `finalize()`.

    Concatenate every returned piece to get the ciphertext. `digest` is available after
    `finalize()`, computed on the way so the sender need not read a large file twice.

    `update` seals straight from the caller's buffer (no copy of whole chunks) into one output
    buffer per call, so large calls (a few MiB) cost little more than AES-GCM and SHA-256 do.
    """

    __slots__ = ("_aead", "_buf", "_chunk_size", "_commitment", "_digest", "_header", "_index",
                 "_state")

    def __init__(self, key: bytes, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("attachment keys are 32 bytes")
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be 1..{MAX_CHUNK_SIZE}")
        enc_key, self._commitment = _derive(key)
        self._aead = AESGCM(enc_key)
        self._chunk_size = chunk_size
        self._header = MAGIC + struct.pack(">I", chunk_size) + self._commitment
        self._buf = bytearray()
        self._index = 0
        self._digest = hashlib.sha256()
        self._state = "new"  # new → streaming → done

    @property
    def chunk_size(self) -> int:
        return self._chunk_size

    def header(self) -> bytes:
        if self._state != "new":
            raise IllegalState("header() comes first and only once")
        self._state = "streaming"
        self._digest.update(self._header)
        return self._header

    def _seal_into(self, plaintext: Buffer, out: memoryview, last: bool) -> None:
        self._aead.encrypt_into(_nonce(self._index, last), plaintext, self._header, out)
        self._index += 1

    def update(self, data: Buffer) -> bytearray:
        """Seal what `data` completes; return the sealed chunks (possibly empty)."""
        out = bytearray(self.output_size(len(data)))
        self.update_into(data, out)
        return out

    def output_size(self, n: int) -> int:
        """How many sealed bytes `update` returns for `n` more plaintext bytes."""
        total = len(self._buf) + n
        return ((total - 1) // self._chunk_size if total > self._chunk_size else 0) * (self._chunk_size + TAG_SIZE)

    def update_into(self, data: Buffer, out: bytearray) -> memoryview:
        """Like `update`, but seal into `out` (grown when too small, never shrunk) and return a
        view of the sealed part. Reusing one `out` spares a large allocation per call; release
        the returned view before the next call."""
        if self._state != "streaming":
            raise IllegalState("update() needs header() first and cannot follow finalize()")
        cs, ss = self._chunk_size, self._chunk_size + TAG_SIZE
        src = memoryview(data).cast("B")
        need = self.output_size(len(src))
        # Keep back a full chunk until more data arrives: only finalize() knows which is last.
        n = need // ss
        if n == 0:
            self._buf += src
            return memoryview(out)[:0]
        if len(out) < need:
            out += bytes(need - len(out))
        view = memoryview(out)
        pos = 0  # into src
        done = 0
        if self._buf:  # complete the held-back chunk first
            pos = cs - len(self._buf)
            self._buf += src[:pos]
            self._seal_into(self._buf, view[:ss], last=False)
            done = 1
        for i in range(done, n):
            self._seal_into(src[pos:pos + cs], view[i * ss:(i + 1) * ss], last=False)
            pos += cs
        self._buf = bytearray(src[pos:])
        self._digest.update(view[:need])
        return view[:need]

    def finalize(self) -> bytes:
        if self._state != "streaming":
            raise IllegalState("finalize() needs header() first and runs once")
        self._state = "done"
        sealed = bytearray(len(self._buf) + TAG_SIZE)
        self._seal_into(self._buf, memoryview(sealed), last=True)
        self._digest.update(sealed)
        self._buf = bytearray()
        return bytes(sealed)

    @property
    def digest(self) -> bytes:
        if self._state != "done":
            raise IllegalState("the digest is known after finalize()")
        return self._digest.digest()

    @property
    def buffered(self) -> int:
        """Plaintext bytes held back right now (at most one chunk between calls)."""
        return len(self._buf)


def sealed_size(plaintext_size: int, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """The exact ciphertext length for `plaintext_size` bytes (header and every tag included)."""
    if plaintext_size < 0 or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError("bad size")
    return HEADER_SIZE + plaintext_size + TAG_SIZE * max(1, -(-plaintext_size // chunk_size))


class AttachmentDecryptor:
    """Decrypt a stream: `update(data)` with ciphertext pieces of any size, then `finalize()`.

    Plaintext comes out as soon as a chunk is known not to be the last. After any failure the
    object refuses further use, and the caller must discard every plaintext byte it returned:
    only a successful `finalize()` proves the file is complete and unmodified.
    """

    __slots__ = ("_aead", "_buf", "_chunk_size", "_commitment", "_header", "_index", "_state")

    def __init__(self, key: bytes) -> None:
        enc_key, self._commitment = _derive(key)
        self._aead = AESGCM(enc_key)
        self._buf = bytearray()
        self._header = b""
        self._chunk_size = 0
        self._index = 0
        self._state = "header"  # header → chunks → done | failed

    def _fail(self) -> DecryptionFailed:
        self._state = "failed"
        self._buf = bytearray()
        return DecryptionFailed("could not decrypt")

    def _read_header(self) -> None:
        header = bytes(self._buf[:HEADER_SIZE])
        (chunk_size,) = struct.unpack(">I", header[len(MAGIC):len(MAGIC) + 4])
        commitment = header[len(MAGIC) + 4:]
        ok_commit = hmac.compare_digest(commitment, self._commitment)
        if header[:len(MAGIC)] != MAGIC or not 1 <= chunk_size <= MAX_CHUNK_SIZE or not ok_commit:
            raise self._fail()
        self._header, self._chunk_size = header, chunk_size
        del self._buf[:HEADER_SIZE]
        self._state = "chunks"

    def _open_into(self, sealed: Buffer, out: memoryview, last: bool) -> None:
        try:
            self._aead.decrypt_into(_nonce(self._index, last), sealed, self._header, out)
        except (InvalidTag, ValueError):
            raise self._fail() from None
        self._index += 1

    def update(self, data: Buffer) -> bytearray:
        """Open every chunk `data` completes that is known not to be the last; return the plaintext."""
        out = bytearray()
        self.update_into(data, out)
        return out

    def update_into(self, data: Buffer, out: bytearray) -> memoryview:
        """Like `update`, but open into `out` (grown when too small, never shrunk) and return a
        view of the plaintext part. Reusing one `out` spares a large allocation per call;
        release the returned view before the next call."""
        if self._state not in ("header", "chunks"):
            raise IllegalState("this decryptor has finished or failed")
        src = memoryview(data).cast("B")
        if self._state == "header":
            take = min(len(src), HEADER_SIZE - len(self._buf))
            self._buf += src[:take]
            src = src[take:]
            if len(self._buf) < HEADER_SIZE:
                return memoryview(out)[:0]
            self._read_header()
        cs = self._chunk_size
        ss = cs + TAG_SIZE
        # Keep back a whole sealed chunk until more arrives: it may be the last one.
        total = len(self._buf) + len(src)
        n = (total - 1) // ss if total > ss else 0
        if n == 0:
            self._buf += src
            return memoryview(out)[:0]
        if len(out) < n * cs:
            out += bytes(n * cs - len(out))
        view = memoryview(out)
        pos = 0
        done = 0
        if self._buf:  # complete the held-back piece first
            pos = ss - len(self._buf)
            self._buf += src[:pos]
            self._open_into(self._buf, view[:cs], last=False)
            done = 1
        for i in range(done, n):
            self._open_into(src[pos:pos + ss], view[i * cs:(i + 1) * cs], last=False)
            pos += ss
        self._buf = bytearray(src[pos:])
        return view[:n * cs]

    def finalize(self) -> bytes:
        if self._state not in ("header", "chunks"):
            raise IllegalState("this decryptor has finished or failed")
        if self._state == "header" or len(self._buf) < TAG_SIZE:
            raise self._fail()  # cut before the header or the last chunk ended
        plaintext = bytearray(len(self._buf) - TAG_SIZE)
        self._open_into(self._buf, memoryview(plaintext), last=True)
        self._buf = bytearray()
        self._state = "done"
        return bytes(plaintext)

    @property
    def buffered(self) -> int:
        """Ciphertext bytes held back right now (at most one sealed chunk between calls)."""
        return len(self._buf)


def encrypt_bytes(key: bytes, data: bytes, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> bytes:
    """Encrypt a whole attachment held in memory."""
    enc = AttachmentEncryptor(key, chunk_size=chunk_size)
    return enc.header() + enc.update(data) + enc.finalize()


def decrypt_bytes(key: bytes, data: bytes, *, expected_digest: bytes | None = None) -> bytes:
    """Decrypt a whole attachment held in memory, checking its digest first when given."""
    if expected_digest is not None:
        verify_digest(data, expected_digest)
    dec = AttachmentDecryptor(key)
    return bytes(dec.update(data) + dec.finalize())
