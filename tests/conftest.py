from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).parent / "vectors"


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


@pytest.fixture(scope="session")
def stratum_jobs() -> list[dict[str, Any]]:
    return load_vectors("stratum_jobs.json")


@pytest.fixture(scope="session")
def raw_blocks() -> list[dict[str, Any]]:
    return load_vectors("blocks.json")
