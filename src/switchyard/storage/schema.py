"""Versioned migrations: the numbered SQL files per dialect, and which ones a database lacks.

Both backends apply what :func:`pending` returns, each migration in one transaction together
with its row in ``schema_migrations``.
"""

from __future__ import annotations

from collections.abc import Collection
from importlib import resources

from switchyard.storage.base import MigrationError


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration of ``dialect``, oldest first."""
    folder = resources.files("switchyard.storage").joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text("utf-8")))
    return sorted(found)


def pending(
    applied: Collection[int], known: list[tuple[int, str, str]]
) -> list[tuple[int, str, str]]:
    """The migrations still to apply; refuses a database written by a newer version."""
    unknown = set(applied) - {version for version, _, _ in known}
    if unknown:
        raise MigrationError(
            f"database has migrations {sorted(unknown)} that this version does not know; "
            "it was written by a newer Switchyard"
        )
    return [m for m in known if m[0] not in applied]
