"""Shared fixtures: paths to the repository's folders and to the real exports beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture
def datasets() -> Path:
    """The real public exports in ../shared/datasets; tests using them skip where it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets is not beside the repository")
    return SHARED_DATASETS
