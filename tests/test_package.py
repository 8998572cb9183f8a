"""Structural checks of the package itself, not of what it computes.

Every module imports on its own; the modules import each other without cycles; no function is
longer than :data:`MAX_FUNCTION_LINES`; argparse's ``Namespace`` stays in ``m6abert/cli/``;
requirements.txt pins every requirement of ``pyproject.toml`` inside its range; and a real
(non-editable) install, built with the declared backend, puts the console commands on the ``PATH``.
Modules are found by walking ``m6abert/``, so a new one is checked without touching this file.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "m6abert"
CLI = PACKAGE / "cli"
MAX_FUNCTION_LINES = 60
COMMANDS = ("get-input", "pretrain", "finetune", "predict", "visualize", "motifs", "merge", "table", "leakage",
            "windows")
SCRIPTS = tuple(f"m6abert-{name}" for name in COMMANDS)


def module_name(path: Path) -> str:
    """``m6abert/io/files.py`` -> ``m6abert.io.files``; a package's ``__init__.py`` is the package."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    """Every module under ``m6abert/``, by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


MODULES = package_modules()


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("cwd", ROOT)
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)


# --- every module imports ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_on_its_own(module):
    """Each module in a fresh interpreter: an import that only works after another module fails here."""
    result = run([sys.executable, "-c", f"import {module}"])
    assert result.returncode == 0, f"`import {module}` failed:\n{result.stderr}"


def test_all_modules_import():
    """The fast version of the test above: every module, one interpreter, every failure reported."""
    script = (
        "import importlib, sys, traceback\n"
        "failed = 0\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed += 1\n"
        "        print(f'--- {name}', traceback.format_exc(), sep='\\n')\n"
        "sys.exit(failed)\n"
    )
    result = run([sys.executable, "-c", script, *sorted(MODULES)])
    assert result.returncode == 0, f"{result.returncode} failed to import:\n{result.stdout}{result.stderr}"


def test_console_script_targets_exist():
    """Every ``[project.scripts]`` entry names an importable module with a callable ``main``."""
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert sorted(scripts) == sorted(SCRIPTS)
    script = (
        "import importlib, sys\n"
        "for target in sys.argv[1:]:\n"
        "    module, _, func = target.partition(':')\n"
        "    assert callable(getattr(importlib.import_module(module), func)), target\n"
    )
    result = run([sys.executable, "-c", script, *scripts.values()])
    assert result.returncode == 0, result.stderr


# --- no import cycles -----------------------------------------------------------------------------


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of the nodes under ``if TYPE_CHECKING:``, which never run."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def imported_modules(module: str, source: str, modules: Iterable[str],
                     is_package: bool = False) -> dict[str, int]:
    """The package modules that ``module`` imports anywhere (in functions too), each with its first line.

    ``from X import name`` imports ``X.name`` when that is a module and ``X`` (its ``__init__``)
    otherwise; importing ``a.b.c`` also runs the ``__init__`` of ``a.b``, except where the importer
    is inside ``a.b`` (it is then already running). The top-level ``m6abert`` only holds
    ``__version__`` and is left out.

    >>> source = "from .files import x\\ndef f():\\n    from ..motifs import y"
    >>> imported_modules("m6abert.io.results", source, ["m6abert.io", "m6abert.io.files", "m6abert.motifs"])
    {'m6abert.io.files': 1, 'm6abert.motifs': 3}
    """
    modules = set(modules)
    package = module if is_package else module.rpartition(".")[0]
    tree = ast.parse(source, module)
    skipped = _type_checking_only(tree)
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            implied = {".".join(parts[:i]) for i in range(1, len(parts))}
            for name in {target} | {p for p in implied if not (module == p or module.startswith(f"{p}."))}:
                if name in modules and name not in (module, "m6abert"):
                    found[name] = min(found.get(name, node.lineno), node.lineno)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: line of its first import} for the whole package."""
    return {
        name: imported_modules(name, path.read_text(), MODULES, path.name == "__init__.py")
        for name, path in MODULES.items()
    }


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of ``graph`` (node -> successors), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One shortest cycle, ``[a, b, ..., a]``, through the smallest node of each cyclic component.

    >>> find_cycles({"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": []})
    [['a', 'b', 'c', 'a']]
    """
    cycles = []
    for component in strongly_connected(graph):
        start, members = component[0], set(component)
        if len(component) == 1 and start not in graph.get(start, ()):
            continue
        paths, seen = [[start]], {start}
        while paths:
            path = paths.pop(0)
            succs = sorted(s for s in graph.get(path[-1], ()) if s in members)
            if start in succs:
                cycles.append([*path, start])
                break
            paths += [[*path, s] for s in succs if s not in seen]
            seen.update(succs)
    return cycles


