#!/usr/bin/env bash
# The whole test suite on a fresh Debian/Ubuntu machine as root: system packages, virtualenv,
# lint, types, unit and end-to-end tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
bash scripts/venv.sh
echo "== ruff";  .venv/bin/ruff check onemon tests bench
echo "== mypy";  .venv/bin/mypy
echo "== pytest"
.venv/bin/pytest -q -p no:cacheprovider "$@"
