"""Languages of the web UI: gettext catalogs (Babel .po files) and locale formatting."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime, format_skeleton, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations
from babel.units import format_unit

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT = "en"
SUPPORTED = ("en", "zh_CN")
LABELS = {"en": "English", "zh_CN": "简体中文"}
# Sizes in decimal units, as CLDR names them: 1 kB is 1,000 bytes.
SIZE_UNITS = (
    (10**12, "digital-terabyte"),
    (10**9, "digital-gigabyte"),
    (10**6, "digital-megabyte"),
    (10**3, "digital-kilobyte"),
)


@lru_cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalog for ``locale`` (read from its .po file once per process)."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def normalize(tag: str | None) -> str | None:
    """Map a language tag (``zh-CN``, ``zh-Hans``, ``en-GB``) to a supported locale."""
    if not tag:
        return None
    tag = tag.strip().replace("-", "_").lower()
    if tag.startswith("zh"):
        return "zh_CN"
    if tag.startswith("en"):
        return "en"
    return None


def negotiate(accept_language: str | None, preferred: str | None = None) -> str:
    """The user's chosen locale, else the best match in Accept-Language, else English."""
    if preferred in SUPPORTED:
        return preferred
    ranked: list[tuple[float, str]] = []
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        found = normalize(tag)
        if found:
            ranked.append((q, found))
    ranked.sort(key=lambda item: -item[0])
    return ranked[0][1] if ranked and ranked[0][0] > 0 else DEFAULT


Day = date  # a date or a datetime (the Formatter's methods hide both names)
Moment = datetime


@dataclass(frozen=True)
class Formatter:
    """Numbers, money and dates as people in ``locale`` write them."""

    locale: str

    def number(self, value: int | float | Decimal) -> str:
        return format_decimal(value, locale=self.locale)

    def money(self, amount: Decimal, currency: str) -> str:
        return format_currency(amount, currency, locale=self.locale)

    def date(self, value: date | datetime | None) -> str:
        return format_date(value, format="medium", locale=self.locale) if value else ""

    def datetime(self, value: datetime | None) -> str:
        return format_datetime(value, format="short", locale=self.locale) if value else ""

    def time(self, value: Moment) -> str:
        """Hours and minutes: "2:05 PM", "14:05"."""
        return format_time(value, format="short", locale=self.locale)

    def ago(self, value: Moment, now: Moment) -> str:
        """How long before ``now``: "3 hours ago", "3小时前"."""
        return format_timedelta(value - now, add_direction=True, locale=self.locale)

    def decimal(self, value: float) -> str:
        """A number with at most two decimals: "1,234.57"."""
        return format_decimal(value, format="#,##0.##", locale=self.locale)

    def percent(self, value: float) -> str:
        """A share as a percentage with at most two decimals: "0.25%"."""
        return format_percent(value, format="#,##0.##%", locale=self.locale)

    def milliseconds(self, value: float) -> str:
        """A duration in milliseconds: "12.5 ms", "12.5毫秒"."""
        return format_unit(
            value, "duration-millisecond", length="short", format="#,##0.#", locale=self.locale
        )

    def size(self, value: int) -> str:
        """A size in bytes in the largest unit it fills: "12.3 MB"."""
        for factor, unit in SIZE_UNITS:
            if value >= factor:
                return format_unit(
                    value / factor, unit, length="short", format="#,##0.#", locale=self.locale
                )
        return format_unit(value, "digital-byte", length="short", locale=self.locale)

    def month(self, value: Day) -> str:
        """A month and its year: "Nov 2026", "2026年11月"."""
        return format_skeleton("yMMM", value, locale=self.locale)

    @property
    def html_lang(self) -> str:
        return str(Locale.parse(self.locale)).replace("_", "-")