def test_cycle_finder_detects_cycles():
    graph = {"a": ["b"], "b": ["c", "e"], "c": ["a"], "d": ["d"], "e": ["f"], "f": []}
    assert strongly_connected(graph) == [["f"], ["e"], ["a", "b", "c"], ["d"]]
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]
    assert find_cycles({"a": ["b"], "b": ["c"], "c": []}) == []


def test_import_graph_sees_relative_and_function_level_imports():
    modules = ["m6abert", "m6abert.io", "m6abert.io.files", "m6abert.io.results", "m6abert.motifs", "m6abert.kmer"]
    motifs = "\n".join(
        ["from . import io", "from . import __version__", "from .io import read", "def f():", "    import m6abert.io.files"]
    )
    assert imported_modules("m6abert.motifs", motifs, modules) == {"m6abert.io": 1, "m6abert.io.files": 5}
    results = "\n".join(
        ["from . import files", "from .files import x", "from . import helper", "if TYPE_CHECKING:", "    import m6abert.kmer"]
    )
    expected = {"m6abert.io.files": 1, "m6abert.io": 3}  # a name that is no module imports the package
    assert imported_modules("m6abert.io.results", results, modules) == expected
    init = "from .results import x\nfrom ..kmer import y\n"
    expected = {"m6abert.io.results": 1, "m6abert.kmer": 2}  # no edge to the parent package
    assert imported_modules("m6abert.io", init, modules, is_package=True) == expected


def test_no_import_cycles():
    graph = import_graph()
    cycles = find_cycles(graph)

    def describe(cycle: list[str]) -> str:
        return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in pairwise(cycle)) + f" -> {cycle[-1]}"

    assert not cycles, "import cycles:\n" + "\n".join(describe(c) for c in cycles)


# --- short functions ------------------------------------------------------------------------------


Function = ast.FunctionDef | ast.AsyncFunctionDef


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, Function]]:
    """(qualified name, node) of every function and method below ``node``, nested ones included."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if not isinstance(child, ast.ClassDef):
                yield prefix + child.name, child
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def _is_argparse_definition(func: Function) -> bool:
    return func.name.startswith(("build_parser", "parse_args")) or any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "add_argument"
        for n in ast.walk(func)
    )


def function_length(func: Function) -> int:
    """Lines from ``def`` to the function's last line, less its docstring."""
    length = func.end_lineno - func.lineno + 1
    if ast.get_docstring(func, clean=False) is not None:
        length -= func.body[0].end_lineno - func.body[0].lineno + 1
    return length


def function_lengths() -> list[tuple[int, str]]:
    """(lines, ``file:line name``) of every function in the package but argparse definitions in the CLI."""
    lengths = []
    for path in MODULES.values():
        for name, func in _functions(ast.parse(path.read_text(), str(path))):
            if not (CLI in path.parents and _is_argparse_definition(func)):
                where = f"{path.relative_to(ROOT)}:{func.lineno} {module_name(path)}.{name}"
                lengths.append((function_length(func), where))
    return sorted(lengths, reverse=True)


