from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hashcore.backends import pathchoice

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The run's caches (path choice, OpenCL tune) live in a directory of its own, which
    the miners it starts inherit: a measurement taken while the suite keeps the cores
    busy must never land in the user's cache."""
    # The suite keeps its own cores busy, so its measurements are cached as on an idle
    # machine (HASHCORE_BUSY_SHARE=0); the busy check's tests set the threshold back.
    saved = {name: os.environ.get(name) for name in ("HASHCORE_CACHE_DIR", "HASHCORE_BUSY_SHARE")}
    os.environ["HASHCORE_CACHE_DIR"] = str(tmp_path_factory.mktemp("hashcore-cache"))
    os.environ["HASHCORE_BUSY_SHARE"] = "0"
    pathchoice.forget()
    yield
    pathchoice.forget()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


@pytest.fixture(scope="session")
def stratum_jobs() -> list[dict[str, Any]]:
    return load_vectors("stratum_jobs.json")


@pytest.fixture(scope="session")
def raw_blocks() -> list[dict[str, Any]]:
    return load_vectors("blocks.json")
