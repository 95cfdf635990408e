from __future__ import annotations

from pathlib import Path

import pytest

from veil.client.errors import StoreError, WrongPassphrase
from veil.client.store import Store


def test_store_round_trips_and_hides_everything(tmp_path: Path) -> None:
    s = Store.create(tmp_path, "pass phrase", fast_kdf=True)
    s.put("peer:bob", {"identity_key": "KEYMATERIAL", "note": "bob's secret note"})
    assert s.add_message("secret:bob", "m1", {"text": "marker-in-a-message"})
    assert not s.add_message("secret:bob", "m1", {"text": "again"})
    assert s.mark_seen(b"digest") and not s.mark_seen(b"digest")
    s.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for needle in (b"KEYMATERIAL", b"bob", b"marker-in-a-message", b"secret"):
        assert needle not in raw
    again = Store.open(tmp_path, "pass phrase")
    assert again.get("peer:bob")["note"] == "bob's secret note"
    assert [m["text"] for m in again.messages("secret:bob")] == ["marker-in-a-message"]
    again.close()
    with pytest.raises(WrongPassphrase):
        Store.open(tmp_path, "wrong phrase")
    with pytest.raises(StoreError):
        Store.create(tmp_path, "pass phrase")