def test_function_length_counting():
    source = (
        "class A:\n"
        "    def method(self):\n"
        "        \"\"\"A docstring\n\n        on three lines.\"\"\"\n"
        "        def inner():\n"
        "            return 1\n"
        "        return inner()\n"
        "def build_parser_x(p):\n"
        "    return p\n"
        "def opts(p):\n"
        "    p.add_argument('--x')\n"
    )
    funcs = dict(_functions(ast.parse(source)))
    assert {name: function_length(f) for name, f in funcs.items()} == {
        "A.method": 4, "A.method.inner": 2, "build_parser_x": 2, "opts": 2
    }
    assert [name for name, f in funcs.items() if _is_argparse_definition(f)] == ["build_parser_x", "opts"]


def test_functions_are_short():
    lengths = function_lengths()
    longest = f"longest function: {lengths[0][1]} ({lengths[0][0]} lines)"
    print(longest)
    too_long = [f"  {where}: {n} lines" for n, where in lengths if n > MAX_FUNCTION_LINES]
    header = f"functions over {MAX_FUNCTION_LINES} lines (docstrings excluded):\n"
    assert not too_long, header + "\n".join(too_long)


# --- argparse stays in the CLI --------------------------------------------------------------------


def test_no_namespace_outside_cli():
    """The library takes plain arguments; only ``m6abert/cli/`` knows about ``argparse.Namespace``."""
    hits = [
        f"  {path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in MODULES.values()
        if CLI not in path.parents
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "Namespace" in line
    ]
    assert not hits, "`Namespace` outside m6abert/cli/:\n" + "\n".join(hits)


# --- packaging: the lock, the ranges, a real install -----------------------------------------------


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def read_lock(text: str) -> dict[str, str]:
    """``requirements.txt``: canonical name -> pinned version; anything but one exact pin a line raises.

    >>> read_lock("# a comment\\nTorch==2.13.0  # why\\n\\npytest_xdist==3.8.0\\n")
    {'torch': '2.13.0', 'pytest-xdist': '3.8.0'}
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        spec = line.split("#", 1)[0].strip()
        if not spec:
            continue
        req = Requirement(spec)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version or req.marker or req.url:
            raise ValueError(f"requirements.txt:{n}: {spec!r} is not an exact pin (name==version)")
        name = canonicalize_name(req.name)
        if name in pins:
            raise ValueError(f"requirements.txt:{n}: {req.name} is pinned twice")
        pins[name] = specs[0].version
    return pins


def declared_requirements(pyproject: dict) -> list[str]:
    """Every requirement pyproject.toml declares: dependencies, each optional extra, [build-system]."""
    project = pyproject["project"]
    extras = [r for reqs in project.get("optional-dependencies", {}).values() for r in reqs]
    return [*project["dependencies"], *extras, *pyproject["build-system"]["requires"]]


def unmet(requirements: Iterable[str], versions: Mapping[str, str | None]) -> list[str]:
    """The requirements that ``versions`` (canonical name -> version, None: absent) do not satisfy.

    >>> unmet(["torch>=2.9", "Captum>=0.8,<1", "ruff"], {"torch": "2.13.0+cpu", "captum": "1.0", "ruff": None})
    ['Captum>=0.8,<1 (1.0)', 'ruff (not there)']
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    problems = []
    for spec in requirements:
        req = Requirement(spec)
        version = versions.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            problems.append(f"{spec} ({version or 'not there'})")
    return problems


def test_lock_pins_every_declared_requirement_within_its_range():
    """requirements.txt is exact pins only, and pins each requirement of pyproject.toml (dependencies,
    extras, build backend) at a version inside the range pyproject.toml declares."""
    pins = read_lock((ROOT / "requirements.txt").read_text())
    problems = unmet(declared_requirements(_pyproject()), pins)
    assert not problems, "requirements.txt pins outside pyproject.toml's ranges: " + ", ".join(problems)


