#!/usr/bin/env bash
# Installs kms_server's Python environment into Tools/kms/.venv (idempotent).
# Needs python3 with the venv module (Debian 12: apt-get install python3-venv) and PyPI.
# A stamp file holds the hash of requirements.txt: when it matches, nothing is done
# and nothing is printed, so scripts and CI can call this every time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    echo "kms install: need Python >= 3.10 (found: $("$python" --version 2>&1))" >&2
    exit 1
fi
if [[ ! -x "$venv/bin/python" ]]; then
    echo "kms install: creating $venv" >&2
    "$python" -m venv "$venv" || {
        echo "kms install: 'python3 -m venv' failed; on Debian: apt-get install python3-venv" >&2
        exit 1
    }
fi
echo "kms install: installing requirements (about 50 s from wheels)" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "$want" > "$stamp"
echo "kms install: done ($venv)" >&2
