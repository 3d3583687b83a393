"""``tenure doctor``: each check passes on a healthy installation and fails, with a fix,
on the problem it is there to find."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tenure.config import Settings
from tenure.db import make_engine
from tenure.ops import backup, doctor, migrate
from tenure.ops.doctor import Finding, Status
from tenure.security import keyring as keyrings
from tests.ops.conftest import RunCli


def _by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


@pytest.fixture
def keyring(tmp_path: Path) -> Path:
    path = tmp_path / "keyring.json"
    keyrings.write_file(path, keyrings.generate())
    return path


@pytest.fixture
def healthy(fresh_settings: Settings, migrated: Engine, keyring: Path) -> Settings:
    """A migrated database, a fresh backup, a private key file, no disk threshold."""
    settings = fresh_settings.model_copy(update={"keyring_file": keyring, "min_free_disk_mb": 0})
    backup.create(settings)
    return settings


def test_every_check_passes_on_a_healthy_installation(healthy: Settings) -> None:
    findings = doctor.run(lambda: healthy)

    assert [(f.check, f.status) for f in findings] == [
        ("configuration", Status.OK),
        *([("sqlite", Status.OK)] if healthy.is_sqlite else []),
        ("database", Status.OK),
        ("schema", Status.OK),
        ("keyring", Status.OK),
        ("keys in use", Status.OK),
        ("data directory", Status.OK),
        ("disk", Status.OK),
        ("last backup", Status.OK),
    ]
    assert doctor.exit_code(findings) == 0


def test_settings_that_do_not_load_fail_and_stop_the_other_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TENURE_WORKERS", "several")

    findings = doctor.run(Settings)

    assert len(findings) == 1
    assert findings[0].check == "configuration"
    assert findings[0].status == Status.FAIL
    assert "WORKERS: Input should be a valid integer" in findings[0].message
    assert findings[0].fix is not None and "TENURE_" in findings[0].fix
    assert doctor.exit_code(findings) == 1


def test_a_missing_sqlite_database_fails_and_says_to_run_init(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=None)

    found = _by_check(doctor.run(lambda: settings))

    assert found["database"] == Finding(
        "database",
        Status.FAIL,
        f"There is no database at {(tmp_path / 'data' / 'tenure.db').resolve()}.",
        "Run 'tenure init' to create it, or point TENURE_DATA_DIR (or TENURE_DATABASE_URL) at "
        "the existing one.",
    )
    assert found["schema"].status == Status.FAIL
    assert not (tmp_path / "data" / "tenure.db").exists()  # the doctor created nothing


def test_a_damaged_sqlite_database_fails_its_integrity_check(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    engine = make_engine(settings)
    migrate.upgrade(engine)
    engine.dispose()
    db = tmp_path / "data" / "tenure.db"
    raw = bytearray(db.read_bytes())
    raw[4096 + 100 : 4096 * 3] = b"\xee" * (4096 * 2 - 100)
    db.write_bytes(bytes(raw))

    finding = doctor.check_database(settings, make_engine(settings))

    assert finding.status == Status.FAIL
    assert "integrity check" in finding.message or "cannot be read" in finding.message
    assert finding.fix is not None and "tenure restore FILE --yes" in finding.fix


def test_an_unreachable_postgresql_fails_with_what_to_check(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url="postgresql+psycopg://tenure@127.0.0.1:1/tenure"
    )

    found = _by_check(doctor.run(lambda: settings))

    assert found["database"].status == Status.FAIL
    assert found["database"].message.startswith("PostgreSQL does not answer: ")
    assert found["database"].fix is not None and "TENURE_DATABASE_URL" in found["database"].fix
    assert found["schema"] == Finding(
        "schema", Status.FAIL, "Not checked: the database cannot be read."
    )


def test_the_database_passes_when_it_answers(fresh_settings: Settings, migrated: Engine) -> None:
    assert doctor.check_database(fresh_settings, migrated).status == Status.OK


def test_an_empty_schema_fails_and_says_to_run_init(fresh_engine: Engine) -> None:
    with fresh_engine.connect() as conn:
        conn.execute(text("SELECT 1"))

    finding = doctor.check_schema(fresh_engine)

    assert finding == Finding(
        "schema", Status.FAIL, "The database is empty.", "Run 'tenure init' to set it up."
    )


def test_an_older_schema_fails_and_says_to_run_upgrade(fresh_engine: Engine) -> None:
    migrate.upgrade(fresh_engine, migrate.history()[0])

    finding = doctor.check_schema(fresh_engine)

    assert finding == Finding(
        "schema",
        Status.FAIL,
        f"The database is at revision {migrate.history()[0]}; this version of Tenure needs "
        f"{migrate.head()}.",
        "Run 'tenure upgrade' (it backs up first); the server is not ready until then.",
    )


def test_a_schema_from_a_newer_tenure_fails(migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))

    finding = doctor.check_schema(migrated)

    assert finding.status == Status.FAIL
    assert "9999_future, which this version of Tenure does not know" in finding.message


def test_the_schema_passes_at_the_latest_revision(migrated: Engine) -> None:
    assert doctor.check_schema(migrated) == Finding(
        "schema", Status.OK, f"At the latest revision, {migrate.head()}."
    )


def test_no_key_file_in_the_data_directory_fails_and_says_to_run_init(tmp_path: Path) -> None:
    finding = doctor.check_keyring(Settings(data_dir=tmp_path, keyring_file=None))

    assert finding.status == Status.FAIL
    assert finding.message == f"The key file {tmp_path / 'keyring.json'} does not exist."
    assert finding.fix is not None and "tenure init" in finding.fix


def test_a_key_file_that_is_not_a_keyring_fails(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text("{}")
    path.chmod(0o600)

    finding = doctor.check_keyring(Settings(data_dir=tmp_path, keyring_file=path))

    assert finding.status == Status.FAIL
    assert finding.message == (
        f"the key file {path} is not usable: it is not a Tenure keyring "
        '(expected "format": "tenure.keyring/1").'
    )


def test_a_keyring_in_the_environment_passes(tmp_path: Path) -> None:
    text = keyrings.generate().to_json().decode()

    finding = doctor.check_keyring(Settings(data_dir=tmp_path, keyring=text))

    assert finding.status == Status.OK
    assert finding.message.startswith("From TENURE_KEYRING: 1 key(s), primary k")


def test_values_under_a_key_the_keyring_lacks_fail(healthy: Settings, migrated: Engine) -> None:
    with migrated.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO customer (kind, name, name_sort, email_cipher, lifecycle_stage, "
                "custom, created_at, updated_at, version) VALUES ('person', 'A', 'a', "
                "'kgone:AAAA', 'lead', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"
            )
        )

    findings = _by_check(doctor.run(lambda: healthy))

    assert findings["keys in use"] == Finding(
        "keys in use",
        Status.FAIL,
        "Values are encrypted under keys the keyring lacks: kgone (1 values).",
        "Put the key file that holds them back from your key backup (tenure keys status "
        "lists the keys in use).",
    )


def test_a_missing_keyring_fails(tmp_path: Path) -> None:
    path = tmp_path / "gone.json"

    finding = doctor.check_keyring(Settings(data_dir=tmp_path, keyring_file=path))

    assert finding.status == Status.FAIL
    assert finding.message == f"The key file {path} does not exist."


def test_a_keyring_others_can_read_fails_with_the_chmod_to_run(
    tmp_path: Path, keyring: Path
) -> None:
    keyring.chmod(0o644)

    finding = doctor.check_keyring(Settings(data_dir=tmp_path, keyring_file=keyring))

    assert finding == Finding(
        "keyring",
        Status.FAIL,
        f"The key file {keyring} can be read or written by others (mode 0644).",
        f"chmod 600 {keyring}",
    )


def test_a_keyring_that_is_a_directory_fails(tmp_path: Path) -> None:
    finding = doctor.check_keyring(Settings(data_dir=tmp_path, keyring_file=tmp_path))

    assert finding.status == Status.FAIL
    assert finding.message == f"{tmp_path} is not a file."


def test_a_private_keyring_passes(tmp_path: Path, keyring: Path) -> None:
    finding = doctor.check_keyring(Settings(data_dir=tmp_path, keyring_file=keyring))

    primary = keyrings.read_file(keyring).primary
    assert finding == Finding(
        "keyring",
        Status.OK,
        f"{keyring} is readable by its owner only: 1 key(s), primary {primary}.",
    )


def test_a_missing_data_directory_warns_with_the_mkdir_to_run(tmp_path: Path) -> None:
    missing = tmp_path / "data"

    finding = doctor.check_data_dir(Settings(data_dir=missing))

    assert finding.status == Status.WARN
    assert finding.fix == f"mkdir -p {missing}"


def test_a_data_directory_that_is_a_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("not a directory")

    finding = doctor.check_data_dir(Settings(data_dir=path))

    assert finding.status == Status.FAIL
    assert finding.message == f"{path} is not a directory."


def test_a_data_directory_nobody_can_write_in_fails() -> None:
    # procfs refuses new files even to root, so this holds whoever runs the tests.
    unwritable = Path("/proc/self").resolve()

    finding = doctor.check_data_dir(Settings(data_dir=unwritable))

    assert finding.status == Status.FAIL
    assert finding.message.startswith(f"Cannot write in {unwritable}: ")
    assert finding.fix == (
        f"Make it writable by the user Tenure runs as: chown -R <user> {unwritable}"
    )


def test_a_writable_data_directory_passes_and_is_left_clean(tmp_path: Path) -> None:
    finding = doctor.check_data_dir(Settings(data_dir=tmp_path))

    assert finding == Finding("data directory", Status.OK, f"{tmp_path} is writable.")
    assert list(tmp_path.iterdir()) == []


def test_free_disk_below_the_threshold_warns(tmp_path: Path) -> None:
    finding = doctor.check_disk(Settings(data_dir=tmp_path, min_free_disk_mb=10**12))

    assert finding.status == Status.WARN
    assert "(warning below 1,000,000,000,000 MB)" in finding.message
    assert finding.fix is not None


def test_free_disk_above_the_threshold_passes(tmp_path: Path) -> None:
    assert doctor.check_disk(Settings(data_dir=tmp_path, min_free_disk_mb=1)).status == Status.OK


def test_no_backup_yet_warns(tmp_path: Path) -> None:
    finding = doctor.check_last_backup(Settings(data_dir=tmp_path))

    assert finding == Finding(
        "last backup",
        Status.WARN,
        "No backup has been made here yet.",
        "Run 'tenure backup' and schedule it (for example daily, from cron).",
    )


def test_an_old_backup_warns(healthy: Settings) -> None:
    last = backup.last_backup(healthy)
    assert last is not None

    finding = doctor.check_last_backup(healthy, now=last.created_at + timedelta(hours=25))

    assert finding.status == Status.WARN
    assert finding.message == (f"The last backup is 25 hours old (warning after 24): {last.path}")


def test_the_backup_age_limit_is_a_setting(healthy: Settings) -> None:
    last = backup.last_backup(healthy)
    assert last is not None
    settings = healthy.model_copy(update={"backup_max_age_hours": 48})

    finding = doctor.check_last_backup(settings, now=last.created_at + timedelta(hours=25))

    assert finding.status == Status.OK


def test_a_backup_file_that_is_gone_warns(healthy: Settings) -> None:
    last = backup.last_backup(healthy)
    assert last is not None
    last.path.unlink()

    finding = doctor.check_last_backup(healthy)

    assert finding.status == Status.WARN
    assert finding.message == f"The last backup, {last.path}, is no longer there."


def test_a_recent_backup_passes(healthy: Settings) -> None:
    finding = doctor.check_last_backup(healthy, now=datetime.now(UTC))

    assert finding.status == Status.OK


def test_exit_code_is_1_on_a_failure_and_2_on_warnings_only() -> None:
    ok = Finding("a", Status.OK, "")
    info = Finding("b", Status.INFO, "")
    warn = Finding("c", Status.WARN, "")
    fail = Finding("d", Status.FAIL, "")

    assert doctor.exit_code([ok, info]) == 0
    assert doctor.exit_code([ok, warn]) == 2
    assert doctor.exit_code([warn, fail, ok]) == 1


def test_doctor_command_prints_each_problem_with_its_fix_and_exits_non_zero(
    run_cli: RunCli, fresh_settings: Settings, fresh_engine: Engine
) -> None:
    migrate.upgrade(fresh_engine, migrate.history()[0])
    fresh_settings.data_dir.mkdir(parents=True, exist_ok=True)

    result = run_cli("doctor", TENURE_MIN_FREE_DISK_MB="0")

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("OK    configuration   Settings load; database: ")
    assert (
        f"FAIL  schema          The database is at revision {migrate.history()[0]}; this "
        f"version of Tenure needs {migrate.head()}."
    ) in lines
    assert (
        "                      fix: Run 'tenure upgrade' (it backs up first); the server is "
        "not ready until then."
    ) in lines
    assert any(line.startswith("OK    keyring         ") for line in lines)
    assert "WARN  last backup     No backup has been made here yet." in lines
    assert lines[-1] == "1 failed, 1 warning."


def test_doctor_command_json_on_a_healthy_installation(
    run_cli: RunCli, healthy: Settings, keyring: Path
) -> None:
    result = run_cli(
        "doctor", "--json", TENURE_KEYRING_FILE=str(keyring), TENURE_MIN_FREE_DISK_MB="0"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "ok"
    assert [(c["check"], c["status"]) for c in report["checks"]] == [
        ("configuration", "ok"),
        *([("sqlite", "ok")] if healthy.is_sqlite else []),
        ("database", "ok"),
        ("schema", "ok"),
        ("keyring", "ok"),
        ("keys in use", "ok"),
        ("data directory", "ok"),
        ("disk", "ok"),
        ("last backup", "ok"),
    ]
    assert all(set(c) == {"check", "status", "message", "fix"} for c in report["checks"])
