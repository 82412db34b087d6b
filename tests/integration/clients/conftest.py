"""Shared by the other-language client tests: the Node.js project in tests/clients/node, installed
with `npm ci` once per lock file (node_modules/ carries a stamp with the lock file's SHA-256)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
NODE_DIR = ROOT / "tests" / "clients" / "node"
STAMP = NODE_DIR / "node_modules" / ".brokkr-package-lock.sha256"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    lock = hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()
    if not (STAMP.exists() and STAMP.read_text() == lock):
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            timeout=600,
        )
        STAMP.write_text(lock)
    return NODE_DIR / "node_modules"
