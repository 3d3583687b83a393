"""A marketer in a real browser: builds a segment, creates an email campaign for it,
launches and sends it through a real local mail server, and after a reader opens the
email and follows its link, sees the open and the click on the results page."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import httpx2 as httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tenure.app import create_app
from tenure.config import Settings
from tests.conftest import MakeUser
from tests.e2e.helpers import add_customer, sign_in
from tests.marketing.conftest import Sink, free_port


@pytest.fixture
def mail() -> Iterator[Sink]:
    sink = Sink("127.0.0.1", free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def mailing_server(base_settings: Settings, engine: Engine, mail: Sink) -> Iterator[str]:
    """The application, sending marketing email to ``mail``, with links back to itself."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = base_settings.model_copy(
        update={
            "smtp_host": mail.host,
            "smtp_port": mail.port,
            "smtp_starttls": False,
            "smtp_rate": 100.0,
            "public_url": base,
        }
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    ready = threading.Event()
    for _ in range(500):
        if server.started:
            break
        ready.wait(0.01)
    if not server.started:
        pytest.fail("The test server did not start.")
    yield base
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def marketing_page(browser: Browser, mailing_server: str) -> Iterator[Page]:
    context = browser.new_context(base_url=mailing_server, locale="en-US")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_a_marketer_sends_a_campaign_and_sees_opens_and_clicks(
    marketing_page: Page,
    mailing_server: str,
    mail: Sink,
    make_user: MakeUser,
    sessions: sessionmaker[Session],
) -> None:
    page = marketing_page
    marketer = make_user("marketing")
    owner = make_user("sales")
    add_customer(
        sessions, owner, "Grace Hopper", email="grace@example.com", lifecycle_stage="customer"
    )
    add_customer(sessions, owner, "Alan Turing", email="alan@example.com", lifecycle_stage="lead")

    sign_in(page, marketer)
    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Marketing", exact=True
    ).click()
    page.get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").first.click()
    page.get_by_label("Name").fill("Customers")
    page.get_by_label("Field 1").fill("lifecycle_stage")
    page.get_by_label("Operator 1").select_option("eq")
    page.get_by_label("Value 1").fill("customer")
    expect(page.locator("#preview-count")).to_contain_text("1 customers match")
    expect(page.locator("#preview-members")).to_contain_text("Grace Hopper")
    expect(page.locator("#preview-members")).not_to_contain_text("Alan Turing")
    page.get_by_role("button", name="Save segment").click()
    expect(page).to_have_url(re.compile(r"/segments/\d+$"))

    page.get_by_role("link", name="New campaign for this segment").click()
    page.get_by_label("Name").fill("Spring sale")
    page.get_by_label("Budget").fill("40.00")
    page.get_by_label("Control group (%)").fill("0")
    page.get_by_label("Subject").fill("Spring offers for {{ first_name }}")
    page.get_by_label("Text", exact=True).fill(
        "Hello {{ name }},\n\nSee {{ link('https://shop.example/spring') }}"
    )
    expect(page.locator("#preview-subject")).to_have_text("Spring offers for Ada")
    page.get_by_role("button", name="Save campaign").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    page.get_by_role("button", name="Launch").click()
    expect(page.locator("#campaign-status")).to_have_text("running")
    page.get_by_role("button", name="Send email").click()

    [received] = mail.wait(1)
    assert received.recipients == ["grace@example.com"]
    assert received.message["Subject"] == "Spring offers for Grace"
    pixel = re.search(r'src="([^"]+/email/open/[^"]+)"', received.html)
    click = re.search(r"(http://\S+/email/click/\S+)", received.text)
    assert pixel and click
    with httpx.Client() as reader:
        opened = reader.get(pixel.group(1))
        clicked = reader.get(click.group(1), follow_redirects=False)
    assert opened.headers["content-type"] == "image/gif"
    assert (
        clicked.status_code == 302 and clicked.headers["location"] == "https://shop.example/spring"
    )

    page.reload()
    page.get_by_role("link", name="Results").click()
    expect(page.locator("#row-sent td").first).to_have_text("1")
    expect(page.locator("#row-opened td").first).to_have_text("1")
    expect(page.locator("#row-clicked td").first).to_have_text("1")
    expect(
        page.get_by_role("img", name=re.compile("Response and conversion rates"))
    ).to_be_visible()
