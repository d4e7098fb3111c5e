#!/usr/bin/env bash
# Installs Tools/azure/requirements.txt into Tools/azure/.venv (idempotent; see Tools/venv-install.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../venv-install.sh" "$here"