def test_lock_checks_catch_loose_pins_and_versions_out_of_range():
    with pytest.raises(ValueError, match="requirements.txt:2: 'numpy>=1.26' is not an exact pin"):
        read_lock("torch==2.13.0\nnumpy>=1.26\n")
    with pytest.raises(ValueError, match="requirements.txt:2: Torch is pinned twice"):
        read_lock("torch==2.13.0\nTorch==2.12.0\n")
    pyproject = {"project": {"dependencies": ["torch>=2.9"], "optional-dependencies": {"dev": ["pytest>=8"]}},
                 "build-system": {"requires": ["setuptools>=77.0.3"]}}
    pins = read_lock("torch==2.8.0\npytest==9.0.3\n")
    assert unmet(declared_requirements(pyproject), pins) == ["torch>=2.9 (2.8.0)", "setuptools>=77.0.3 (not there)"]


def installed_versions(requirements: Iterable[str]) -> dict[str, str | None]:
    """Canonical name -> the running interpreter's version of it (None: not installed)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    versions: dict[str, str | None] = {}
    for spec in requirements:
        name = Requirement(spec).name
        try:
            versions[canonicalize_name(name)] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[canonicalize_name(name)] = None
    return versions


def _hermetic_env() -> dict[str, str]:
    """The environment without PYTHONPATH and the user's pip settings (pip reads no config file)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def _running_site_dirs() -> list[str]:
    """The running interpreter's site-packages folders (a venv's own, and the base's when it sees them)."""
    import site

    dirs = site.getsitepackages()
    if site.ENABLE_USER_SITE and site.getusersitepackages() in sys.path:
        dirs.append(site.getusersitepackages())
    return dirs


def layered_venv(path: Path, env: Mapping[str, str]) -> Path:
    """A fresh venv (no pip of its own, not the base interpreter's site-packages) whose ``.pth`` puts
    the running interpreter's site-packages after its own: what it installs comes first, and the
    dependencies and pip are the running environment's. Returns its python."""
    result = run([sys.executable, "-m", "venv", "--without-pip", str(path)], env=env)
    assert result.returncode == 0, result.stderr
    python = path / "bin" / "python"
    result = run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env=env)
    assert result.returncode == 0, result.stderr
    Path(result.stdout.strip(), "_running_environment.pth").write_text("\n".join(_running_site_dirs()) + "\n")
    return python


