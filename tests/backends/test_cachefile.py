"""The cache files of measured choices: bounded reads, locked atomic updates, removal of
whatever stands in their place."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hashcore.backends import cachefile

WRITER = """
import sys
from pathlib import Path
from hashcore.backends import cachefile
path, name = Path(sys.argv[1]), sys.argv[2]
for i in range(int(sys.argv[3])):
    cachefile.update(path, "test cache", lambda data, i=i: {**(data or {}), f"{name} {i}": i})
"""


def test_two_processes_updating_at_once_keep_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "150"]) for name in ("a", "b")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    data = json.loads(path.read_text())
    assert sorted(data) == sorted(f"{name} {i}" for name in ("a", "b") for i in range(150))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.json", "cache.json.lock"]


def test_an_update_over_a_folder_in_the_way_is_logged_and_leaves_nothing_behind(tmp_path: Path, caplog) -> None:
    path = tmp_path / "cache.json"
    path.mkdir()
    (path / "inside").write_text("kept")
    cachefile.update(path, "test cache", lambda data: {"a": 1})
    assert any(f"cannot save the test cache to {path}" in r.message for r in caplog.records)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.json", "cache.json.lock"]


def test_remove_takes_away_a_file_a_link_or_an_empty_folder_and_logs_what_it_cannot(tmp_path: Path, caplog) -> None:
    for make in (lambda p: p.write_text("{}"), lambda p: p.symlink_to("/dev/zero"), lambda p: p.mkdir()):
        path = tmp_path / "cache.json"
        make(path)
        cachefile.remove(path, "test cache")
        assert not path.exists() and not path.is_symlink()
    cachefile.remove(tmp_path / "never-there.json", "test cache")  # nothing to do, nothing said
    assert not caplog.records
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("")
    cachefile.remove(full, "test cache")
    assert full.is_dir() and any(f"cannot remove the test cache {full}" in r.message for r in caplog.records)
