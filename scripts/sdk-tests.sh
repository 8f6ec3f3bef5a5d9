#!/usr/bin/env bash
# Runs the official OpenAI Python SDK tests (server/src/test/python) against a live server: sdk-tests.sh BASE_URL
# (e.g. http://127.0.0.1:8080/v1). The venv lives outside the repository, in ~/.cache/steer/venv (or
# $STEER_CACHE/venv), and is made once with pip from PyPI; the SDK version is pinned so that a new release cannot
# change what CI tests without a commit saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: sdk-tests.sh BASE_URL}
venv="${STEER_CACHE:-$HOME/.cache/steer}/venv"
requirements="openai==3.57.0 pytest==9.2.0"
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$requirements" ]; then
  rm -rf "$venv"
  # As with the models: tests that cannot be fetched are skipped, saying so (PyPI unreachable); failing tests fail.
  # shellcheck disable=SC2086
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check $requirements; }; then
    rm -rf "$venv"
    echo "WARNING: could not install $requirements from PyPI; the OpenAI Python SDK tests are skipped" >&2
    exit 0
  fi
  echo "$requirements" > "$venv/.requirements"
fi
STEER_BASE_URL="$base" "$venv/bin/python" -m pytest -q -p no:cacheprovider server/src/test/python
