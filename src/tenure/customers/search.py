"""Search terms: the words and whole values a customer can be found by prefix."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERM = 120


def normalize(text: str) -> str:
    """Case- and width-folded, accents kept, single spaces: how terms and queries compare."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


def terms(*, name: str, company_name: str | None) -> set[str]:
    """Every term a customer is found by: each word and the whole of the name and company.

    Never a sensitive value: emails and phone numbers are found exactly, by their blind
    index (``tenure.customers.service``), and are stored only encrypted."""
    found: set[str] = set()
    for value in (name, company_name):
        if value:
            whole = normalize(value)
            found.add(whole)
            found.update(_WORD.findall(whole))
    return {t[:MAX_TERM] for t in found if t}


def prefix_range(query: str) -> tuple[str, str] | None:
    """The half-open range [lo, hi) of terms that start with ``query``."""
    lo = normalize(query)[:MAX_TERM]
    if not lo:
        return None
    return lo, lo + "\U0010ffff"
