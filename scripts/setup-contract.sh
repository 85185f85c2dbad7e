#!/usr/bin/env bash
# Sets up what the contract tests need (tests/it/contract.rs, tests/it/sdk.rs):
#
#   1. the published Runtime API v1 contract: the source distribution of the `kyrodb` Python
#      package 1.0.3, fetched by package name from PyPI into target/contract/, its SHA-256
#      checked, and contracts/kyro-runtime.v1.openapi.json taken out of it and checked too;
#   2. a Python venv in target/sdk-venv/ with the official SDK (kyrodb==1.0.3) and its
#      dependencies at the versions pinned in tests/sdk/requirements.txt.
#
# Steps already done (right hashes, same requirements) are skipped, so a second run only
# hashes a few files. A hash mismatch fails with both hashes and removes nothing else.
#
# Environment overrides:
#   PYTHON   the interpreter that makes the venv and runs pip (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
SDIST_NAME="kyrodb-1.0.3.tar.gz"
SDIST_SHA256="a0c1a1d720e2f263bdd7a8beaff8e69c1651e7898461cf25e8ce36070954b30f"
CONTRACT_MEMBER="kyrodb-1.0.3/contracts/kyro-runtime.v1.openapi.json"
CONTRACT_SHA256="d299009fbb771af8c3b7fddff78346c180fc00e3dbaf9c57620e42b8cee9716b"
CONTRACT_DIR="target/contract"
CONTRACT="${CONTRACT_DIR}/kyro-runtime.v1.openapi.json"
VENV="target/sdk-venv"
REQUIREMENTS="tests/sdk/requirements.txt"

sha256_of() {
  sha256sum "$1" | cut -d' ' -f1
}

# has_hash FILE HASH: the file exists and has that SHA-256.
has_hash() {
  [ -f "$1" ] && [ "$(sha256_of "$1")" = "$2" ]
}

# check_hash FILE HASH WHAT: fails the script, naming both hashes, unless FILE has HASH.
check_hash() {
  local actual
  actual="$(sha256_of "$1")"
  if [ "$actual" != "$2" ]; then
    echo "error: $3 $1 has SHA-256 $actual, the pinned one is $2" >&2
    echo "error: the published contract changed or the download was altered; not using it" >&2
    rm -f "$1"
    exit 1
  fi
}

mkdir -p "$CONTRACT_DIR"
if has_hash "${CONTRACT_DIR}/${SDIST_NAME}" "$SDIST_SHA256"; then
  echo "==> kyrodb 1.0.3 source distribution present (SHA-256 checked)"
else
  echo "==> fetching the kyrodb 1.0.3 source distribution from PyPI"
  download="$(mktemp -d)"
  trap 'rm -rf "$download"' EXIT
  "$PYTHON" -m pip download kyrodb==1.0.3 --no-deps --no-binary :all: \
    --disable-pip-version-check --quiet -d "$download"
  check_hash "${download}/${SDIST_NAME}" "$SDIST_SHA256" "the downloaded source distribution"
  mv "${download}/${SDIST_NAME}" "${CONTRACT_DIR}/${SDIST_NAME}"
fi

if has_hash "$CONTRACT" "$CONTRACT_SHA256"; then
  echo "==> contract ${CONTRACT} present (SHA-256 checked)"
else
  echo "==> extracting ${CONTRACT_MEMBER}"
  tar -xzf "${CONTRACT_DIR}/${SDIST_NAME}" -O "$CONTRACT_MEMBER" > "${CONTRACT}.partial"
  check_hash "${CONTRACT}.partial" "$CONTRACT_SHA256" "the extracted contract"
  mv "${CONTRACT}.partial" "$CONTRACT"
fi

stamp="${VENV}/.kyro-requirements.sha256"
wanted="$(sha256_of "$REQUIREMENTS")"
if [ -x "${VENV}/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  echo "==> SDK venv ${VENV} present with ${REQUIREMENTS}"
else
  echo "==> building the SDK venv ${VENV} from ${REQUIREMENTS}"
  rm -rf "$VENV"
  if ! "$PYTHON" -m venv "$VENV"; then
    echo "error: '$PYTHON -m venv' failed; on Debian install python3-venv (apt-get install python3-venv)" >&2
    exit 1
  fi
  "${VENV}/bin/python" -m pip install --disable-pip-version-check --quiet --no-input \
    --only-binary :all: -r "$REQUIREMENTS"
  "${VENV}/bin/python" -c 'import kyrodb, sys; sys.exit(0 if kyrodb.__version__ == "1.0.3" else "kyrodb is " + kyrodb.__version__)'
  echo "$wanted" > "$stamp"
fi
