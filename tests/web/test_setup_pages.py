"""A fresh profile in the browser: sign up on the first page; later launches ask for the passphrase."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import ServerProcess
from tests.web.conftest import start_app

pytestmark = pytest.mark.timeout(180)
expect.set_options(timeout=20000)


def test_sign_up_then_unlock(chromium: Browser, server: ServerProcess, tmp_path: Path, shots: Path) -> None:
    profile = tmp_path / "carol"
    ctx = chromium.new_context(viewport={"width": 375, "height": 760}, is_mobile=True, has_touch=True)
    app = start_app(profile, server.url, passphrase=None)
    try:
        page = ctx.new_page()
        page.goto(app.url)
        expect(page.locator("summary", has_text="Sign up")).to_be_visible()
        assert page.input_value("#su-server") == server.url
        page.fill("#su-handle", "carol")
        page.fill("#su-password", "carol's password")
        page.fill("#su-passphrase", "carol's passphrase")
        page.screenshot(path=str(shots / "20-sign-up-phone.png"), full_page=True)
        page.click("button:has-text('Create account')")
        expect(page.locator("h1")).to_have_text("carol")
        assert page.url.endswith("/inbox")
    finally:
        app.stop()
    app = start_app(profile, server.url, passphrase=None)  # no VEIL_PASSPHRASE: the unlock screen
    try:
        page = ctx.new_page()
        page.goto(app.url)
        page.fill("#passphrase", "not it")
        page.click("button:has-text('Unlock')")
        expect(page.locator(".error")).to_contain_text("passphrase")
        page.screenshot(path=str(shots / "21-unlock-wrong-phone.png"), full_page=True)
        page.fill("#passphrase", "carol's passphrase")
        page.click("button:has-text('Unlock')")
        expect(page.locator("h1")).to_have_text("carol")
    finally:
        app.stop()
        ctx.close()


def test_link_a_new_device(chromium: Browser, server: ServerProcess, tmp_path: Path, shots: Path) -> None:
    """The old device shows a code; the new one enters it and can then open secret conversations."""
    from tests.integration.people import PASSPHRASE, PASSWORD
    from tests.web.test_two_people import register

    register(server, tmp_path / "alice-phone", "alice")
    ctx = chromium.new_context(viewport={"width": 375, "height": 760}, is_mobile=True, has_touch=True)
    old = start_app(tmp_path / "alice-phone", server.url, passphrase=PASSPHRASE)
    new = start_app(tmp_path / "alice-laptop", server.url, passphrase=None)
    try:
        phone, laptop = ctx.new_page(), ctx.new_page()
        phone.goto(old.url)
        phone.click("a:has-text('Link a device')")
        phone.click("button:has-text('Show a code')")
        code = phone.locator("#link-code").inner_text().strip()
        phone.screenshot(path=str(shots / "22-link-code-phone.png"), full_page=True)
        laptop.goto(new.url)
        laptop.click("summary:has-text('Link to my other device')")
        laptop.fill("#lk-handle", "alice")
        laptop.fill("#lk-password", PASSWORD)
        laptop.fill("#lk-passphrase", "laptop passphrase")
        laptop.fill("#lk-code", code)
        laptop.click("button:has-text('Link this device')")
        expect(laptop.locator("h1")).to_have_text("alice")  # the linking screen moves on by itself
        expect(laptop.locator("label.check")).to_contain_text("Secret")  # linked: secret chats offered
        expect(phone.locator(".ok")).to_contain_text("Linked")
        laptop.screenshot(path=str(shots / "23-linked-inbox.png"), full_page=True)
    finally:
        old.stop()
        new.stop()
        ctx.close()
