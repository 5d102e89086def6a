"""The import graph of hashcore/: drawn, searched for cycles and checked against the layering rules.

    python scripts/import_graph.py             a summary: each package, its floor, its size, what it imports
    python scripts/import_graph.py --mermaid   the floors and packages as a Mermaid diagram (for the docs)
    python scripts/import_graph.py --cycles    import cycles between modules
    python scripts/import_graph.py --check     every rule in the tables below; exit status 1 on any violation

The graph is read from the source with ``ast``, nothing is imported. Every import statement
counts wherever it stands (inside a function, under ``TYPE_CHECKING``): each one is a
dependency the layering must allow. ``from hashcore import boundedjson`` is an import of
``hashcore.boundedjson``; ``from hashcore.work import Job`` one of ``hashcore.work``. Modules
loaded by name at run time (the backend registry's ``importlib.import_module``) are not seen.

A package's ``__init__`` re-exports its own modules; those edges are left out when looking
for cycles (a module of the package may import a sibling through the package without
making a circle of its own).

Standard library only, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# --- the rules -------------------------------------------------------------------------
# Names are relative to the package: "report.account" is hashcore/report/account.py, and a
# name covers everything below it ("throttle" is the whole throttle package).

#: Floors, lowest first. A module imports only from its own floor and the floors below it.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", (
        "errors", "_version", "boundedio", "boundedjson", "lograte", "sharerate", "listen", "config",
        "work", "sha256", "stratum", "backends", "telemetry", "throttle", "report", "metering",
        "workers", "worksource", "engine", "shareflow", "accounting", "control", "_scan_child",
    )),
    ("app", ("app", "bench", "sweep")),
    ("presenters", ("api", "metrics", "web", "cli", "liveview")),
)


@dataclass(frozen=True)
class Rule:
    """What the modules under ``modules`` may import ("*": every module).

    ``only``: nothing of the package but these; ``never``: none of these (a module is
    never barred from its own package).
    """

    modules: str
    why: str
    only: tuple[str, ...] = ()
    never: tuple[str, ...] = ()


PRESENTERS = FLOORS[2][1]

RULES: tuple[Rule, ...] = (
    Rule("throttle", "the throttle is a pure control core", only=("errors", "report.account", "throttle")),
    Rule("report", "the report reads run results, it never drives the throttle", never=("throttle",)),
    Rule("stratum", "the Stratum layer stands on the work model alone",
         only=("errors", "_version", "boundedjson", "lograte", "work", "sha256", "stratum")),
    Rule("backends", "a backend scans work; it knows nothing of who drives it",
         never=("engine", "stratum", "throttle", "app", *PRESENTERS)),
    Rule("*", "the command line is the top: nothing imports it", never=("cli",)),
)

#: The most lines a module of hashcore/ may have ...
LINE_LIMIT = 450

#: ... except these, where one job is that large (paths relative to hashcore/).
LARGE_MODULES: dict[str, str] = {
    "backends/_numba_kernels.py": "two SHA-256 scan kernels over one precomputed layout; the rounds are "
                                  "written out, and a kernel split from its layout could not be read",
    "engine.py": "the Miner: opening backends, the worker threads' loop, the knobs and the stop all act on "
                 "the same workers (shares, counters and the snapshot are already in shareflow and accounting)",
    "stratum/client.py": "the transport: connect, TLS, handshake, reads against deadlines, reconnects, redirects "
                         "and failback probes act on one connection's life (its bookkeeping, which needs no "
                         "I/O, is in connection.py and failover.py)",
}

# --- the graph -------------------------------------------------------------------------


@dataclass
class Graph:
    """Modules of one package and the imports between them.

    Attributes:
        package: the package's name (``hashcore``).
        directory: the package's directory.
        files: module name -> its file.
        lines: module name -> its line count.
        imports: module name -> the modules of the package it imports.
        packages: the names whose file is a package ``__init__``.
    """

    package: str
    directory: Path
    files: dict[str, Path] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    imports: dict[str, set[str]] = field(default_factory=dict)
    packages: set[str] = field(default_factory=set)

    def relative(self, module: str) -> str:
        """``hashcore.report.account`` -> ``report.account`` (the root package -> "")."""
        return module[len(self.package) + 1:] if module != self.package else ""

    def unit(self, module: str) -> str:
        """The top-level module or package a module belongs to ("" for the root package)."""
        return self.relative(module).split(".")[0]

    def edges(self) -> Iterator[tuple[str, str]]:
        for source in sorted(self.imports):
            for target in sorted(self.imports[source]):
                yield source, target

    def is_reexport(self, source: str, target: str) -> bool:
        """A package ``__init__`` importing a module of its own package."""
        return source in self.packages and target.startswith(source + ".")


def covers(graph: Graph, name: str, module: str) -> bool:
    """Whether the relative ``name`` (a module or a package) covers ``module``."""
    relative = graph.relative(module)
    return relative == name or relative.startswith(name + ".")


def build_graph(package_dir: Path) -> Graph:
    """Read every module under ``package_dir`` and resolve the imports between them."""
    package_dir = Path(package_dir)
    graph = Graph(package_dir.name, package_dir)
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            graph.packages.add(".".join(parts))
        name = ".".join(parts)
        graph.files[name] = path
    for name, path in graph.files.items():
        text = path.read_text(encoding="utf-8")
        graph.lines[name] = len(text.splitlines())
        tree = ast.parse(text, filename=str(path))
        found = {target for node in ast.walk(tree) for target in _targets(graph, name, node)}
        found.discard(name)
        graph.imports[name] = found
    return graph


def _targets(graph: Graph, module: str, node: ast.AST) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield from _known(graph, alias.name)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            parts = module.split(".")
            if module not in graph.packages:
                parts.pop()
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, node.module] if node.module else parts)
        else:
            base = node.module or ""
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            yield from _known(graph, submodule if submodule in graph.files else base)


def _known(graph: Graph, name: str) -> Iterator[str]:
    """The package's module that importing ``name`` loads (none for outside modules)."""
    if name != graph.package and not name.startswith(graph.package + "."):
        return
    while name not in graph.files and "." in name:
        name = name.rsplit(".", 1)[0]
    if name in graph.files:
        yield name


