"""The cache files of measured choices: bounded reads, locked atomic updates, removal of
whatever stands in their place."""

from __future__ import annotations

import json
import subprocess
import sys
import time
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


def test_a_lock_held_by_a_stopped_process_is_waited_for_once_then_updates_go_on(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(cachefile, "LOCK_SECONDS", 0.3)
    path = tmp_path / "cache.json"
    holder = subprocess.Popen(["flock", str(tmp_path / "cache.json.lock"), "sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "cache.json.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        began = time.monotonic()
        cachefile.update(path, "test cache", lambda data: {"a": 1})
        first = time.monotonic() - began
        began = time.monotonic()
        cachefile.update(path, "test cache", lambda data: {**(data or {}), "b": 2})
        second = time.monotonic() - began
    finally:
        holder.kill()
        holder.wait()
    assert json.loads(path.read_text()) == {"a": 1, "b": 2}
    assert first >= 0.3 and second < 0.3  # the second update does not wait again
    assert sum(f"{tmp_path / 'cache.json.lock'} has been held" in r.message for r in caplog.records) == 1
