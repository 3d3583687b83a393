"""Admin pages (users: create, role, disable, enable, password reset; their API keys) and
the profile page (one's own API keys), with their permissions and CSRF protection."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.db import unit_of_work
from tenure.security import passwords
from tenure.security import service as security_service
from tenure.security.models import AccessToken, ApiKey, User
from tenure.security.passwords import verify_password
from tests.conftest import PASSWORD, MakeUser
from tests.conftest import web_sign_in as sign_in

NEW_PASSWORD = "a-brand-new-passphrase"
ME = "/api/v1/auth/me"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2's cost is not what these tests are about; keep it cheap here."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def login_status(client: TestClient, email: str, password: str) -> int:
    """The answer of the login form to ``email`` and ``password``, in a browser of its own."""
    with TestClient(client.app) as other:
        other.get("/login")
        r = other.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": other.cookies["tenure_csrf"]},
            follow_redirects=False,
        )
        return r.status_code


@pytest.fixture
def browser(client: TestClient) -> Iterator[TestClient]:
    """A second browser on the same server (e.g. the user an admin is managing)."""
    with TestClient(client.app) as other:
        yield other


def stored(sessions: sessionmaker[Session], user_id: int) -> User:
    with sessions() as s:
        user = s.get(User, user_id)
        assert user is not None
        return user


def user_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return s.scalar(select(func.count(User.id))) or 0


def keys_of(sessions: sessionmaker[Session], user_id: int) -> list[ApiKey]:
    with sessions() as s:
        return list(s.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.id)))


def add_key(sessions: sessionmaker[Session], user: User, name: str = "sync") -> tuple[ApiKey, str]:
    with unit_of_work(sessions) as s:
        return security_service.create_api_key(session=s, user=user, name=name)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def new_user_form(token: str, **fields: str) -> dict[str, str]:
    base = {
        "name": "Nina Novak",
        "email": "nina@example.com",
        "password": "long-enough-password",
        "role": "sales",
    }
    return {**base, "csrf_token": token, **fields}


def field_error(page: str, field: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="e-{re.escape(field)}"[^>]*>([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else None


def shown_key(page: str) -> str:
    found = re.search(r'<input id="new-key"[^>]*value="([^"]+)"', page)
    assert found, "the new key is not on the page"
    return html.unescape(found.group(1))


# ---------------------------------------------------------------- the users list


def test_admin_sees_every_user_with_role_status_and_last_sign_in(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    admin = make_user("admin", email="ada@example.com", name="Ada Admin")
    gone = make_user("sales", email="sam@example.com", name="Sam Sales")
    with unit_of_work(sessions) as s:
        security_service.disable_user(
            session=s, user=security_service.get_user(session=s, user_id=gone.id)
        )
    sign_in(client, admin)

    r = client.get("/admin/users")

    assert r.status_code == 200
    rows = re.findall(
        r"<tr>\s*<td><a href=\"/admin/users/(\d+)\">([^<]+)</a></td>(.*?)</tr>", r.text, re.S
    )
    assert [(int(i), name) for i, name, _ in rows] == [
        (admin.id, "Ada Admin"),
        (gone.id, "Sam Sales"),
    ]
    ada, sam = rows[0][2], rows[1][2]
    assert "ada@example.com" in ada and ">admin<" in ada and "Active" in ada
    assert "Never" not in ada  # signed in just now
    assert "sam@example.com" in sam and ">sales<" in sam and "Disabled" in sam and "Never" in sam
    assert 'href="/admin/users"' in r.text  # the nav entry
    assert 'href="/admin/users/new"' in r.text


def test_admin_opens_a_users_page(client: TestClient, make_user: MakeUser) -> None:
    target = make_user("support", email="sue@example.com", name="Sue Support")
    sign_in(client, make_user("admin"))

    r = client.get(f"/admin/users/{target.id}")

    assert r.status_code == 200
    assert "<h1>Sue Support" in r.text
    assert "sue@example.com" in r.text
    for action in ("role", "password", "disable"):
        assert f'action="/admin/users/{target.id}/{action}"' in r.text
    assert "This user has no API keys." in r.text


def test_an_unknown_user_is_a_friendly_404_page(client: TestClient, make_user: MakeUser) -> None:
    sign_in(client, make_user("admin"))
    for url in ("/admin/users/999999", f"/admin/users/{2**64}", "/admin/users/abc"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "<html" in r.text and "Traceback" not in r.text


# ---------------------------------------------------------------- create


def test_admin_creates_a_user_who_can_sign_in(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    token = sign_in(client, make_user("admin"))
    assert client.get("/admin/users/new").status_code == 200

    r = client.post("/admin/users/new", data=new_user_form(token), follow_redirects=False)

    assert r.status_code == 303
    with sessions() as s:
        user = s.scalar(select(User).where(User.email == "nina@example.com"))
        assert user is not None
        assert (user.name, user.role, user.is_active) == ("Nina Novak", "sales", True)
    assert r.headers["location"] == f"/admin/users/{user.id}?saved=created"
    assert "long-enough-password" not in r.headers["location"]
    page = client.get(r.headers["location"])
    assert "The user was created and can sign in now." in page.text
    assert login_status(client, "nina@example.com", "long-enough-password") == 303


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter an email address like name@example.com."),
        ({"name": ""}, "name", "Enter a name of up to 200 characters."),
        ({"password": "short"}, "password", "Enter a password of at least 12 characters."),
        ({"role": "superuser"}, "role", "Choose one of the roles."),
    ],
    ids=["email", "name", "password", "role"],
)
def test_invalid_new_user_shows_the_message_by_the_field_and_creates_nothing(
    client: TestClient,
    make_user: MakeUser,
    sessions: sessionmaker[Session],
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    token = sign_in(client, make_user("admin"))
    before = user_count(sessions)

    r = client.post("/admin/users/new", data=new_user_form(token, **fields))

    assert r.status_code == 422
    assert field_error(r.text, field) == message
    assert user_count(sessions) == before
    assert 'value="long-enough-password"' not in r.text  # a password is never sent back


def test_a_taken_email_is_refused_by_the_field(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    make_user("sales", email="nina@example.com")
    token = sign_in(client, make_user("admin"))
    before = user_count(sessions)

    r = client.post("/admin/users/new", data=new_user_form(token, email="Nina@Example.com"))

    assert r.status_code == 422
    assert field_error(r.text, "email") == "Another user already has this email address."
    assert 'value="Nina Novak"' in r.text  # what was typed stays
    assert user_count(sessions) == before


# ---------------------------------------------------------------- role, disable, enable


def test_admin_changes_a_users_role(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], browser: TestClient
) -> None:
    target = make_user("sales")
    sign_in(browser, target)
    assert browser.get("/admin/users").status_code == 403
    token = sign_in(client, make_user("admin"))

    r = client.post(
        f"/admin/users/{target.id}/role",
        data={"role": "manager", "csrf_token": token},
        follow_redirects=False,
    )

    assert (r.status_code, r.headers["location"]) == (303, f"/admin/users/{target.id}?saved=role")
    assert stored(sessions, target.id).role == "manager"
    assert browser.get("/admin/users").status_code == 200  # the new role applies at once


def test_an_unknown_role_is_refused_and_changes_nothing(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    target = make_user("sales")
    token = sign_in(client, make_user("admin"))

    r = client.post(
        f"/admin/users/{target.id}/role", data={"role": "superuser", "csrf_token": token}
    )

    assert r.status_code == 422
    assert field_error(r.text, "role") == "Choose one of the roles."
    saved = stored(sessions, target.id)
    assert (saved.role, saved.version) == ("sales", 1)


def test_disabling_revokes_sessions_and_keys_and_enabling_lets_the_user_back(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], browser: TestClient
) -> None:
    target = make_user("sales")
    sign_in(browser, target)
    _key, secret = add_key(sessions, target)
    token = sign_in(client, make_user("admin"))

    r = client.post(
        f"/admin/users/{target.id}/disable", data={"csrf_token": token}, follow_redirects=False
    )

    assert (r.status_code, r.headers["location"]) == (
        303,
        f"/admin/users/{target.id}?saved=disabled",
    )
    assert stored(sessions, target.id).is_active is False
    assert browser.get("/", follow_redirects=False).status_code == 303  # signed out
    assert client.get(ME, headers=bearer(secret)).status_code == 401
    assert login_status(client, target.email, PASSWORD) == 401
    page = client.get(f"/admin/users/{target.id}")
    assert f'action="/admin/users/{target.id}/enable"' in page.text

    r = client.post(
        f"/admin/users/{target.id}/enable", data={"csrf_token": token}, follow_redirects=False
    )

    assert r.headers["location"] == f"/admin/users/{target.id}?saved=enabled"
    assert stored(sessions, target.id).is_active is True
    assert login_status(client, target.email, PASSWORD) == 303
    assert client.get(ME, headers=bearer(secret)).status_code == 401  # revoked keys stay revoked


def test_the_last_active_admin_can_be_neither_disabled_nor_demoted(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    admin = make_user("admin")
    token = sign_in(client, admin)
    version = stored(sessions, admin.id).version  # signing in recorded the time

    disabled = client.post(f"/admin/users/{admin.id}/disable", data={"csrf_token": token})
    demoted = client.post(
        f"/admin/users/{admin.id}/role", data={"role": "sales", "csrf_token": token}
    )

    for r in (disabled, demoted):
        assert r.status_code == 409
        assert "This is the only active administrator." in r.text
    saved = stored(sessions, admin.id)
    assert (saved.role, saved.is_active, saved.version) == ("admin", True, version)


def test_the_api_shares_the_last_admin_rule(client: TestClient, make_user: MakeUser) -> None:
    admin = make_user("admin")
    r = client.post("/api/v1/auth/login", json={"email": admin.email, "password": PASSWORD})
    headers = bearer(r.json()["access_token"])

    r = client.patch(f"/api/v1/users/{admin.id}", json={"role": "sales"}, headers=headers)

    assert r.status_code == 409
    assert r.json()["type"] == "urn:tenure:problem:last-admin"


def test_with_another_admin_an_admin_may_step_down(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    make_user("admin")
    me = make_user("admin")
    token = sign_in(client, me)

    r = client.post(
        f"/admin/users/{me.id}/role",
        data={"role": "sales", "csrf_token": token},
        follow_redirects=False,
    )

    assert (r.status_code, r.headers["location"]) == (303, "/profile")  # no admin page now
    assert stored(sessions, me.id).role == "sales"


# ---------------------------------------------------------------- password reset


def test_a_reset_password_signs_in_and_the_old_one_no_longer_does(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session], browser: TestClient
) -> None:
    target = make_user("sales")
    sign_in(browser, target)
    _key, secret = add_key(sessions, target)
    token = sign_in(client, make_user("admin"))

    r = client.post(
        f"/admin/users/{target.id}/password",
        data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )

    assert (r.status_code, r.headers["location"]) == (
        303,
        f"/admin/users/{target.id}?saved=password",
    )
    assert login_status(client, target.email, NEW_PASSWORD) == 303
    assert login_status(client, target.email, PASSWORD) == 401
    assert browser.get("/", follow_redirects=False).status_code == 303  # old session ended
    assert client.get(ME, headers=bearer(secret)).status_code == 200  # API keys keep working
    with sessions() as s:
        live = s.scalar(
            select(func.count(AccessToken.id)).where(
                AccessToken.user_id == target.id, AccessToken.revoked_at.is_(None)
            )
        )
    assert live == 1  # only the sign-in with the new password


@pytest.mark.parametrize(
    ("password", "confirm", "field", "message"),
    [
        ("short", "short", "password", "Enter a password of at least 12 characters."),
        ("", "", "password", "Enter a password of at least 12 characters."),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "password_confirm", "The two passwords differ."),
    ],
    ids=["short", "empty", "mismatch"],
)
def test_an_invalid_new_password_is_refused_and_changes_nothing(
    client: TestClient,
    make_user: MakeUser,
    sessions: sessionmaker[Session],
    password: str,
    confirm: str,
    field: str,
    message: str,
) -> None:
    target = make_user("sales")
    token = sign_in(client, make_user("admin"))

    r = client.post(
        f"/admin/users/{target.id}/password",
        data={"password": password, "password_confirm": confirm, "csrf_token": token},
    )

    assert r.status_code == 422
    assert (field_error(r.text, field) or "").startswith(message)
    saved = stored(sessions, target.id)
    assert saved.version == 1
    assert verify_password(saved.password_hash, PASSWORD)


def test_resetting_ones_own_password_signs_out(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    me = make_user("admin")
    token = sign_in(client, me)

    r = client.post(
        f"/admin/users/{me.id}/password",
        data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )

    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert verify_password(stored(sessions, me.id).password_hash, NEW_PASSWORD)


# ---------------------------------------------------------------- a user's API keys, for admins


def test_admin_sees_and_revokes_a_users_api_keys(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    target = make_user("sales")
    key, secret = add_key(sessions, target, name="Nightly export")
    token = sign_in(client, make_user("admin"))

    page = client.get(f"/admin/users/{target.id}")
    assert "Nightly export" in page.text
    assert f"<code>{key.prefix}…</code>" in page.text
    assert secret not in page.text

    r = client.post(
        f"/admin/users/{target.id}/api-keys/{key.id}/revoke",
        data={"csrf_token": token},
        follow_redirects=False,
    )

    assert r.headers["location"] == f"/admin/users/{target.id}?saved=revoked"
    assert keys_of(sessions, target.id)[0].revoked_at is not None
    assert client.get(ME, headers=bearer(secret)).status_code == 401


def test_a_key_is_revoked_only_under_its_own_user(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    owner, other = make_user("sales"), make_user("sales")
    key, _secret = add_key(sessions, owner)
    token = sign_in(client, make_user("admin"))

    r = client.post(f"/admin/users/{other.id}/api-keys/{key.id}/revoke", data={"csrf_token": token})

    assert r.status_code == 404
    assert keys_of(sessions, owner.id)[0].revoked_at is None


# ---------------------------------------------------------------- the profile and own API keys


def test_a_key_created_on_the_profile_works_on_the_api_until_revoked(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    me = make_user("sales", name="Sam Sales")
    token = sign_in(client, me)

    r = client.post("/profile/api-keys", data={"name": "Nightly export", "csrf_token": token})

    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    secret = shown_key(r.text)
    assert secret.startswith("tnk_")
    assert "it is shown only this once" in r.text
    api = client.get(ME, headers=bearer(secret))
    assert (api.status_code, api.json()["id"]) == (200, me.id)
    [key] = keys_of(sessions, me.id)
    assert key.name == "Nightly export"
    page = client.get("/profile")
    assert "Nightly export" in page.text and secret not in page.text
    assert "no-store" not in page.headers.get("cache-control", "")

    r = client.post(
        f"/profile/api-keys/{key.id}/revoke", data={"csrf_token": token}, follow_redirects=False
    )

    assert (r.status_code, r.headers["location"]) == (303, "/profile?saved=revoked")
    assert client.get(ME, headers=bearer(secret)).status_code == 401
    assert keys_of(sessions, me.id)[0].revoked_at is not None
    assert "The API key was revoked." in client.get(r.headers["location"]).text


def test_the_profile_lists_keys_with_created_and_last_used(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    me = make_user("support")
    used, secret = add_key(sessions, me, name="Used one")
    add_key(sessions, me, name="Idle one")
    assert client.get(ME, headers=bearer(secret)).status_code == 200
    sign_in(client, me)

    page = client.get("/profile").text

    rows = re.findall(
        r"<tr>\s*<td>([^<]+)</td>\s*<td><code>([^<]+)</code></td>(.*?)</tr>", page, re.S
    )
    assert [(name, prefix) for name, prefix, _ in rows] == [
        ("Used one", used.prefix + "…"),
        ("Idle one", keys_of(sessions, me.id)[1].prefix + "…"),
    ]
    assert "Never" not in rows[0][2] and "Never" in rows[1][2]
    assert f'action="/profile/api-keys/{used.id}/revoke"' in page


def test_a_key_without_a_name_is_refused_and_nothing_is_created(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    me = make_user("sales")
    token = sign_in(client, me)

    r = client.post("/profile/api-keys", data={"name": "  ", "csrf_token": token})

    assert r.status_code == 422
    assert field_error(r.text, "name") == (
        "Name the key after what uses it, in up to 100 characters."
    )
    assert keys_of(sessions, me.id) == []


def test_nobody_revokes_anothers_key_from_their_profile(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    owner = make_user("sales")
    key, _secret = add_key(sessions, owner)
    token = sign_in(client, make_user("admin"))

    r = client.post(f"/profile/api-keys/{key.id}/revoke", data={"csrf_token": token})

    assert r.status_code == 404
    assert keys_of(sessions, owner.id)[0].revoked_at is None


def test_the_profile_links_the_language_preference(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    me = make_user("analyst", email="al@example.com")
    token = sign_in(client, me)

    page = client.get("/profile")

    assert page.status_code == 200
    assert "al@example.com" in page.text
    assert 'action="/preferences/language"' in page.text
    r = client.post(
        "/preferences/language",
        data={"locale": "zh_CN", "next": "/profile", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/profile"
    assert stored(sessions, me.id).locale == "zh_CN"


def test_a_role_without_api_keys_sees_no_key_section_and_cannot_create_one(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    me = make_user("auditor")
    token = sign_in(client, me)

    page = client.get("/profile")
    r = client.post("/profile/api-keys", data={"name": "sync", "csrf_token": token})

    assert page.status_code == 200
    assert 'action="/profile/api-keys"' not in page.text
    assert r.status_code == 403
    assert keys_of(sessions, me.id) == []


# ---------------------------------------------------------------- permissions and CSRF


def admin_posts(target: User, key: ApiKey) -> dict[str, dict[str, str]]:
    """Every state-changing admin URL, with a form that would succeed for an admin."""
    return {
        "/admin/users/new": {
            "name": "Eve",
            "email": "eve@example.com",
            "password": "long-enough-password",
            "role": "admin",
        },
        f"/admin/users/{target.id}/role": {"role": "admin"},
        f"/admin/users/{target.id}/disable": {},
        f"/admin/users/{target.id}/enable": {},
        f"/admin/users/{target.id}/password": {
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
        f"/admin/users/{target.id}/api-keys/{key.id}/revoke": {},
    }


def snapshot(sessions: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with sessions() as s:
        users = [
            (u.id, u.email, u.role, u.is_active, u.password_hash, u.version)
            for u in s.scalars(select(User).order_by(User.id))
        ]
        keys = [(k.id, k.revoked_at) for k in s.scalars(select(ApiKey).order_by(ApiKey.id))]
    return [*users, *keys]


def test_support_gets_403_on_every_admin_url_and_sees_no_admin_link(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    target = make_user("sales")
    key, _secret = add_key(sessions, target)
    token = sign_in(client, make_user("support"))
    before = snapshot(sessions)

    for url in ("/admin/users", "/admin/users/new", f"/admin/users/{target.id}"):
        r = client.get(url)
        assert r.status_code == 403, url
        assert "<h1>Permission denied</h1>" in r.text
    for url, form in admin_posts(target, key).items():
        r = client.post(url, data={**form, "csrf_token": token})
        assert r.status_code == 403, url
        assert "<h1>Permission denied</h1>" in r.text

    assert snapshot(sessions) == before
    home = client.get("/")
    assert home.status_code == 200
    assert 'href="/admin/users"' not in home.text
    assert 'href="/profile"' in home.text


def test_a_manager_reads_users_but_changes_nothing(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    target = make_user("sales")
    key, _secret = add_key(sessions, target)
    token = sign_in(client, make_user("manager"))
    before = snapshot(sessions)

    listing = client.get("/admin/users")
    page = client.get(f"/admin/users/{target.id}")

    assert (listing.status_code, page.status_code) == (200, 200)
    assert 'href="/admin/users/new"' not in listing.text
    assert "<form" not in page.text.split('<main id="main"', 1)[1]
    assert key.prefix in page.text
    for url, form in admin_posts(target, key).items():
        assert client.post(url, data={**form, "csrf_token": token}).status_code == 403, url
    assert snapshot(sessions) == before


def test_a_post_without_a_valid_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, make_user: MakeUser, sessions: sessionmaker[Session]
) -> None:
    target = make_user("sales")
    key, _secret = add_key(sessions, target)
    me = make_user("admin")
    own_key, _own = add_key(sessions, me)
    sign_in(client, me)
    before = snapshot(sessions)
    posts = {
        **admin_posts(target, key),
        "/profile/api-keys": {"name": "forged"},
        f"/profile/api-keys/{own_key.id}/revoke": {},
    }

    for url, form in posts.items():
        for token in ("forged", ""):
            r = client.post(url, data={**form, "csrf_token": token})
            assert r.status_code == 403, url
            assert "This form has expired" in r.text
        assert client.post(url, data=form).status_code == 403, url

    assert snapshot(sessions) == before


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    for url in ("/admin/users", "/profile"):
        r = client.get(url, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, f"/login?next={url}")
