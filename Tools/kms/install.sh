#!/usr/bin/env bash
# Installs Tools/kms/requirements.txt into Tools/kms/.venv (idempotent; see Tools/venv-install.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../venv-install.sh" "$here"
