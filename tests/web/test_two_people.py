"""Alice and Bob chat through their own `veil app` processes in a real browser, against a real server.

One scenario, step by step (each step depends on the one before), with a screenshot of both
pages after each step under test-output/web/. Bob's page is phone width, Alice's desktop width.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.conftest import ServerProcess
from tests.integration.people import PASSPHRASE, PASSWORD
from tests.web.conftest import AppProcess, start_app

pytestmark = pytest.mark.timeout(240)
expect.set_options(timeout=15000)

PHONE = ViewportSize(width=375, height=760)
DESKTOP = ViewportSize(width=1280, height=800)
# The palette of app.css: regular (light, blue) and secret (dark, purple) threads.
REGULAR_MINE = "rgb(55, 151, 240)"
SECRET_MINE = "rgb(124, 58, 237)"
SECRET_THEIRS = "rgb(49, 46, 129)"


def register(server: ServerProcess, profile: Path, handle: str) -> None:
    """Register through the `veil` command, as a person would (keeps asyncio out of this process)."""
    env = {**os.environ, "VEIL_PASSWORD": PASSWORD, "VEIL_PASSPHRASE": PASSPHRASE}
    subprocess.run([sys.executable, "-m", "veil", "--profile", str(profile), "--server", server.url,
                    "register", handle, "--name", handle.title()], env=env, check=True, timeout=60,
                   capture_output=True)


@pytest.fixture
def apps(server: ServerProcess, tmp_path: Path) -> Iterator[tuple[AppProcess, AppProcess]]:
    for handle in ("alice", "bob"):
        register(server, tmp_path / handle, handle)
    alice = start_app(tmp_path / "alice", server.url, passphrase=PASSPHRASE)
    try:
        bob = start_app(tmp_path / "bob", server.url, passphrase=PASSPHRASE)
    except BaseException:
        alice.stop()
        raise
    yield alice, bob
    alice.stop()
    bob.stop()


def shoot(shots: Path, step: str, alice: Page, bob: Page) -> None:
    alice.screenshot(path=str(shots / f"{step}-alice-desktop.png"), full_page=True)
    bob.screenshot(path=str(shots / f"{step}-bob-phone.png"), full_page=True)


def style(page: Page, selector: str, prop: str) -> str:
    return str(page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}"))


def wait_image(page: Page, selector: str) -> None:
    """An image is really shown: loaded, with a non-zero natural size."""
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector, timeout=15000)


def line(page: Page, text: str) -> str:
    return f"#lines li:has-text('{text}')"


def open_thread(page: Page, peer: str, *, secret: bool) -> None:
    page.goto(page.url.split("/t/")[0].split("/inbox")[0] + "/inbox")
    page.click(f"a[data-peer='{peer}'][data-secret='{1 if secret else 0}']")
    expect(page.locator("#peer-name")).to_contain_text(peer)


def test_alice_and_bob(chromium: Browser, apps: tuple[AppProcess, AppProcess], shots: Path,
                       tmp_path: Path) -> None:
    alice_app, bob_app = apps
    a_ctx = chromium.new_context(viewport=DESKTOP)
    b_ctx = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        alice, bob = a_ctx.new_page(), b_ctx.new_page()
        alice.set_default_timeout(15000)
        bob.set_default_timeout(15000)
        run_scenario(alice_app, bob_app, alice, bob, shots, tmp_path)
    finally:
        a_ctx.close()
        b_ctx.close()


def run_scenario(alice_app: AppProcess, bob_app: AppProcess, alice: Page, bob: Page, shots: Path,
                 tmp_path: Path) -> None:
    # 1. The launch key opens each app (and leaves the address bar).
    alice.goto(alice_app.url)
    bob.goto(bob_app.url)
    assert alice.url.endswith("/inbox") and "key=" not in alice.url
    expect(bob.locator("h1")).to_have_text("bob")
    shoot(shots, "01-inbox", alice, bob)

    # 2. A regular message: Alice starts a chat, Enter sends, Bob opens it, Alice sees "Seen".
    alice.fill("#new-handle", "bob")
    alice.click("button:has-text('Chat')")
    expect(alice.locator("#peer-name")).to_contain_text("bob")
    alice.fill("#text", "hello bob")
    alice.press("#text", "Enter")
    expect(alice.locator(line(alice, "hello bob"))).to_be_visible()
    bob.wait_for_selector("a[data-peer='alice'][data-secret='0']")  # the inbox updates live
    open_thread(bob, "alice", secret=False)
    expect(bob.locator(line(bob, "hello bob"))).to_be_visible()
    expect(alice.locator(".seen")).to_have_text("Seen")
    regular_bg = style(bob, "body", "backgroundColor")
    assert style(alice, ".mine .bubble", "backgroundColor") == REGULAR_MINE
    assert alice.locator("#banner").count() == 0 and alice.locator(".lock").count() == 0
    shoot(shots, "02-regular-message", alice, bob)

    # 3. Chat settings from the contact's name: go to the secret conversation.
    alice.click("#peer-name")
    expect(alice.locator("#go-secret")).to_be_visible()
    shoot(shots, "03-settings-regular", alice, bob)
    alice.click("#go-secret")
    expect(alice.locator("#banner")).to_have_text("Messages are end-to-end encrypted.")
    assert "secret=1" in alice.url

    # 4. A secret message arrives at Bob with the lock, the banner and the secret colours.
    alice.fill("#text", "this stays between us")
    alice.press("#text", "Enter")
    expect(alice.locator(line(alice, "this stays between us"))).to_be_visible()
    bob.goto(bob_app.base + "/inbox")
    expect(bob.locator("a[data-peer='alice'][data-secret='1'] .lock")).to_be_visible()
    open_thread(bob, "alice", secret=True)
    expect(bob.locator(line(bob, "this stays between us"))).to_be_visible()
    expect(bob.locator("#head .lock")).to_be_visible()
    expect(bob.locator("#banner")).to_have_text("Messages are end-to-end encrypted.")
    secret_bg = style(bob, "body", "backgroundColor")
    assert secret_bg != regular_bg
    assert style(bob, ".theirs .bubble", "backgroundColor") == SECRET_THEIRS
    assert style(alice, ".mine .bubble", "backgroundColor") == SECRET_MINE
    shoot(shots, "04-secret-message", alice, bob)

    # 5. A photo and a sticker, shown inline on both pages.
    photo = tmp_path / "sunset.png"
    Image.new("RGB", (320, 200), (250, 140, 60)).save(photo)
    alice.set_input_files("#file", str(photo))
    wait_image(alice, "img.photo")
    wait_image(bob, "img.photo")
    alice.click("#stickers summary")
    alice.click("button[value='heart']")
    wait_image(alice, "img.sticker[src$='/heart.png']")
    wait_image(bob, "img.sticker[src$='/heart.png']")
    shoot(shots, "05-photo-and-sticker", alice, bob)

    # 6. Typing shows on the other page.
    bob.type("#text", "typing something", delay=20)
    expect(alice.locator("#typing")).to_contain_text("bob is typing")
    bob.fill("#text", "")

    # 7. Unsend: Bob sees it, Alice unsends it, it is gone from both with a notice line.
    alice.fill("#text", "oops, wrong chat")
    alice.press("#text", "Enter")
    expect(bob.locator(line(bob, "oops, wrong chat"))).to_be_visible()
    alice.locator(line(alice, "oops, wrong chat")).locator("button:has-text('Unsend')").click()
    expect(alice.locator(line(alice, "oops, wrong chat"))).to_have_count(0)
    expect(bob.locator(line(bob, "oops, wrong chat"))).to_have_count(0)
    expect(bob.locator(".system", has_text="alice unsent a message.")).to_be_visible()
    shoot(shots, "07-unsend", alice, bob)

    # 8. A 5-second timer: the badge on both pages, a countdown, then the message is gone from both.
    alice.click("#peer-name")
    alice.check("input[name=seconds][value='5']")
    alice.click("#do-timer")
    expect(alice.locator(".alert")).to_contain_text("Disappearing messages updated")
    alice.click("a.back")
    expect(alice.locator("#timer-badge")).to_have_text("5s")
    expect(bob.locator("#timer-badge")).to_have_text("5s")
    alice.fill("#text", "this will vanish")
    alice.press("#text", "Enter")
    expect(bob.locator(line(bob, "this will vanish"))).to_be_visible()
    expect(bob.locator(line(bob, "this will vanish")).locator(".countdown")).to_have_text(re.compile(r"^[1-5]s$"))
    shoot(shots, "08-timer-countdown", alice, bob)
    expect(alice.locator(line(alice, "this will vanish"))).to_have_count(0, timeout=12000)
    expect(bob.locator(line(bob, "this will vanish"))).to_have_count(0, timeout=12000)
    expect(bob.locator(line(bob, "this stays between us"))).to_be_visible()  # sent before the timer
    shoot(shots, "08-timer-gone", alice, bob)

    # 9. The same safety number (12 groups) on both pages, with a QR code.
    alice.click("#peer-name")
    bob.click("#peer-name")
    a_number = alice.locator("#safety-number").inner_text().split()
    b_number = bob.locator("#safety-number").inner_text().split()
    assert len(a_number) == 12 and a_number == b_number
    wait_image(alice, "img.qr")
    shoot(shots, "09-safety-number", alice, bob)

    # 10. Emoji verification: Alice starts, Bob accepts, both see the same emoji and confirm.
    alice.click("#do-verify-start")
    bob.wait_for_selector("#do-verify-accept", timeout=15000)  # Bob's settings page updates live
    bob.click("#do-verify-accept")
    alice.wait_for_selector("#do-verify-confirm", timeout=15000)
    expect(bob.locator("#do-verify-confirm")).to_be_visible()
    assert alice.locator(".emoji").inner_text() == bob.locator(".emoji").inner_text()
    shoot(shots, "10-emoji-compare", alice, bob)
    alice.click("#do-verify-confirm")
    bob.click("#do-verify-confirm")
    expect(alice.locator("h1 .verified")).to_be_visible()
    expect(bob.locator("h1 .verified")).to_be_visible()
    shoot(shots, "10-verified", alice, bob)


def test_page_without_launch_key_is_refused(chromium: Browser, apps: tuple[AppProcess, AppProcess],
                                            shots: Path) -> None:
    alice_app, bob_app = apps
    ctx = chromium.new_context(viewport=PHONE)
    try:
        page = ctx.new_page()
        for url in (alice_app.base + "/", alice_app.base + "/inbox", alice_app.base + "/?key=wrong"):
            resp = page.goto(url)
            assert resp is not None and resp.status == 403
        expect(page.locator("h1")).to_have_text("403: not allowed")
        page.screenshot(path=str(shots / "00-refused-without-key.png"))
        # With Alice's cookie in this browser, only her own origin may change anything.
        page.goto(bob_app.url)
        page.goto(alice_app.url)
        for headers in ({"Origin": bob_app.base}, {"Origin": "http://evil.example"}, {}):
            api = page.request.post(alice_app.base + "/inbox/new", form={"handle": "bob"}, headers=headers,
                                    max_redirects=0)
            assert api.status == 403, headers
        api = page.request.post(alice_app.base + "/inbox/new", form={"handle": "bob"},
                                headers={"Origin": alice_app.base}, max_redirects=0)
        assert api.status == 303
    finally:
        ctx.close()