def test_console_scripts_install(tmp_path):
    """The package's wheel, built by the running interpreter with the build backend pyproject.toml names
    (installed by requirements.txt; never a venv's base interpreter's), installs into a fresh venv; that
    venv imports the installed copy, not the checkout, and every ``m6abert-*`` command on its ``bin/``
    answers ``--version``."""
    from m6abert import __version__

    build = _pyproject()["build-system"]["requires"]
    missing = unmet(build, installed_versions(build))
    assert not missing, f"{sys.executable} cannot build the package: {missing}; pip install -r requirements.txt"
    src = tmp_path / "src"  # a copy, so that the build's build/ and *.egg-info stay out of the repo
    shutil.copytree(PACKAGE, src / "m6abert", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    env = _hermetic_env()
    wheel = ["-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", "dist", "./src"]
    result = run([sys.executable, *wheel], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    [whl] = (tmp_path / "dist").glob("m6abert-*.whl")
    venv = tmp_path / "venv"
    python = layered_venv(venv, env)
    install = ["-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(whl)]
    result = run([str(python), *install], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr

    result = run([str(python), "-c", "import m6abert; print(m6abert.__file__)"], cwd=tmp_path, env=env)
    assert Path(result.stdout.strip()).is_relative_to(venv), result.stdout + result.stderr
    assert [s for s in SCRIPTS if not (venv / "bin" / s).exists()] == []
    procs = {s: subprocess.Popen([str(venv / "bin" / s), "--version"], cwd=tmp_path, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for s in SCRIPTS}
    outputs = {s: (*p.communicate(timeout=300), p.returncode) for s, p in procs.items()}
    failed = {s: o for s, o in outputs.items() if o[2] != 0 or f"m6abert {__version__}" not in o[0] + o[1]}
    assert not failed, f"`--version` failed: {failed}"
    result = run([str(venv / "bin" / "m6abert-get-input"), "--help"], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout


# --- the layer rule: io/ reads and writes, nothing else does; io/ never climbs up ------------------------------
FILE_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "savefig", "to_csv", "read_csv"}
FILE_MODULE_CALLS = {("np", "load"), ("np", "save"), ("np", "savez"), ("torch", "load"), ("torch", "save"),
                     ("json", "load"), ("json", "dump")}
IO_MAY_IMPORT = {"m6abert", "m6abert.utils", "m6abert.constants", "m6abert.kmer"}


def file_calls(path: Path) -> list[str]:
    """``line name`` of every call in ``path`` that opens, reads or writes a file itself."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "open":
            found.append(f"{node.lineno} open")
        elif isinstance(f, ast.Attribute) and not (isinstance(f.value, ast.Name) and f.value.id == "io") and (
                f.attr in FILE_CALLS - {"open"} or (
                isinstance(f.value, ast.Name) and (f.value.id, f.attr) in FILE_MODULE_CALLS)):
            found.append(f"{node.lineno} {f.attr}")
    return found


def test_file_call_finder_sees_the_calls(tmp_path):
    code = tmp_path / "m.py"
    code.write_text("import numpy as np\nopen('x')\np.read_text()\nnp.save('a', 1)\nnp.asarray(1)\nio.write_text(p)\n")
    assert file_calls(code) == ["2 open", "3 read_text", "4 save"]  # m6abert.io's own writers are the way


def test_only_io_reads_and_writes_files():
    outside = {f"{path.relative_to(ROOT)}:{call}" for path in MODULES.values() if PACKAGE / "io" not in path.parents
               for call in file_calls(path)}
    assert not outside, f"files opened outside m6abert/io/: {sorted(outside)}"


def test_io_imports_only_the_rooms_below_it():
    graph = import_graph()
    climbs = {f"{a} -> {b}" for a, targets in graph.items() if a.startswith("m6abert.io")
              for b in targets if not b.startswith("m6abert.io") and b not in IO_MAY_IMPORT}
    assert not climbs, f"m6abert/io/ imports rooms above it: {sorted(climbs)}"


# --- the commands layer: cli/ -> commands/ -> compute rooms -> io/ ---------------------------------------------
def _run_imports(path: Path) -> set[str]:
    """The modules imported inside ``run`` of a cli module (and at its top level), resolved."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            found.add(importlib.util.resolve_name("." * node.level + (node.module or ""), "m6abert.cli"))
    return found


def test_every_command_calls_the_commands_layer():
    """Each console command's ``run`` reaches its work through m6abert/commands/ (checks and constants
    may come from lower rooms, the work never does)."""
    cli = [p for p in (PACKAGE / "cli").glob("*.py") if p.stem not in ("__init__", "common")]
    missing = [p.stem for p in cli if not any(m.startswith("m6abert.commands") for m in _run_imports(p))]
    assert len(cli) >= 10 and not missing, f"cli modules that bypass m6abert/commands/: {missing}"


def test_no_room_below_the_commands_imports_them():
    """The compute rooms and io/ never import m6abert/commands/ (a notebook imports them without the drivers)."""
    graph = import_graph()
    up = {f"{a} -> {b}" for a, targets in graph.items()
          if not a.startswith(("m6abert.commands", "m6abert.cli")) for b in targets if b.startswith("m6abert.commands")}
    assert not up, f"rooms below m6abert/commands/ import it: {sorted(up)}"
