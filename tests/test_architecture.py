"""The shape of hashcore/: floors, the import rules, no cycles, modules of a readable size.

The rules are the tables at the top of ``scripts/import_graph.py`` (FLOORS, RULES,
LINE_LIMIT, LARGE_MODULES), so that ``python scripts/import_graph.py --check`` and these
tests say the same thing. Each rule is also shown to fail on a small package built here.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_script():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


graph_tool = _load_script()


def _messages(violations) -> str:
    return "\n".join(v.message for v in violations)


@pytest.fixture(scope="module")
def tree():
    return graph_tool.build_graph(ROOT / "hashcore")


# --- the real tree ---------------------------------------------------------------------


def test_every_module_is_on_a_floor_and_no_import_goes_up(tree):
    violations = graph_tool.check_floors(tree)
    assert violations == [], _messages(violations)


def test_module_rules_hold(tree):
    violations = graph_tool.check_rules(tree)
    assert violations == [], _messages(violations)


def test_nothing_inside_imports_the_public_surface(tree):
    violations = graph_tool.check_public(tree)
    assert violations == [], _messages(violations)


def test_no_import_cycle(tree):
    violations = graph_tool.check_cycles(tree)
    assert violations == [], _messages(violations)


def test_no_module_over_the_line_limit_unless_one_job_is_that_large(tree):
    violations = graph_tool.check_sizes(tree)
    assert violations == [], _messages(violations)


def test_every_large_module_says_why():
    for path, why in graph_tool.LARGE_MODULES.items():
        assert path.endswith(".py") and len(why.split()) >= 5, path


def test_the_graph_sees_the_real_imports(tree):
    # Guards the checks above against a graph that silently finds nothing.
    assert "hashcore.work" in tree.imports["hashcore.worksource"]
    assert {"hashcore.errors", "hashcore.sha256"} <= tree.imports["hashcore.work"]
    assert "hashcore.work" in tree.imports["hashcore"]  # the public re-exports
    assert len(tree.files) > 50


# --- every rule can fail ---------------------------------------------------------------


def _write(base: Path, files: dict[str, str]) -> Path:
    package = base / "fakepkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return package


#: A package that keeps every rule: the same floors, re-exports through __init__ files.
CLEAN = {
    "__init__.py": "from fakepkg.engine import Miner\nfrom fakepkg._version import __version__\n",
    "_version.py": "__version__ = '0'\n",
    "errors.py": "class WorkError(Exception): ...\n",
    "boundedjson.py": "",
    "work.py": "from fakepkg.errors import WorkError\n",
    "engine.py": "from fakepkg import work\nfrom fakepkg.throttle import Trace\nclass Miner: ...\n",
    "throttle/__init__.py": "from fakepkg.throttle.signals import Trace\n",
    "throttle/signals.py": "from fakepkg.errors import WorkError\nfrom fakepkg.report.account import Account\n"
                           "class Trace: ...\n",
    "throttle/traces.py": "from fakepkg.throttle import Trace\n",  # through the package: not a cycle
    "report/__init__.py": "",
    "report/account.py": "class Account: ...\n",
    "app/__init__.py": "",
    "app/live.py": "from fakepkg.engine import Miner\nfrom ..throttle import signals\n",
    "cli/__init__.py": "from fakepkg.cli import mine\n",
    "cli/mine.py": "import fakepkg.app.live\nfrom fakepkg.api import server\n",
    "api/__init__.py": "",
    "api/server.py": "from fakepkg.engine import Miner\n",
}

#: The same package with one breach of each rule.
BROKEN = {
    **CLEAN,
    # An arrow up from a function body: core imports app.
    "work.py": "from fakepkg.errors import WorkError\ndef run():\n    from fakepkg.app import tools\n",
    "app/tools.py": "",
    # A cycle, written once relative and once absolute.
    "throttle/signals.py": "from . import traces\nfrom fakepkg.errors import WorkError\nclass Trace: ...\n",
    "throttle/traces.py": "import fakepkg.throttle.signals\nfrom fakepkg import boundedjson\n",
    # report never imports the throttle, not even for typing.
    "report/run.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from fakepkg.throttle.traces import Trace\n",
    # Nothing imports the command line; the public surface is not imported from inside.
    "api/server.py": "from fakepkg.cli.args import main\nfrom fakepkg import __version__\n",
    "cli/args.py": "",
    # On no floor.
    "gadget.py": "",
    # Over the limit, in a module not listed as large.
    "engine.py": "from fakepkg import work\n" + "x = 1\n" * 460,
}


def test_a_clean_package_passes_every_check(tmp_path, monkeypatch):
    graph = graph_tool.build_graph(_write(tmp_path, CLEAN))
    assert graph_tool.check_floors(graph) == []
    assert graph_tool.check_rules(graph) == []
    assert graph_tool.check_public(graph) == []
    assert graph_tool.check_cycles(graph) == []
    assert graph_tool.check_sizes(graph, large={}) == []
    monkeypatch.setattr(graph_tool, "LARGE_MODULES", {})  # hashcore's listings name no module here
    assert graph_tool.main([str(tmp_path / "fakepkg"), "--check"]) == 0


def test_imports_resolve_to_modules(tmp_path):
    graph = graph_tool.build_graph(_write(tmp_path, BROKEN))
    imports = graph.imports
    assert imports["fakepkg.work"] == {"fakepkg.errors", "fakepkg.app.tools"}  # the one in a function too
    assert imports["fakepkg.throttle.signals"] == {"fakepkg.throttle.traces", "fakepkg.errors"}  # "from . import"
    assert imports["fakepkg.throttle.traces"] == {"fakepkg.throttle.signals", "fakepkg.boundedjson"}
    assert imports["fakepkg.report.run"] == {"fakepkg.throttle.traces"}  # under TYPE_CHECKING
    assert imports["fakepkg.api.server"] == {"fakepkg.cli.args", "fakepkg"}  # a name of the root: the root
    assert imports["fakepkg.app.live"] == {"fakepkg.engine", "fakepkg.throttle.signals"}  # "from ..throttle import"
    assert imports["fakepkg.throttle"] == {"fakepkg.throttle.signals"}


def test_each_breach_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(graph_tool, "LARGE_MODULES", {})
    graph = graph_tool.build_graph(_write(tmp_path, BROKEN))
    found = {(v.kind, v.message) for v in graph_tool.check_all(graph)}
    assert ("floor", "fakepkg.work (core) imports fakepkg.app.tools (app): an arrow up") in found
    assert ("unassigned", "fakepkg.gadget is on no floor: add it to FLOORS") in found
    assert ("cycle", "fakepkg.throttle.signals -> fakepkg.throttle.traces -> fakepkg.throttle.signals") in found
    assert ("size", "fakepkg/engine.py has 461 lines (limit 450)") in found
    assert ("public", "fakepkg.api.server imports fakepkg (the public surface): import the module itself") in found
    rules = sorted(message for kind, message in found if kind == "rule")
    assert rules == [
        "fakepkg.api.server imports fakepkg.cli.args: the command line is the top: nothing imports it",
        "fakepkg.report.run imports fakepkg.throttle.traces: the report reads run results, it never drives the "
        "throttle",
        "fakepkg.throttle.traces imports fakepkg.boundedjson: the throttle is a pure control core (it imports only "
        "errors, report.account, throttle)",
    ]
    # Nothing else: the re-exports of fakepkg/__init__.py and throttle/__init__.py make no cycle.
    assert len(found) == 8, sorted(found)
    assert graph_tool.main([str(tmp_path / "fakepkg"), "--check"]) == 1


def test_presenters_above_app_and_app_above_core(tmp_path):
    files = {**CLEAN, "app/live.py": "from fakepkg.api import server\n", "engine.py": "import fakepkg.cli.mine\n"}
    graph = graph_tool.build_graph(_write(tmp_path, files))
    assert {v.message for v in graph_tool.check_floors(graph)} == {
        "fakepkg.app.live (app) imports fakepkg.api.server (presenters): an arrow up",
        "fakepkg.engine (core) imports fakepkg.cli.mine (presenters): an arrow up",
    }


@pytest.mark.parametrize(
    ("module", "text", "expected"),
    [
        ("stratum/client.py", "from fakepkg.backends import base\n",
         "fakepkg.stratum.client imports fakepkg.backends.base"),
        ("backends/base.py", "from fakepkg.engine import Miner\n", "fakepkg.backends.base imports fakepkg.engine"),
        ("backends/base.py", "from fakepkg.stratum.client import Link\n",
         "fakepkg.backends.base imports fakepkg.stratum.client"),
        ("throttle/live.py", "from fakepkg.report.run import RunFolder\n",
         "fakepkg.throttle.live imports fakepkg.report.run"),
    ],
)
def test_the_narrow_rules(tmp_path, module, text, expected):
    files = {
        **CLEAN, "stratum/__init__.py": "", "stratum/client.py": "class Link: ...\n", "backends/__init__.py": "",
        "backends/base.py": "", "report/run.py": "class RunFolder: ...\n", module: text,
    }
    graph = graph_tool.build_graph(_write(tmp_path, files))
    messages = [v.message for v in graph_tool.check_rules(graph)]
    assert len(messages) == 1 and messages[0].startswith(expected + ": "), messages


def test_large_modules_need_a_listing_and_a_listing_needs_a_large_module(tmp_path):
    files = {**CLEAN, "big.py": "x = 1\n" * 451, "small.py": "x = 1\n" * 450}
    graph = graph_tool.build_graph(_write(tmp_path, files))
    assert [v.message for v in graph_tool.check_sizes(graph, large={})] == ["fakepkg/big.py has 451 lines (limit 450)"]
    assert graph_tool.check_sizes(graph, large={"big.py": "one job"}) == []
    stale = graph_tool.check_sizes(graph, large={"big.py": "one job", "small.py": "one job", "gone.py": "one job"})
    assert [v.message for v in stale] == [
        "fakepkg/gone.py is listed as large but does not exist",
        "fakepkg/small.py is listed as large but has 450 lines: take it off the list",
    ]


def test_longer_cycles_are_shown_as_one_circle(tmp_path):
    files = {
        **CLEAN,
        "work.py": "from fakepkg import sha256\n",
        "sha256.py": "from fakepkg import lograte\n",
        "lograte.py": "from fakepkg.work import Job\nfrom fakepkg import errors\n",
    }
    graph = graph_tool.build_graph(_write(tmp_path, files))
    assert graph_tool.cycles(graph) == [["fakepkg.lograte", "fakepkg.work", "fakepkg.sha256", "fakepkg.lograte"]]


def test_pictures(tmp_path, capsys):
    package = _write(tmp_path, BROKEN)
    assert graph_tool.main([str(package), "--mermaid"]) == 0
    drawing = capsys.readouterr().out
    assert drawing.startswith("flowchart BT\n  subgraph core\n")
    assert "  mwork -. up .-> mapp\n" in drawing
    assert "  mapp --> mengine\n" in drawing
    assert "  mgadget[gadget: on no floor]\n" in drawing
    assert graph_tool.main([str(package), "--cycles"]) == 0
    circle = "fakepkg.throttle.signals -> fakepkg.throttle.traces -> fakepkg.throttle.signals"
    assert capsys.readouterr().out == circle + "\n"
    assert graph_tool.main([str(package)]) == 0
    text = capsys.readouterr().out
    assert "on no floor:\n  gadget (1 module, 0 lines) -> -" in text
    assert "  work (1 module, 3 lines) -> app, errors" in text
