"""Photos and videos on the device: seal, upload, download, check, keep and open.

Every local attachment file is ciphertext (the secret thread's own blob, or a regular one
re-sealed on arrival) under a key kept in the encrypted store, so the attachment folder is
unreadable without the passphrase. Files are read and written in chunks: memory stays flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from veil.client.api import BLOCK, ServerAPI, consume, produce, split
from veil.client.errors import ClientError, UsageError
from veil.client.media import MediaInfo, UnsupportedMedia, probe, thumbnail
from veil.protocol.attachments import AttachmentDecryptor, AttachmentEncryptor, new_attachment_key, sealed_size
from veil.protocol.errors import DecryptionFailed
from veil.protocol.payload import Attachment

if TYPE_CHECKING:
    from veil.client.device import Device

__all__ = ["delete_local", "download_and_open", "download_and_seal", "download_checked", "fetch_regular",
           "fetch_secret", "open_file", "prepare", "save", "seal_and_upload", "seal_file"]

_BLOCK = BLOCK  # 1 MiB: 16 chunks of the format per read, seal and write


class AttachmentError(ClientError):
    """An attachment could not be read, checked or written."""


def _folder(device: Device) -> Path:
    folder = device.profile / "attachments"
    folder.mkdir(exist_ok=True)
    return folder


def _new_path(device: Device) -> Path:
    return _folder(device) / secrets.token_hex(16)


def seal_file(src: Path, dest: Path, key: bytes) -> tuple[bytes, int]:
    """Encrypt `src` into `dest` chunk by chunk; return (digest of the ciphertext, plaintext size)."""
    enc = AttachmentEncryptor(key)
    size = 0
    plain, out = bytearray(_BLOCK), bytearray()
    with src.open("rb") as fin, dest.open("wb") as fout, memoryview(plain) as view:
        fout.write(enc.header())
        while got := fin.readinto(view):
            size += got
            with view[:got] as block, enc.update_into(block, out) as sealed:
                fout.write(sealed)
        fout.write(enc.finalize())
    return enc.digest, size


def open_file(src: Path, dest: Path, key: bytes) -> None:
    dec = AttachmentDecryptor(key)
    tmp = dest.with_name(dest.name + ".part")
    try:
        sealed, out = bytearray(_BLOCK), bytearray()
        with src.open("rb") as fin, tmp.open("wb") as fout, memoryview(sealed) as view:
            while got := fin.readinto(view):
                with view[:got] as block, dec.update_into(block, out) as plain:
                    fout.write(plain)
            fout.write(dec.finalize())
    except (DecryptionFailed, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise AttachmentError(f"the attachment could not be decrypted: {exc}") from exc
    tmp.replace(dest)


# --- pipelined network paths: crypto and disk in a worker thread, overlapping the socket ------

async def seal_and_upload(api: ServerAPI, src: Path, local: Path, key: bytes, *, upload_sealed: bool = True,
                          downloads: int = 0) -> tuple[dict[str, Any], bytes, int]:
    """Seal `src` into `local` while uploading it; return (server answer, digest, plaintext size).

    With `upload_sealed` the blob is the very ciphertext written to `local` (secret threads);
    without, it is the plaintext (regular threads are readable) and `local` is this device's
    sealed copy. Each file is read once: a worker thread reads a block, seals it and writes it
    to `local` while the event loop sends the previous block. If `src` changes size under us
    the upload fails instead of sending a length the server was not told.
    """
    size = src.stat().st_size
    enc = AttachmentEncryptor(key)
    remaining = size
    state = "header"
    plain, sealed_buf = bytearray(_BLOCK), bytearray()  # reused: no fresh buffer per block

    def step() -> list[bytes] | None:
        nonlocal remaining, state
        if state == "done":
            return None
        if state == "header":
            state = "body"
            header = enc.header()
            fout.write(header)
            if upload_sealed:
                return [header]
        with memoryview(plain) as view:
            got = fin.readinto(view[:min(_BLOCK, remaining)])
            block = view[:got]
            if got:
                remaining -= got
                sealed: bytes | memoryview = enc.update_into(block, sealed_buf)
            else:
                if remaining or fin.read(1):
                    raise AttachmentError(f"{src.name} changed while it was being sent")
                state = "done"
                sealed = enc.finalize()
            fout.write(sealed)
            pieces = split(sealed if upload_sealed else block)
            if isinstance(sealed, memoryview):
                sealed.release()
            block.release()
        return pieces  # may be empty (the last chunk is held back): None alone ends the body

    with src.open("rb") as fin, local.open("wb") as fout:
        async with contextlib.aclosing(produce(step)) as body:
            r = await api.upload_stream(body, sealed_size(size) if upload_sealed else size,
                                        downloads=downloads)
    return r, enc.digest, size


async def _download(api: ServerAPI, blob_id: str, dest: Path, step: Callable[[memoryview], object],
                    finish: Callable[[], None], files: list[BinaryIO]) -> None:
    """Run `step` on the blob's bytes as they arrive, then `finish`; on any failure close `files`
    and delete `dest`, so nothing unverified is left behind."""
    ok = False
    try:
        async with api.blob_stream(blob_id) as pieces:
            await consume(pieces, step)
        await asyncio.to_thread(finish)
        ok = True
    finally:
        for f in files:
            f.close()
        if not ok:
            dest.unlink(missing_ok=True)


async def download_and_open(api: ServerAPI, blob_id: str, key: bytes, digest: bytes, dest: Path) -> int:
    """Download a sealed blob and decrypt it into `dest` as its bytes arrive; return the size.

    Plaintext goes to `dest.part`, which becomes `dest` only once every chunk's tag, the end of
    the stream and the digest of the whole ciphertext have been checked; any failure deletes
    it and raises AttachmentError.
    """
    dec, sha = AttachmentDecryptor(key), hashlib.sha256()
    tmp = dest.with_name(dest.name + ".part")
    fout = tmp.open("wb")
    size = 0
    out = bytearray()

    def step(block: memoryview) -> None:
        nonlocal size
        sha.update(block)  # hashlib and AES-GCM release the GIL: the event loop keeps receiving
        with dec.update_into(block, out) as plain:
            size += len(plain)
            fout.write(plain)

    def finish() -> None:
        nonlocal size
        plain = dec.finalize()
        size += len(plain)
        fout.write(plain)
        fout.close()
        if not hmac.compare_digest(sha.digest(), digest):
            raise DecryptionFailed("could not decrypt")
        tmp.replace(dest)

    try:
        await _download(api, blob_id, tmp, step, finish, [fout])
    except DecryptionFailed as exc:
        raise AttachmentError("the attachment could not be decrypted: it is damaged or incomplete") from exc
    return size


async def download_checked(api: ServerAPI, blob_id: str, digest: bytes, dest: Path) -> None:
    """Download a sealed blob into `dest` as is, hashing on the way; a digest mismatch deletes it."""
    sha = hashlib.sha256()
    fout = dest.open("wb")

    def step(block: memoryview) -> None:
        sha.update(block)
        fout.write(block)

    def finish() -> None:
        fout.close()
        if not hmac.compare_digest(sha.digest(), digest):
            raise AttachmentError("the attachment does not match its digest")

    await _download(api, blob_id, dest, step, finish, [fout])


async def download_and_seal(api: ServerAPI, blob_id: str, plain: Path, sealed: Path, key: bytes) -> bytes:
    """Download a readable blob into `plain`, sealing it into `sealed` on the way; return the digest."""
    enc = AttachmentEncryptor(key)
    fplain, fsealed = plain.open("wb"), sealed.open("wb")
    fsealed.write(enc.header())
    out = bytearray()

    def step(block: memoryview) -> None:
        fplain.write(block)
        with enc.update_into(block, out) as sealed_part:
            fsealed.write(sealed_part)

    def finish() -> None:
        fsealed.write(enc.finalize())
        fsealed.close()
        fplain.close()

    try:
        await _download(api, blob_id, sealed, step, finish, [fplain, fsealed])
    except BaseException:
        plain.unlink(missing_ok=True)
        raise
    return enc.digest


def inspect(path: Path) -> MediaInfo:
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    try:
        return probe(path)
    except UnsupportedMedia as exc:
        raise UsageError(f"{path.name}: {exc}") from exc


async def prepare(device: Device, path: Path, *, secret: bool, downloads: int = 0
                  ) -> tuple[Attachment, dict[str, Any]]:
    """Upload a photo or video; return the descriptor to send and the sender's local record."""
    info = inspect(path)
    thumb = thumbnail(path, info)
    local_key = new_attachment_key()
    local = _new_path(device)
    try:
        r, digest, size = await seal_and_upload(device.api, path, local, local_key, upload_sealed=secret,
                                                downloads=downloads)
        if secret:
            att = Attachment(blob_id=str(r["blob_id"]), mime=info.mime, size=size, width=info.width,
                             height=info.height, duration_ms=info.duration_ms or 0, name=path.name, key=local_key,
                             digest=digest, thumbnail=thumb)
        else:
            att = Attachment(blob_id=str(r["blob_id"]), mime=info.mime, size=size, width=info.width,
                             height=info.height, duration_ms=info.duration_ms or 0, name=path.name)
    except BaseException:
        local.unlink(missing_ok=True)
        raise
    return att, _record(att, local, local_key, digest, thumb)


