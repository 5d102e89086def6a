"""Backend tests keep their caches (path choice, OpenCL tune) in a directory of this run."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hashcore.backends import pathchoice


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = os.environ.get("HASHCORE_CACHE_DIR")
    os.environ["HASHCORE_CACHE_DIR"] = str(tmp_path_factory.mktemp("hashcore-cache"))
    pathchoice.forget()
    yield
    pathchoice.forget()
    if old is None:
        os.environ.pop("HASHCORE_CACHE_DIR", None)
    else:
        os.environ["HASHCORE_CACHE_DIR"] = old
