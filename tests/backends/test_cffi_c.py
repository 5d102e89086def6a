"""The C backend (hashcore._sha256d through cffi) against hashlib, on every code path.

Paths this CPU cannot run are skipped with the missing feature named; where the
extension is not built at all, the path tests are skipped and the test of a build
without it still runs.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from hashcore.backends import base, cffi_c
from hashcore.errors import BackendUnavailable, ConfigError
from hashcore.work import MAX_TARGET, Work
from tests.backends.scan_contract import ScanContract, expected

PATHS = ("scalar", "shani", "avx2", "avx512")


def _supported() -> list[str]:
    try:
        return cffi_c.supported_paths()
    except BackendUnavailable:
        return []


class TestEveryPath(ScanContract):
    """The scan contract on each code path this CPU has."""

    @pytest.fixture(params=PATHS)
    def backend(self, request: pytest.FixtureRequest) -> cffi_c.CBackend:
        path = request.param
        try:
            supported = cffi_c.supported_paths()
        except BackendUnavailable as exc:
            pytest.skip(f"C extension not built: {exc}")
        if path not in supported:
            pytest.skip(f"the {path} path needs {cffi_c._FEATURES[path]}; this CPU lacks it")
        backend = base.open_backend("c", path=path)
        assert isinstance(backend, cffi_c.CBackend)
        assert backend.path == path
        return backend


# --- opening, paths, and a build without the extension ---------------------------------


def test_auto_picks_a_supported_path_and_reports_it() -> None:
    supported = _supported()
    if not supported:
        pytest.skip("C extension not built")
    backend = base.open_backend("c")
    assert isinstance(backend, cffi_c.CBackend)
    assert backend.name == "c"
    assert backend.releases_gil is True
    assert backend.path in supported
    assert backend.path == cffi_c.auto_path()
    info = base.probe("c")
    assert info.available
    assert info.extra["paths"] == supported


@pytest.mark.parametrize("path", [p for p in PATHS if p != "scalar"])
def test_path_the_cpu_lacks_is_unavailable_with_the_reason(path: str) -> None:
    supported = _supported()
    if not supported:
        pytest.skip("C extension not built")
    if path in supported:
        pytest.skip(f"this CPU has the {path} path; nothing to refuse")
    with pytest.raises(BackendUnavailable, match=r"needs .*lacks.*fix"):
        base.open_backend("c", path=path)


def test_unknown_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sse9"):
        base.open_backend("c", path="sse9")


def test_missing_extension_leaves_package_importable_and_other_backends_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes "import hashcore._sha256d" raise ImportError, as when
    # the extension was never compiled.
    monkeypatch.setitem(sys.modules, "hashcore._sha256d", None)
    monkeypatch.delitem(sys.modules, "hashcore.backends.cffi_c", raising=False)
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    module = importlib.import_module("hashcore.backends.cffi_c")
    with pytest.raises(BackendUnavailable, match=r"not built.*pip install"):
        base.open_backend("c")
    info = base.probe("c")
    assert not info.available
    assert "not built" in info.detail
    assert module.CHOICES[0] == "auto"
    reference = base.open_backend("reference")
    work = Work.from_header(bytes(76), MAX_TARGET >> 1)
    assert reference.scan(work, 0, 50, 100).nonces == expected(work, 0, 50)
