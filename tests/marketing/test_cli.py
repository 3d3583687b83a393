"""``tenure campaigns send``, run for real in a subprocess against the test database and
a local SMTP server."""

from __future__ import annotations

import os
import subprocess
import sys

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure.config import Settings
from tenure.marketing.models import CampaignMember
from tests.conftest import Headers
from tests.marketing.conftest import MakeCustomer, Sink


def _tenure(settings: Settings, smtp: Sink, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update(
        TENURE_DATA_DIR=str(settings.data_dir),
        TENURE_DATABASE_URL=str(settings.database_url),
        TENURE_KEYRING_FILE=str(settings.keyring_file),
        TENURE_SMTP_HOST=smtp.host,
        TENURE_SMTP_PORT=str(smtp.port),
        TENURE_SMTP_STARTTLS="false",
        TENURE_SMTP_PASSWORD="never-printed-secret",
        TENURE_SMTP_RATE="500",
        COLUMNS="200",
        NO_COLOR="1",
    )
    return subprocess.run(
        [sys.executable, "-m", "tenure", "campaigns", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _launched(client: TestClient, headers: Headers) -> int:
    definition = {"all": [{"field": "lifecycle_stage", "op": "eq", "value": "customer"}]}
    segment = client.post(
        "/api/v1/segments", json={"name": "Buyers", "definition": definition}, headers=headers
    ).json()["id"]
    body = {
        "name": "Autumn",
        "segment_id": segment,
        "subject_template": "Autumn news, {{ first_name }}",
        "body_template": "Hello {{ name }}",
    }
    campaign = client.post("/api/v1/campaigns", json=body, headers=headers).json()["id"]
    assert client.post(f"/api/v1/campaigns/{campaign}/launch", headers=headers).status_code == 200
    return int(campaign)


def test_send_delivers_to_each_member_and_records_it(
    client: TestClient,
    marketer: Headers,
    make_customer: MakeCustomer,
    smtp: Sink,
    settings: Settings,
    session: Session,
) -> None:
    for n in range(3):
        make_customer(f"Reader {n}", email=f"r{n}@example.com", lifecycle_stage="customer")
    campaign = _launched(client, marketer)

    done = _tenure(settings, smtp, "send", str(campaign))
    again = _tenure(settings, smtp, "send", str(campaign))

    assert done.returncode == 0, done.stderr
    assert f"Campaign {campaign}: 3 sent, 0 failed, 0 skipped." in done.stdout
    assert "never-printed-secret" not in done.stdout + done.stderr
    assert "r0@example.com" not in done.stdout + done.stderr
    assert again.returncode == 0 and f"Campaign {campaign}: 0 sent" in again.stdout
    assert sorted(m.recipients[0] for m in smtp.received) == [
        "r0@example.com",
        "r1@example.com",
        "r2@example.com",
    ]
    statuses = session.scalars(select(CampaignMember.send_status)).all()
    assert statuses == ["sent", "sent", "sent"]


def test_send_of_a_draft_is_refused(
    client: TestClient, marketer: Headers, smtp: Sink, settings: Settings
) -> None:
    segment = client.post(
        "/api/v1/segments", json={"name": "All", "definition": {"all": []}}, headers=marketer
    ).json()["id"]
    body = {"name": "Draft", "segment_id": segment, "subject_template": "S", "body_template": "B"}
    campaign = client.post("/api/v1/campaigns", json=body, headers=marketer).json()["id"]

    done = _tenure(settings, smtp, "send", str(campaign))

    assert done.returncode == 1
    assert "Only a running campaign is sent" in done.stderr
    assert smtp.received == []
