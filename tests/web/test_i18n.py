"""Languages of the web UI: the zh-CN catalog is complete, the language follows the user's
choice or the browser, and numbers, money and dates are written as the reader expects."""

# Chinese text uses full-width commas and parentheses on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tenure.catalog import service as catalog_service
from tenure.catalog.models import Product
from tenure.catalog.schemas import ProductCreate
from tenure.core.time import utcnow
from tenure.customers import service as customers_service
from tenure.customers.models import Customer
from tenure.customers.schemas import CustomerCreate, Kind, LifecycleStage
from tenure.db import unit_of_work
from tenure.orders import service as orders_service
from tenure.orders.models import Order
from tenure.orders.schemas import OrderCreate, OrderStatus
from tenure.security import service as security_service
from tenure.security.models import User
from tenure.security.permissions import Role
from tenure.security.scope import EVERYTHING
from tenure.web import i18n
from tenure.web.messages import localize
from tests.conftest import MakeUser
from tests.conftest import web_sign_in as sign_in

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "src" / "tenure" / "web" / "templates"
ZH_PO = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
ZH = "zh-CN,zh;q=0.9,en;q=0.5"
EN = "en-US,en;q=0.9"
FIX = "Run scripts/i18n.sh update, translate the entries in {po}, then scripts/i18n.sh check."


def zh(message: str) -> str:
    return i18n.translations("zh_CN").gettext(message)


# ---------------------------------------------------------------- the catalog


