"""Linking a second device: the code works once, a wrong or unknown code fails clearly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import ServerProcess
from tests.integration.people import PASSPHRASE, PASSWORD, register
from veil.client.errors import LinkFailed
from veil.client.linking import link_new_device, offer_link
from veil.protocol.linking import LinkCode


async def test_wrong_and_unknown_codes_fail_clearly(server: ServerProcess, tmp_path: Path) -> None:
    alice = await register(server.url, tmp_path, "alice")
    try:
        offer = await offer_link(alice)
        good = LinkCode.parse(offer.code)
        wrong = str(LinkCode(link_id=good.link_id, secret=bytes(10)))
        waiting = asyncio.create_task(offer.complete(poll=0.05))
        with pytest.raises(LinkFailed, match=r"wrong|cancelled"):
            await link_new_device(tmp_path / "alice-wrong", server.url, "alice", PASSWORD, PASSPHRASE, wrong,
                                  poll=0.05, timeout=20)
        with pytest.raises(LinkFailed, match="wrong code"):
            await waiting
        with pytest.raises(LinkFailed, match="unknown or has expired"):
            await link_new_device(tmp_path / "alice-unknown", server.url, "alice", PASSWORD, PASSPHRASE,
                                  "ZZZZZZZZ-AAAA-AAAA-AAAA-AAAA", poll=0.05, timeout=5)
        with pytest.raises(LinkFailed, match="24 letters"):
            await link_new_device(tmp_path / "alice-typo", server.url, "alice", PASSWORD, PASSPHRASE, "12345")
        dl = await alice.own_device_list()
        assert dl is not None and [d.device_id for d in dl.devices] == [alice.device_id]
    finally:
        await alice.close()
