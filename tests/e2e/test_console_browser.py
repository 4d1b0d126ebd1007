"""The operator console in a real browser: Debian's headless Chromium driven by Playwright, against
a local stack of its own (its Today page shows only this test's bookings).

Signs in with the local operator moto's Cognito knows, sees today's arrivals, opens a booking,
reveals its PIN and finds that in the audit log, checks out early and watches the timeline show
the checkout and the code removed from each lock, every step with its time in the room's zone;
is refused without a session, with a forged token and with an expired one, and for an action
without its CSRF token; a shop API key does not open the console and a console
session does not open the shop API. Staff codes (issue 16): the list shows one the shop made with
its schedule in words; the form refuses a schedule that cannot exist beside its fields, then creates
one; its PIN is revealed (audited) and it is removed. axe-core runs in every page (no serious or
critical violations), and each page's screenshot goes to docs/console/.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from local.stack import LocalStack, StackConfig
from tests.e2e.conftest import FUNCTION_ENV
from tests.e2e.helpers import Shop, Sim, eventually
from tests.e2e.pins import LEDGER

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "docs" / "console"

if not Path(CHROMIUM).exists() or not AXE.exists():  # pragma: no cover - make test installs both
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{CHROMIUM} and {AXE} are needed (make test installs them)")
    pytest.skip("needs Debian's chromium and node_modules/axe-core (make test installs them)", allow_module_level=True)


@pytest.fixture(scope="module")
def console_stack() -> Iterator[LocalStack]:
    config = StackConfig.from_env(
        environ={}, gateway_port=0, nuki_port=0, aws_port=0, sync_delay=0.4, env=dict(FUNCTION_ENV)
    )
    with LocalStack(config) as running:
        yield running
        LEDGER.add_logs(running.log_dir)


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False
        s.hooks["response"].append(LEDGER.record_response)
        yield s


@pytest.fixture(scope="module")
def stay(console_stack: LocalStack, http: requests.Session) -> dict[str, Any]:
    """Two rooms sharing an entrance; an arrival today (active), one tomorrow, one in two weeks."""
    shop, sim = Shop(console_stack, http), Sim(console_stack, http)
    door12, door14, entrance = sim.add_lock(), sim.add_lock(), sim.add_lock()
    shop.put_room([door12, entrance], "room-12", name="Room 12")
    shop.put_room([door14, entrance], "room-14", name="Room 14")
    today = datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin")).date()
    bookings = []
    for booking_id, room, start, nights, name in (
        ("B-2041", "room-12", 0, 2, "Ada Lovelace"),
        ("B-2042", "room-14", 1, 3, "Zoë Müller"),
        ("B-2043", "room-14", 14, 4, "Grace Hopper"),
    ):
        body = shop.booking_body(
            room,
            (today + timedelta(days=start)).isoformat(),
            (today + timedelta(days=start + nights)).isoformat(),
            booking_id,
        )
        body["guest"] = {"name": name, "email": f"{name.split()[0].lower()}@example.org", "locale": "en"}
        r = shop.call("POST", "/bookings", body)
        assert r.status_code == 201, r.text
        bookings.append(r.json())
    shop.wait_status("B-2041", "active", timeout=15)
    shop.wait_status("B-2042", "active", timeout=15)
    # The lock reports its state (DEVICE_STATUS webhooks): batteries for the Locks page.
    for lock_id, charge in ((door12, 84), (door14, 63), (entrance, 17)):
        r = sim.call("PATCH", f"/_sim/smartlocks/{lock_id}", {"batteryCharge": charge, "batteryCritical": charge < 20})
        assert r.status_code == 200, r.text
    assert console_stack.operator is not None
    return {"bookings": {b["bookingId"]: b for b in bookings}, "locks": [door12, door14, entrance]}


@pytest.fixture(scope="module")
def staff_code(console_stack: LocalStack, http: requests.Session, stay: dict[str, Any]) -> dict[str, Any]:
    """The cleaner's staff code for Room 12, Monday to Friday 08:00-12:00, made by the shop."""
    shop = Shop(console_stack, http)
    body = {
        "staffCodeId": "cleaner-1",
        "name": "Maria (cleaning)",
        "roomIds": ["room-12"],
        "allowedWeekDays": 64 + 32 + 16 + 8 + 4,
        "allowedFromTime": 8 * 60,
        "allowedUntilTime": 12 * 60,
    }
    r = shop.call("POST", "/staff-codes", body)
    assert r.status_code == 201, r.text

    def active() -> dict[str, Any] | None:
        code = shop.call("GET", "/staff-codes/cleaner-1").json()
        return code if code["status"] == "active" else None

    return dict(eventually(active, 20, "staff code cleaner-1 active"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


def _sign_in(page: Any, stack: LocalStack) -> None:
    assert stack.operator is not None
    page.goto(f"{stack.console_url}/today")
    assert "/console/login" in page.url  # no session: the sign-in page
    page.get_by_label("Username or email").fill(stack.operator[0])
    page.get_by_label("Password").fill(stack.operator[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/console/today$"))


def _axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations in the page as it is now."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _session_cookie(context: Any) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "sk_session")


def _moto_signed(claims: dict[str, Any]) -> str:
    """A token signed with moto's own Cognito key (valid signature): for the expired-token case."""
    import jwt
    import moto

    raw = (Path(moto.__file__).parent / "cognitoidp" / "resources" / "jwks-private.json.gz").read_bytes()
    jwk = json.loads(gzip.decompress(raw))
    key = jwt.PyJWK.from_dict(jwk["keys"][0] if "keys" in jwk else jwk)
    return jwt.encode(claims, key.key, algorithm="RS256", headers={"kid": "dummy"})


def test_the_console_in_a_browser(console_stack: LocalStack, stay: dict[str, Any], browser: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = console_stack.console_url
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB")
    page = context.new_page()
    pins = {b["pin"] for b in stay["bookings"].values()}

    # Refused without a session: every page sends to the sign-in form.
    page.goto(f"{base}/bookings/B-2041")
    assert "/console/login" in page.url
    page.screenshot(path=str(SHOTS / "login.png"))

    _sign_in(page, console_stack)
    cookie = next(c for c in context.cookies() if c["name"] == "sk_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # loopback; Secure everywhere else (see test_console.py)

    # Today: the arrival, with its readiness.
    today = page.locator("table", has=page.locator("caption", has_text="Arrivals"))
    assert "B-2041" in today.inner_text()
    assert "code confirmed on every lock" in today.inner_text()
    page.screenshot(path=str(SHOTS / "today.png"), full_page=True)

    # Bookings: search by guest, then open one.
    page.goto(f"{base}/bookings")
    page.get_by_label("Guest name or email").fill("zoe")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*guest=zoe.*"))
    rows = page.locator("table tbody tr")
    assert rows.count() == 1
    assert "B-2042" in rows.first.inner_text()
    page.goto(f"{base}/bookings")
    page.screenshot(path=str(SHOTS / "bookings.png"), full_page=True)
    page.get_by_role("link", name="B-2041").click()
    page.wait_for_url(re.compile(r".*/console/bookings/B-2041$"))
    html = page.content()
    assert not any(pin in html for pin in pins), "a PIN in the page before it was revealed"
    assert "code confirmed on lock" in page.locator("#timeline").inner_text()

    # Reveal the PIN: confirmed, shown, audited.
    page.get_by_role("link", name="Reveal PIN").click()
    page.get_by_role("button", name=re.compile("Confirm")).click()
    shown = page.locator(".pin")
    shown.wait_for()
    assert shown.inner_text() == stay["bookings"]["B-2041"]["pin"]
    page.goto(f"{base}/audit")
    audit = page.locator("table tbody").inner_text()
    assert "reveal_pin" in audit
    assert "B-2041" in audit
    assert console_stack.operator[0] in audit  # type: ignore[index]
    assert not any(pin in page.content() for pin in pins)

    # Early checkout: confirmed; the timeline shows the code removed once Nuki confirms it.
    page.goto(f"{base}/bookings/B-2041")
    page.get_by_role("link", name="Early checkout").click()
    page.screenshot(path=str(SHOTS / "confirm.png"))
    page.get_by_role("button", name=re.compile("Confirm")).click()
    page.wait_for_url(re.compile(r".*/console/bookings/B-2041\?result=.*"))
    assert "Done" in page.locator("#result").inner_text()
    page.locator("#timeline", has_text="code removed from every lock").wait_for(timeout=20_000)
    steps = page.locator("#timeline li")
    texts = [steps.nth(i).inner_text() for i in range(steps.count())]
    # Every step from the booking's kept events, its record and its activity, each with its time.
    order = ["created", "sent to Nuki", "code confirmed on lock", "code on every lock", "checked out early"]
    found = [next(i for i, t in enumerate(texts) if what in t) for what in order]
    assert found == sorted(found), texts
    removed = [t for t in texts if "code removed from lock" in t]
    assert len(removed) == 2, texts  # the room's door and the entrance, each with its time
    assert sum("code confirmed on lock" in t for t in texts) >= 2, texts
    assert texts.index(removed[-1]) < next(i for i, t in enumerate(texts) if "code removed from every lock" in t)
    times = page.locator("#timeline li time")
    assert times.count() == len(texts)
    assert all(times.nth(i).get_attribute("datetime") for i in range(times.count()))  # no step without a time
    assert all("(Europe/Berlin, CE" in t for t in texts), texts  # in the room's zone (CET or CEST)
    page.screenshot(path=str(SHOTS / "booking.png"), full_page=True)

    # Locks, a lock, the activity feed.
    page.goto(f"{base}/locks")
    assert str(stay["locks"][2]) in page.locator("table").inner_text()
    page.screenshot(path=str(SHOTS / "locks.png"), full_page=True)
    page.goto(f"{base}/locks/{stay['locks'][2]}")
    lock_html = page.content()
    assert "B-2042" in lock_html
    assert not any(pin in lock_html for pin in pins)
    page.screenshot(path=str(SHOTS / "lock.png"), full_page=True)
    page.goto(f"{base}/activity")
    page.screenshot(path=str(SHOTS / "activity.png"), full_page=True)
    page.goto(f"{base}/audit")
    page.screenshot(path=str(SHOTS / "audit.png"), full_page=True)

    # German.
    page.goto(f"{base}/lang/de?next=/console/today")
    assert page.locator("h1").first.inner_text().startswith("Heute")
    page.screenshot(path=str(SHOTS / "today-de.png"), full_page=True)
    page.goto(f"{base}/lang/en?next=/console/today")

    # The CSP holds: an inline script injected into the page does not run.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1';"
        " document.body.append(s); }"
    )
    assert page.evaluate("() => window.__pwned") is None

    # An action without its CSRF token is refused, and changes nothing.
    token = _session_cookie(context)
    r = page.request.post(f"{base}/bookings/B-2042/cancel", form={"csrf": "0" * 64}, max_redirects=0)
    assert r.status == 403
    r = page.request.post(f"{base}/bookings/B-2042/cancel", form={}, max_redirects=0)
    assert r.status == 403
    shop = requests.Session()
    shop.trust_env = False
    answer = shop.get(
        f"{console_stack.gateway_url}/bookings/B-2042", headers={"x-api-key": console_stack.config.api_key}, timeout=30
    )
    assert answer.json()["status"] == "active"

    # A console session does not open the shop API; a shop API key does not open the console.
    assert (
        shop.get(f"{console_stack.gateway_url}/bookings/B-2042", cookies={"sk_session": token}, timeout=30).status_code
        == 403
    )
    r = shop.get(
        f"{base}/today", headers={"x-api-key": console_stack.config.api_key}, allow_redirects=False, timeout=30
    )
    assert r.status_code == 303
    assert "/console/login" in r.headers["Location"]
    context.close()


def test_forged_and_expired_tokens_are_refused(console_stack: LocalStack, stay: dict[str, Any], browser: Any) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    base = console_stack.console_url
    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, console_stack)
    real = jwt.decode(_session_cookie(context), options={"verify_signature": False})
    host = re.sub(r"^https?://", "", console_stack.gateway_url).split(":")[0]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {**real, "email": "mallory@example.org"}, other_key, algorithm="RS256", headers={"kid": "dummy"}
    )
    now = int(time.time())
    expired = _moto_signed({**real, "iat": now - 7200, "auth_time": now - 7200, "exp": now - 3600})
    wrong_audience = _moto_signed({**real, "aud": "another-client"})
    access_token = _moto_signed({**real, "token_use": "access"})
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=") + "." + real_b64(real) + "."
    for name, token in (
        ("forged", forged),
        ("expired", expired),
        ("wrong audience", wrong_audience),
        ("access token", access_token),
        ("alg none", none_alg),
    ):
        context.clear_cookies()
        context.add_cookies([{"name": "sk_session", "value": token, "domain": host, "path": "/console"}])
        page.goto(f"{base}/today")
        assert "/console/login" in page.url, name
        assert "expired or is not valid" in page.content(), name
    context.close()


def real_b64(claims: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


def test_staff_codes_in_a_browser(console_stack: LocalStack, staff_code: dict[str, Any], browser: Any) -> None:
    # axe-core is injected into the form's error state: this context bypasses the CSP for it.
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB", bypass_csp=True)
    page = context.new_page()
    base = console_stack.console_url
    _sign_in(page, console_stack)
    page.get_by_role("link", name="Staff codes").click()
    page.wait_for_url(re.compile(r".*/console/staff-codes$"))
    row = page.locator("table tbody tr", has_text="cleaner-1")
    assert "Maria (cleaning)" in row.inner_text()
    assert "Mon\u2013Fri 08:00\u201312:00" in row.inner_text()
    assert staff_code["pin"] not in page.content()

    # A schedule that cannot exist: each error beside its field, nothing created.
    page.locator("#s-name").fill("Jonas (maintenance)")
    page.locator("#s-id").fill("maint-7")
    page.locator("#s-rooms").select_option(["room-12", "room-14"])
    for box in page.locator("input[name=allowedWeekDays]").all():
        box.uncheck()
    page.locator("#s-from").fill("12:00")
    page.locator("#s-until").fill("08:00")
    page.get_by_role("button", name="Create staff code").click()
    page.locator("#err-allowedUntilTime").wait_for()
    assert "must be after allowedFromTime" in page.locator("#err-allowedUntilTime").inner_text()
    assert "choose at least one day" in page.locator("#err-allowedWeekDays").inner_text()
    assert page.locator("#s-name").input_value() == "Jonas (maintenance)"  # what was entered is kept
    assert _axe(page) == []
    page.screenshot(path=str(SHOTS / "staff-codes-form.png"), full_page=True)

    # Put right: created, on its page.
    for day in ("Mon", "Wed", "Fri"):
        page.get_by_label(day, exact=True).check()
    page.locator("#s-from").fill("07:30")
    page.locator("#s-until").fill("16:00")
    page.get_by_role("button", name="Create staff code").click()
    page.wait_for_url(re.compile(r".*/console/staff-codes/maint-7\?result=.*"))
    assert "Done" in page.locator("#result").inner_text()
    assert "Mon, Wed, Fri 07:30\u201316:00" in page.locator("dl.facts").inner_text()

    # Reveal the PIN: confirmed, shown, audited.
    page.get_by_role("link", name="Reveal PIN").click()
    page.get_by_role("button", name=re.compile("Confirm")).click()
    shown = page.locator(".pin")
    shown.wait_for()
    assert re.fullmatch(r"\d{6}", shown.inner_text())
    pin = shown.inner_text()

    # Remove: confirmed, audited, off every lock once the locks confirm it.
    page.goto(f"{base}/staff-codes/maint-7")
    page.get_by_role("link", name="Remove").click()
    page.get_by_role("button", name=re.compile("Confirm")).click()
    page.wait_for_url(re.compile(r".*/console/staff-codes/maint-7\?result=.*"))
    assert "Done" in page.locator("#result").inner_text()

    def removed() -> bool:
        page.goto(f"{base}/staff-codes/maint-7")
        return page.locator("h1 .status").inner_text() == "removed"

    eventually(removed, 20, "maint-7 removed", interval=0.5)
    page.goto(f"{base}/staff-codes/cleaner-1")
    page.screenshot(path=str(SHOTS / "staff-code.png"), full_page=True)
    page.goto(f"{base}/staff-codes")
    page.screenshot(path=str(SHOTS / "staff-codes.png"), full_page=True)
    page.goto(f"{base}/audit")
    audit = page.locator("table tbody").inner_text()
    for action in ("staff_code_create", "reveal_pin", "staff_code_remove"):
        assert action in audit
    assert pin not in page.content()
    context.close()


def test_no_serious_accessibility_violations_on_any_page(
    console_stack: LocalStack, stay: dict[str, Any], staff_code: dict[str, Any], browser: Any
) -> None:
    # axe-core is injected as a script: this context bypasses the CSP for it (the CSP is checked
    # in test_the_console_in_a_browser).
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    base = console_stack.console_url
    page.goto(f"{base}/login")
    found = {"login": _axe(page)}
    _sign_in(page, console_stack)
    pages = {
        "today": "/today",
        "bookings": "/bookings",
        "booking": "/bookings/B-2042",
        "confirm": "/bookings/B-2042/confirm/cancel",
        "locks": "/locks",
        "lock": f"/locks/{stay['locks'][2]}",
        "activity": "/activity",
        "audit": "/audit",
        "staff-codes": "/staff-codes",
        "staff-code": "/staff-codes/cleaner-1",
        "staff-confirm": "/staff-codes/cleaner-1/confirm/remove",
        "today-de": "/today?lang=de",
        "staff-codes-de": "/staff-codes?lang=de",
    }
    sizes = {}
    for name, path in pages.items():
        response = page.goto(base + path)
        assert response is not None
        assert response.status == 200, name
        sizes[name] = len(response.body())
        found[name] = _axe(page)
    assert {name: v for name, v in found.items() if v} == {}
    assert max(sizes.values()) < 100 * 1024, sizes
    context.close()
