#!/usr/bin/env bash
# Installs Tools/vault/requirements.txt into Tools/vault/.venv (idempotent; see Tools/venv-install.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../venv-install.sh" "$here"
