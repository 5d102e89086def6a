"""The Stratum fuzzer (bench/fuzz_stratum.py) in a short run: neither core lets an exception out."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZER = Path(__file__).resolve().parents[2] / "bench" / "fuzz_stratum.py"


def load_fuzzer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_stratum", FUZZER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [1, 2])
def test_thousands_of_generated_lines_raise_nothing_in_the_client_or_the_pool(seed):
    result = load_fuzzer().run(3000, seed)
    assert result.count == 6000
    assert not result.failures, f"{result.failures[0].core} core raised on {result.failures[0].data[:500]!r}:\n" \
                                f"{result.failures[0].trace}"
