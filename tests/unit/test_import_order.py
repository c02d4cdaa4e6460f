"""Modules import on their own, in a fresh interpreter, whichever is imported first."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "switchyard.web.routes",  # the pages import server modules; app imports the pages
        "switchyard.web.account_pages",
        "switchyard.server.state",
        "switchyard.server.app",
    ],
)
def test_a_module_imports_first_without_a_cycle(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