# --- checks ----------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule: ``kind`` is floor, unassigned, rule, public, cycle or size."""

    kind: str
    message: str


def floor_of(graph: Graph, module: str, floors: Sequence[tuple[str, Sequence[str]]] = FLOORS) -> int | None:
    """The index of the module's floor in ``floors``; None when none names it."""
    for index, (_, names) in enumerate(floors):
        if any(covers(graph, name, module) for name in names):
            return index
    return None


def check_floors(graph: Graph, floors: Sequence[tuple[str, Sequence[str]]] = FLOORS) -> list[Violation]:
    """Every module on a floor, and no import from a floor up to a higher one."""
    found: list[Violation] = []
    modules = [m for m in graph.files if m != graph.package]
    unassigned = sorted({graph.unit(m) for m in modules if floor_of(graph, m, floors) is None})
    for unit in unassigned:
        found.append(Violation("unassigned", f"{graph.package}.{unit} is on no floor: add it to FLOORS"))
    for source, target in graph.edges():
        if source == graph.package:
            continue  # the public surface re-exports; see check_public
        low, high = floor_of(graph, source, floors), floor_of(graph, target, floors)
        if low is not None and high is not None and high > low:
            found.append(Violation("floor", f"{source} ({floors[low][0]}) imports {target} ({floors[high][0]}): "
                                            "an arrow up"))
    return found


def check_rules(graph: Graph, rules: Iterable[Rule] = RULES) -> list[Violation]:
    """The ``only`` and ``never`` lists of each rule."""
    found: list[Violation] = []
    for rule in rules:
        for source, target in graph.edges():
            if source == graph.package or not (rule.modules == "*" or covers(graph, rule.modules, source)):
                continue
            if rule.only and not any(covers(graph, name, target) for name in rule.only):
                found.append(Violation("rule", f"{source} imports {target}: {rule.why} "
                                               f"(it imports only {', '.join(rule.only)})"))
            barred = [name for name in rule.never if covers(graph, name, target) and not covers(graph, name, source)]
            if barred:
                found.append(Violation("rule", f"{source} imports {target}: {rule.why}"))
    return found


def check_public(graph: Graph) -> list[Violation]:
    """The root ``__init__`` is the public surface: it re-exports from every floor below the
    presenters, so a module inside that imports it imports everything above itself."""
    return [
        Violation("public", f"{source} imports {graph.package} (the public surface): import the module itself")
        for source, target in graph.edges()
        if target == graph.package
    ]