def extracted() -> dict[str, list[str]]:
    """Every msgid the templates and Python code use (as babel.cfg says), with its places."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, "babel.cfg")  # type: ignore[no-untyped-call]
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def zh_catalog() -> Catalog:
    with ZH_PO.open("rb") as fh:
        return read_po(fh, locale="zh_CN")


def test_every_message_in_the_code_is_in_the_zh_cn_catalog_and_translated() -> None:
    catalog = zh_catalog()
    problems = []
    for msgid, places in sorted(extracted().items()):
        entry = catalog.get(msgid)
        strings = (
            entry.string if entry and isinstance(entry.string, tuple) else [entry and entry.string]
        )
        if entry is None:
            problems.append(f"missing: {msgid!r} ({places[0]})")
        elif entry.fuzzy or not all(strings):
            problems.append(f"untranslated: {msgid!r} ({places[0]})")
    assert not problems, FIX.format(po=ZH_PO) + "\n" + "\n".join(problems)


def test_zh_cn_translations_keep_their_placeholders_and_plural_rule() -> None:
    catalog = zh_catalog()
    errors = [f"{m.id!r}: {e}" for m, found in catalog.check() for e in found]
    assert errors == []
    assert catalog.plural_forms == "nplurals=1; plural=0;"


@pytest.mark.parametrize("enum", [OrderStatus, Role, LifecycleStage, Kind])
def test_every_stored_value_the_pages_translate_has_a_translation(enum: Any) -> None:
    untranslated = [v.value for v in enum if zh(v.value) == v.value]
    assert untranslated == []


def _visible_text(template: str) -> tuple[list[str], list[str]]:
    """Words left in a template once Jinja code and markup are taken out, and the
    user-visible attributes that hold literal words; both should be empty."""
    text = re.sub(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}", "", template, flags=re.DOTALL)
    attributes = re.findall(r'(?:aria-label|placeholder|title|alt|data-confirm)="([^"]*)"', text)
    text = re.sub(r"<(script|style)\b.*?</\1>", "", text, flags=re.DOTALL)
    text = html.unescape(re.sub(r"<[^>]*>", " ", text))
    words = [w for w in re.findall(r"[A-Za-z]{2,}", text) if w != "Tenure"]
    return words, [a for a in attributes if re.search(r"[A-Za-z]", a)]


def test_templates_show_no_words_outside_gettext() -> None:
    found = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        words, attributes = _visible_text(path.read_text(encoding="utf-8"))
        if words or attributes:
            found[str(path.relative_to(TEMPLATES))] = words + attributes
    assert found == {}, "wrap these in {{ _(...) }}"


def test_the_word_check_finds_an_unwrapped_label() -> None:
    words, attributes = _visible_text('<h1>Hello {{ _("Home") }}</h1><input placeholder="Type">')
    assert (words, attributes) == (["Hello"], ["Type"])


# ---------------------------------------------------------------- formatting and messages


def test_money_numbers_and_dates_are_written_the_chinese_way() -> None:
    fmt = i18n.Formatter("zh_CN")
    when = datetime(2026, 11, 26, 14, 5, tzinfo=UTC)
    assert fmt.money(Decimal("1234.5"), "CNY") == "¥1,234.50"
    assert fmt.money(Decimal("1234.5"), "EUR") == "€1,234.50"
    assert fmt.money(Decimal("-5"), "USD") == "-US$5.00"
    assert fmt.number(1234567) == "1,234,567"
    assert fmt.date(when) == "2026年11月26日"
    assert fmt.datetime(when) == "2026/11/26 14:05"
    assert fmt.month(when) == "2026年11月"


def test_money_numbers_and_dates_are_written_the_english_way() -> None:
    fmt = i18n.Formatter("en")
    when = datetime(2026, 11, 26, 14, 5, tzinfo=UTC)
    assert fmt.money(Decimal("1234.5"), "CNY") == "CN¥1,234.50"
    assert fmt.money(Decimal("1234.5"), "EUR") == "€1,234.50"
    assert fmt.date(when) == "Nov 26, 2026"
    assert fmt.month(when) == "Nov 2026"


@pytest.mark.parametrize(
    ("header", "saved", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh_CN"),
        ("zh-Hans", None, "zh_CN"),
        ("en-GB,zh;q=0.5", None, "en"),
        ("fr-FR,zh-TW;q=0.8,en;q=0.5", None, "zh_CN"),
        ("fr-FR", None, "en"),
        (None, None, "en"),
        ("zh-CN", "en", "en"),
        ("en", "zh_CN", "zh_CN"),
    ],
)
def test_the_language_is_the_saved_choice_else_the_browsers(
    header: str | None, saved: str | None, expected: str
) -> None:
    assert i18n.negotiate(header, saved) == expected


def test_service_messages_are_shown_in_chinese_with_their_values() -> None:
    assert localize("There is no customer 42.", zh) == "客户 42 不存在。"
    assert localize("Your role (support) cannot open this page.", zh) == (
        "您的角色（客服）无权打开此页面。"
    )
    assert localize("Not found", zh) == "未找到"
    assert localize("Something nobody translated.", zh) == "Something nobody translated."


# ---------------------------------------------------------------- pages


def saved_locale(sessions: sessionmaker[Session], user: User) -> str | None:
    with sessions() as s:
        found = s.get(User, user.id)
        assert found is not None
        return found.locale


@pytest.fixture
def chinese_user(make_user: MakeUser, sessions: sessionmaker[Session]) -> Callable[..., User]:
    """``chinese_user("sales")``: a user who chose 简体中文 in their preferences."""

    def make(role: str = "admin", **kwargs: Any) -> User:
        user = make_user(role, **kwargs)
        with unit_of_work(sessions) as s:
            found = s.get(User, user.id)
            assert found is not None
            security_service.set_locale(session=s, user=found, locale="zh_CN")
        return user

    return make


ORDERED_AT = datetime(2025, 3, 9, 9, 30, tzinfo=UTC)


@pytest.fixture
def shop(sessions: sessionmaker[Session], make_user: MakeUser) -> tuple[Customer, Product, Order]:
    """A customer (created 2025-03-09) with one paid order: 1,200 chairs at ¥1,299.00."""
    owner = make_user("sales", name="Olga Owner")
    with unit_of_work(sessions) as s:
        customer = customers_service.create(
            scope=EVERYTHING,
            session=s,
            data=CustomerCreate(name="Ada Lovelace", lifecycle_stage=LifecycleStage.CUSTOMER),
            actor=owner,
        )
        s.execute(update(Customer).values(created_at=ORDERED_AT, updated_at=ORDERED_AT))
        product = catalog_service.create(
            session=s,
            data=ProductCreate.model_validate(
                {"sku": "CHAIR-01", "name": "Chair", "unit_price": "1299.00", "currency": "CNY"}
            ),
        )
        order = orders_service.create(
            scope=EVERYTHING,
            session=s,
            data=OrderCreate.model_validate(
                {
                    "customer_id": customer.id,
                    "status": "paid",
                    "currency": "CNY",
                    "ordered_at": ORDERED_AT.isoformat(),
                    "lines": [{"product_id": product.id, "quantity": 1200}],
                }
            ),
        )
    return customer, product, order


def test_the_login_page_follows_the_browsers_language(client: TestClient) -> None:
    page = client.get("/login", headers={"Accept-Language": ZH}).text
    assert '<html lang="zh-Hans-CN">' in page
    assert "<title>登录 · Tenure</title>" in page
    assert '<label for="email">电子邮箱</label>' in page
    assert '<label for="password">密码</label>' in page
    english = client.get("/login", headers={"Accept-Language": EN}).text
    assert '<html lang="en">' in english
    assert '<label for="password">Password</label>' in english


def test_a_wrong_password_is_explained_in_chinese(client: TestClient, make_user: MakeUser) -> None:
    user = make_user("sales")
    client.get("/login", headers={"Accept-Language": ZH})
    r = client.post(
        "/login",
        data={"email": user.email, "password": "nope", "csrf_token": client.cookies["tenure_csrf"]},
        headers={"Accept-Language": ZH},
    )
    assert r.status_code == 401
    assert '<p class="error" role="alert">电子邮箱或密码错误。</p>' in r.text


def test_the_dashboard_in_chinese(
    client: TestClient,
    chinese_user: Callable[..., User],
    sessions: sessionmaker[Session],
    shop: tuple[Customer, Product, Order],
) -> None:
    customer, product, _order = shop
    with unit_of_work(sessions) as s:  # revenue this month: ¥2,598.00
        orders_service.create(
            scope=EVERYTHING,
            session=s,
            data=OrderCreate.model_validate(
                {
                    "customer_id": customer.id,
                    "status": "placed",
                    "currency": "CNY",
                    "lines": [{"product_id": product.id, "quantity": 2}],
                }
            ),
        )
    sign_in(client, chinese_user("admin", name="王芳"))
    page = client.get("/", headers={"Accept-Language": EN}).text  # the saved choice wins
    assert "<h1>欢迎，王芳</h1>" in page
    for label in ("首页", "客户", "订单", "产品", "用户", "退出登录", "未结订单", "本月收入"):
        assert label in page, label
    assert '<span class="value" data-testid="revenue-this-month">¥2,598.00</span>' in page
    assert '<span class="badge placed">已下单</span>' in page
    chart = re.search(r'<script type="application/json" id="revenue-data">(.*?)</script>', page)
    assert chart is not None
    assert json.loads(chart.group(1))["labels"][-1] == i18n.Formatter("zh_CN").month(utcnow())
    assert "年" in json.loads(chart.group(1))["labels"][-1]


def test_the_customers_list_in_chinese(
    client: TestClient, chinese_user: Callable[..., User], shop: tuple[Customer, Product, Order]
) -> None:
    sign_in(client, chinese_user("admin"))
    page = client.get("/customers").text
    assert "<h1>客户</h1>" in page
    for header in ("名称", "阶段", "负责人", "电子邮箱", "电话", "标签", "创建时间", "更新时间"):
        assert f">{header}</" in page, header
    assert 'placeholder="名称、电子邮箱或公司"' in page
    assert '<span class="badge customer">成交客户</span>' in page
    assert "<td>2025年3月9日</td>" in page
    assert "Customers" not in page.replace("/customers", "")


def test_the_customer_360_page_in_chinese(
    client: TestClient, chinese_user: Callable[..., User], shop: tuple[Customer, Product, Order]
) -> None:
    customer, _product, order = shop
    sign_in(client, chinese_user("admin"))
    page = client.get(f"/customers/{customer.id}").text
    for label in ("消费总额", "平均订单金额", "首次和最近订单", "资料", "时间线", "交易记录"):
        assert label in page, label
    assert '<span class="value" data-testid="order-count">1</span>' in page
    assert '<span class="value" data-testid="total-spent">¥1,558,800.00</span>' in page
    assert '<span class="value" data-testid="average-order">¥1,558,800.00</span>' in page
    assert '<span data-testid="first-order">2025年3月9日</span>' in page
    assert f"订单 #{order.id}，金额 ¥1,558,800.00" in page
    assert "<dd>2025/3/9 09:30</dd>" in page  # created
    assert '<span class="badge paid">已付款</span>' in page


def test_the_products_pages_in_chinese(
    client: TestClient, chinese_user: Callable[..., User], shop: tuple[Customer, Product, Order]
) -> None:
    _customer, product, _order = shop
    sign_in(client, chinese_user("manager"))
    listing = client.get("/products").text
    assert "<h1>产品</h1>" in listing
    assert '<td class="num">¥1,299.00</td>' in listing
    assert '<span class="badge active">已启用</span>' in listing
    assert ">新建产品</a>" in listing
    detail = client.get(f"/products/{product.id}").text
    assert "<dt>单价</dt><dd>¥1,299.00</dd>" in detail


def test_the_orders_pages_in_chinese(
    client: TestClient, chinese_user: Callable[..., User], shop: tuple[Customer, Product, Order]
) -> None:
    _customer, _product, order = shop
    sign_in(client, chinese_user("admin"))
    listing = client.get("/orders").text
    assert "<h1>订单</h1>" in listing
    assert f'<a href="/orders/{order.id}">订单 #{order.id}</a>' in listing
    assert "<td>2025年3月9日</td>" in listing
    assert '<td class="num">¥1,558,800.00</td>' in listing
    detail = client.get(f"/orders/{order.id}").text
    assert '<td class="num">1,200</td>' in detail
    assert '<td class="num" data-testid="order-total">¥1,558,800.00</td>' in detail
    assert "订单总额" in detail
    assert ">已发货</button>" in detail  # the next status, as a button
    euro = client.get("/orders/new").text
    assert "<h1>新建订单</h1>" in euro
    assert "Chair (CHAIR-01) · ¥1,299.00" in euro


def test_a_signed_in_user_without_a_choice_gets_the_browsers_language(
    client: TestClient, make_user: MakeUser
) -> None:
    sign_in(client, make_user("sales"))
    assert "<h1>客户</h1>" in client.get("/customers", headers={"Accept-Language": ZH}).text
    assert "<h1>Customers</h1>" in client.get("/customers", headers={"Accept-Language": EN}).text


def test_switching_language_in_the_preferences_form_is_remembered(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user("sales")
    token = sign_in(client, user)
    r = client.post(
        "/preferences/language",
        data={"locale": "zh_CN", "next": "/customers?q=ada", "csrf_token": token},
        headers={"Accept-Language": EN},
        follow_redirects=False,
    )
    assert (r.status_code, r.headers["location"]) == (303, "/customers?q=ada")
    assert saved_locale(sessions, user) == "zh_CN"
    page = client.get("/customers", headers={"Accept-Language": EN}).text
    assert "<h1>客户</h1>" in page
    assert '<option value="zh_CN" selected>简体中文</option>' in page

    client.post("/preferences/language", data={"locale": "en", "csrf_token": token})
    assert saved_locale(sessions, user) == "en"
    assert "<h1>Customers</h1>" in client.get("/customers", headers={"Accept-Language": ZH}).text


def test_the_language_form_needs_the_csrf_token(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    user = make_user("sales")
    sign_in(client, user)
    r = client.post("/preferences/language", data={"locale": "zh_CN"})
    assert r.status_code == 403
    assert saved_locale(sessions, user) is None


def test_an_unknown_language_follows_the_browser_again(
    client: TestClient, chinese_user: Callable[..., User], sessions: sessionmaker[Session]
) -> None:
    user = chinese_user("sales")
    token = sign_in(client, user)
    client.post("/preferences/language", data={"locale": "xx", "csrf_token": token})
    assert saved_locale(sessions, user) is None


def test_error_pages_in_chinese(client: TestClient, chinese_user: Callable[..., User]) -> None:
    sign_in(client, chinese_user("support"))
    missing = client.get("/customers/999")
    assert missing.status_code == 404
    assert "<h1>未找到</h1>" in missing.text
    assert "<p>客户 999 不存在。</p>" in missing.text
    nowhere = client.get("/no/such/page")
    assert (nowhere.status_code, "<p>此网址下没有内容。</p>" in nowhere.text) == (404, True)
    refused = client.get("/products/new")
    assert refused.status_code == 403
    assert "<h1>无权访问</h1>" in refused.text
    assert "<p>您的角色（客服）无权打开此页面。</p>" in refused.text


def test_a_malformed_id_in_a_page_address_is_a_friendly_404(
    client: TestClient, chinese_user: Callable[..., User]
) -> None:
    sign_in(client, chinese_user("sales"))
    r = client.get("/orders/abc")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<h1>未找到</h1>" in r.text


def test_customer_form_messages_in_chinese(
    client: TestClient, chinese_user: Callable[..., User]
) -> None:
    token = sign_in(client, chinese_user("sales"))
    r = client.post(
        "/customers/new",
        data={
            "csrf_token": token,
            "name": "x" * 201,
            "kind": "person",
            "email": "not-an-email",
            "phone": "call me",
            "lifecycle_stage": "lead",
        },
    )
    assert r.status_code == 422
    assert "<p>请更正下方标出的字段。</p>" in r.text
    assert '<p class="field-error" id="e-name" role="alert">此项最多 200 个字符。</p>' in r.text
    assert (
        '<p class="field-error" id="e-email" role="alert">'
        "请输入有效的电子邮箱地址，例如 name@example.com</p>"
    ) in r.text
    assert '<p class="field-error" id="e-phone" role="alert">' in r.text
    assert "电话号码只能包含数字、空格和 + ( ) - . /" in r.text


def test_the_admin_and_profile_pages_in_chinese(
    client: TestClient, chinese_user: Callable[..., User], make_user: MakeUser
) -> None:
    make_user("support", name="Sue Support")
    sign_in(client, chinese_user("admin"))
    users = client.get("/admin/users").text
    assert "<h1>用户</h1>" in users
    assert '<span class="badge">客服</span>' in users
    assert '<span class="badge active">已启用</span>' in users
    assert "<td>从未</td>" in users  # Sue has never signed in
    profile = client.get("/profile").text
    assert "界面语言" in profile
    assert ">跟随浏览器设置</option>" in profile


def test_choosing_the_browsers_language_on_the_profile_page_forgets_the_choice(
    client: TestClient, chinese_user: Callable[..., User], sessions: sessionmaker[Session]
) -> None:
    user = chinese_user("sales")
    token = sign_in(client, user)
    client.post("/preferences/language", data={"locale": "", "csrf_token": token})
    assert saved_locale(sessions, user) is None
    assert "<h1>Customers</h1>" in client.get("/customers", headers={"Accept-Language": EN}).text
