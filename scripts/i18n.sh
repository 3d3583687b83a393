#!/usr/bin/env bash
# Keep the web UI's translations in step with the code.
#
#   scripts/i18n.sh extract   write src/tenure/web/locale/messages.pot from the templates
#                             and Python code (what babel.cfg names)
#   scripts/i18n.sh update    extract, then merge the new and changed messages into every
#                             catalog (src/tenure/web/locale/<locale>/LC_MESSAGES/messages.po)
#   scripts/i18n.sh check     list the messages each catalog lacks or has not translated
#                             (also a test: tests/web/test_i18n.py)
#
# After adding or changing a user-visible string: run `update`, translate every entry
# with an empty msgstr or a "#, fuzzy" flag in the .po file (remove the flag once
# checked), and run `check`. Catalogs are compiled in memory when the app starts; no .mo
# files are kept. A new language: `pybabel init -i <pot> -d src/tenure/web/locale -l xx`,
# then add it to SUPPORTED and LABELS in src/tenure/web/i18n.py.
set -euo pipefail
cd "$(dirname "$0")/.."

LOCALES=src/tenure/web/locale
POT=$LOCALES/messages.pot
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
PYTHON=${PYTHON:-.venv/bin/python}

extract() {
    mkdir -p "$LOCALES"
    # N_() marks a message that is translated where it is shown (see tenure.web.messages).
    "$PYBABEL" --quiet extract -F babel.cfg -k N_ --add-comments=Translators: \
        --project=Tenure --copyright-holder="Tenure" --no-wrap -o "$POT" .
    echo "wrote $POT ($(grep -c '^msgid "[^"]' "$POT") messages)"
}

update() {
    extract
    "$PYBABEL" --quiet update --no-wrap --ignore-obsolete -i "$POT" -d "$LOCALES"
    check || true
}

check() {
    "$PYTHON" - "$LOCALES" <<'EOF'
import sys
from pathlib import Path

from babel.messages.pofile import read_po

status = 0
for po in sorted(Path(sys.argv[1]).glob("*/LC_MESSAGES/messages.po")):
    with po.open("rb") as fh:
        catalog = read_po(fh)
    todo = [m for m in catalog if m.id and (m.fuzzy or not all(m.string if isinstance(m.string, tuple) else [m.string]))]
    problems = [(m, e) for m, errors in catalog.check() for e in errors]
    print(f"{po}: {len(catalog)} messages, {len(todo)} to translate, {len(problems)} format errors")
    for m in todo:
        print(f"  to translate: {m.id!r}{' (fuzzy)' if m.fuzzy else ''}")
    for m, e in problems:
        print(f"  {m.id!r}: {e}")
    status |= bool(todo or problems)
sys.exit(status)
EOF
}

case "${1:-}" in
    extract) extract ;;
    update) update ;;
    check) check ;;
    *)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