def _record(att: Attachment, file: Path, key: bytes, digest: bytes, thumb: bytes) -> dict[str, Any]:
    return {"blob_id": att.blob_id, "mime": att.mime, "size": att.size, "width": att.width,
            "height": att.height, "duration_ms": att.duration_ms, "name": att.name, "file": file.name,
            "key": key, "digest": digest, "thumbnail": thumb}


async def fetch_secret(device: Device, att: Attachment) -> dict[str, Any]:
    """Download a secret attachment, check its digest before anything else, keep the ciphertext."""
    dest = _new_path(device)
    await download_checked(device.api, att.blob_id, att.digest, dest)
    return _record(att, dest, att.key, att.digest, att.thumbnail)


async def fetch_regular(device: Device, att: Attachment) -> dict[str, Any]:
    """Download a regular (readable) attachment and re-seal it for the local folder."""
    tmp = _new_path(device).with_suffix(".download")
    key = new_attachment_key()
    dest = _new_path(device)
    digest = await download_and_seal(device.api, att.blob_id, tmp, dest, key)
    try:
        info = probe(tmp)
        thumb = thumbnail(tmp, info)
    except UnsupportedMedia:
        thumb = b""
    finally:
        tmp.unlink(missing_ok=True)
    return _record(att, dest, key, digest, thumb)


def save(device: Device, record: dict[str, Any], out: Path) -> Path:
    """Write the decrypted attachment of a message record to `out` (a file or a folder)."""
    if out.is_dir():
        out = out / (Path(str(record.get("name") or "attachment")).name or "attachment")
    src = _folder(device) / str(record["file"])
    if not src.exists():
        raise AttachmentError("the attachment file is gone from this device")
    open_file(src, out, bytes(record["key"]))
    return out


def delete_local(device: Device, record: dict[str, Any] | None) -> None:
    if record and record.get("file"):
        (_folder(device) / str(record["file"])).unlink(missing_ok=True)
