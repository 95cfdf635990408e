"""Photos and videos on the device: seal, upload, download, check, keep and open.

Every local attachment file is ciphertext (the secret thread's own blob, or a regular one
re-sealed on arrival) under a key kept in the encrypted store, so the attachment folder is
unreadable without the passphrase. Files are read and written in chunks: memory stays flat.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veil.client.errors import ClientError, UsageError
from veil.client.media import MediaInfo, UnsupportedMedia, probe, thumbnail
from veil.protocol.attachments import AttachmentDecryptor, AttachmentEncryptor, new_attachment_key
from veil.protocol.errors import DecryptionFailed
from veil.protocol.payload import Attachment

if TYPE_CHECKING:
    from veil.client.device import Device

__all__ = ["delete_local", "fetch_regular", "fetch_secret", "prepare", "save", "seal_file"]

_BLOCK = 1024 * 1024


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
    with src.open("rb") as fin, dest.open("wb") as fout:
        fout.write(enc.header())
        while block := fin.read(_BLOCK):
            size += len(block)
            fout.write(enc.update(block))
        fout.write(enc.finalize())
    return enc.digest, size


def open_file(src: Path, dest: Path, key: bytes) -> None:
    dec = AttachmentDecryptor(key)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with src.open("rb") as fin, tmp.open("wb") as fout:
            while block := fin.read(_BLOCK):
                fout.write(dec.update(block))
            fout.write(dec.finalize())
    except (DecryptionFailed, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise AttachmentError(f"the attachment could not be decrypted: {exc}") from exc
    tmp.replace(dest)


def _sha256_file(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return h.digest()


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
    digest, size = seal_file(path, local, local_key)
    try:
        if secret:
            r = await device.api.upload_blob(local, downloads=downloads)
            att = Attachment(blob_id=str(r["blob_id"]), mime=info.mime, size=size, width=info.width,
                             height=info.height, duration_ms=info.duration_ms or 0, name=path.name, key=local_key,
                             digest=digest, thumbnail=thumb)
        else:
            r = await device.api.upload_blob(path)
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
    await device.api.download_blob(att.blob_id, dest)
    if not hmac.compare_digest(_sha256_file(dest), att.digest):
        dest.unlink(missing_ok=True)
        raise AttachmentError("the attachment does not match its digest")
    return _record(att, dest, att.key, att.digest, att.thumbnail)


async def fetch_regular(device: Device, att: Attachment) -> dict[str, Any]:
    """Download a regular (readable) attachment and re-seal it for the local folder."""
    tmp = _new_path(device).with_suffix(".download")
    await device.api.download_blob(att.blob_id, tmp)
    try:
        key = new_attachment_key()
        dest = _new_path(device)
        digest, _ = seal_file(tmp, dest, key)
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
