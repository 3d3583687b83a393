#!/usr/bin/env bash
# Install Tenure and its pinned dependencies into .venv. Used by ./run and ./test.
# Skipped when .venv already holds exactly what requirements.lock and pyproject.toml ask
# for (a hash of both is kept in .venv/.installed). Prints "up to date" or "installed".
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-$(command -v python3.11 || command -v python3)}
stamp=.venv/.installed
wanted=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -x .venv/bin/python && "$(cat "$stamp" 2>/dev/null)" == "$wanted" ]] &&
    .venv/bin/python -c 'import tenure' 2>/dev/null; then
    echo "up to date"
    exit 0
fi
echo "Installing Tenure into .venv ..." >&2
if ! .venv/bin/python -c 'import sys' 2>/dev/null; then
    rm -rf .venv
    # Debian's own Python needs python3-venv for this (pip is not there without it).
    if ! "$python" -m venv .venv; then
        rm -rf .venv
        if [[ $(id -u) -ne 0 ]]; then
            echo "error: '$python -m venv' failed; install python3-venv and run again" >&2
            exit 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2
        "$python" -m venv .venv
    fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
# sync: exactly the locked packages, removing anything else (uv and pip stay).
.venv/bin/uv pip sync --quiet --python .venv/bin/python requirements.lock
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
echo "$wanted" >"$stamp"
echo "installed"
