#!/usr/bin/env bash
# Installs one Python tool's environment: Tools/<tool>/requirements.txt into Tools/<tool>/.venv (idempotent).
# Each tool's install.sh calls this with its own directory. Needs python3 with the venv module (Debian 12:
# apt-get install python3-venv) and PyPI. A stamp file holds the hash of requirements.txt: when it matches, nothing
# is done and nothing is printed, so scripts, tests and CI can call it every time.
# Usage: Tools/venv-install.sh TOOL_DIR
set -euo pipefail

here="$(cd "$1" && pwd)"
label="$(basename "$here") install"
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    echo "$label: need Python >= 3.10 (found: $("$python" --version 2>&1))" >&2
    exit 1
fi
if [[ ! -x "$venv/bin/python" ]]; then
    echo "$label: creating $venv" >&2
    "$python" -m venv "$venv" || {
        echo "$label: 'python3 -m venv' failed; on Debian: apt-get install python3-venv" >&2
        exit 1
    }
fi
echo "$label: installing requirements from PyPI" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "$want" > "$stamp"
echo "$label: done ($venv)" >&2
