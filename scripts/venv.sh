#!/usr/bin/env bash
# Create or refresh the project's virtualenv (.venv) with every extra; fast when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.onemon-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/pip install -q --disable-pip-version-check -e '.[all,dev]' 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -c 'import onemon, cbor2, libvirt, psutil, uvloop, sqlalchemy, aiohttp'
    echo "$want" > "$stamp"
fi