def cycles(graph: Graph) -> list[list[str]]:
    """Each strongly connected component of more than one module (re-export edges left out),
    as one circle through it: ``[a, b, c, a]``."""
    edges = {m: sorted(t for t in targets if not graph.is_reexport(m, t)) for m, targets in graph.imports.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(_circle(edges, component) for component in components)


def _circle(edges: Mapping[str, Sequence[str]], component: list[str]) -> list[str]:
    """The shortest circle from the component's first module back to itself."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for module in frontier:
            for target in edges[module]:
                if target == start:
                    path = [module]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if target in members and target not in previous:
                    previous[target] = module
                    following.append(target)
        frontier = following
    raise AssertionError("a strongly connected component always has a circle")


def check_cycles(graph: Graph) -> list[Violation]:
    return [Violation("cycle", " -> ".join(circle)) for circle in cycles(graph)]


def check_sizes(graph: Graph, limit: int = LINE_LIMIT, large: Mapping[str, str] | None = None) -> list[Violation]:
    """No module over ``limit`` lines unless listed in ``large`` (LARGE_MODULES), and no
    stale entry there."""
    large = LARGE_MODULES if large is None else large
    found: list[Violation] = []
    paths: dict[str, str] = {}
    for module, path in graph.files.items():
        relative = path.relative_to(graph.directory).as_posix()
        paths[relative] = module
        if graph.lines[module] > limit and relative not in large:
            found.append(Violation("size", f"{graph.package}/{relative} has {graph.lines[module]} lines "
                                           f"(limit {limit})"))
    for relative in sorted(large):
        if relative not in paths:
            found.append(Violation("size", f"{graph.package}/{relative} is listed as large but does not exist"))
        elif graph.lines[paths[relative]] <= limit:
            found.append(Violation("size", f"{graph.package}/{relative} is listed as large but has "
                                           f"{graph.lines[paths[relative]]} lines: take it off the list"))
    return found


def check_all(graph: Graph) -> list[Violation]:
    """Every rule of this module's tables."""
    return sorted(
        check_floors(graph) + check_rules(graph) + check_public(graph) + check_cycles(graph) + check_sizes(graph)
    )


# --- pictures --------------------------------------------------------------------------


def unit_edges(graph: Graph) -> dict[str, set[str]]:
    """Imports between top-level modules and packages (the root package left out)."""
    edges: dict[str, set[str]] = {}
    for source, target in graph.edges():
        if graph.package not in (source, target) and graph.unit(source) != graph.unit(target):
            edges.setdefault(graph.unit(source), set()).add(graph.unit(target))
    return edges


def summary(graph: Graph) -> str:
    """Per floor, each package with its module count, lines and what it imports."""
    edge_count = sum(len(t) for t in graph.imports.values())
    out = [f"{graph.package}: {len(graph.files)} modules, {edge_count} imports between them"]
    edges = unit_edges(graph)
    units = sorted({graph.unit(m) for m in graph.files if m != graph.package})
    groups = [(name, [u for u in units if floor_of(graph, f"{graph.package}.{u}") == i])
              for i, (name, _) in enumerate(FLOORS)]
    groups.append(("on no floor", [u for u in units if floor_of(graph, f"{graph.package}.{u}") is None]))
    for name, members in groups:
        if not members:
            continue
        out.append(f"{name}:")
        for unit in members:
            modules = [m for m in graph.files if m != graph.package and graph.unit(m) == unit]
            lines = sum(graph.lines[m] for m in modules)
            imported = ", ".join(sorted(edges.get(unit, ()))) or "-"
            count = f"{len(modules)} module" + ("s" if len(modules) != 1 else "")
            out.append(f"  {unit} ({count}, {lines} lines) -> {imported}")
    return "\n".join(out)


def mermaid(graph: Graph) -> str:
    """A Mermaid flowchart: one box per floor, the packages in it, an arrow per import
    between packages; an arrow up is drawn dotted and labelled."""
    out = ["flowchart BT"]
    units = sorted({graph.unit(m) for m in graph.files if m != graph.package})
    for index, (name, _) in enumerate(FLOORS):
        members = [u for u in units if floor_of(graph, f"{graph.package}.{u}") == index]
        out.append(f"  subgraph {name}")
        out.extend(f"    {_node(u)}[{u}]" for u in members)
        out.append("  end")
    out.extend(f"  {_node(u)}[{u}: on no floor]" for u in units if floor_of(graph, f"{graph.package}.{u}") is None)
    for source, targets in sorted(unit_edges(graph).items()):
        low = floor_of(graph, f"{graph.package}.{source}")
        for target in sorted(targets):
            high = floor_of(graph, f"{graph.package}.{target}")
            upward = low is not None and high is not None and high > low
            arrow = "-. up .->" if upward else "-->"
            out.append(f"  {_node(source)} {arrow} {_node(target)}")
    return "\n".join(out)


def _node(unit: str) -> str:
    return "m" + unit.strip("_")  # Mermaid ids cannot start with an underscore


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent / "hashcore",
                        help="the package directory (default: hashcore/ beside scripts/)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--mermaid", action="store_true", help="print a Mermaid diagram of the floors and packages")
    shown.add_argument("--cycles", action="store_true", help="print the import cycles")
    shown.add_argument("--check", action="store_true", help="print every violation of the rules; exit 1 on any")
    args = parser.parse_args(argv)
    graph = build_graph(args.package)
    if args.mermaid:
        print(mermaid(graph))
    elif args.cycles:
        for circle in cycles(graph):
            print(" -> ".join(circle))
    elif args.check:
        violations = check_all(graph)
        for violation in violations:
            print(f"{violation.kind}: {violation.message}")
        print(f"{len(violations)} violations" if violations else "no violations")
        return 1 if violations else 0
    else:
        print(summary(graph))
    return 0


if __name__ == "__main__":
    sys.exit(main())
