#!/usr/bin/env bash
# Installs Tools/devnode/requirements.txt into Tools/devnode/.venv (idempotent; see Tools/venv-install.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../venv-install.sh" "$here"
