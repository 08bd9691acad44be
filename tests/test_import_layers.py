"""The package's import contract: layers without cycles.

Each module of ``lmd_toolkit`` belongs to one layer (``LAYERS``, lowest
first, by longest module prefix). A module may import its own layer and the
layers below it, never one above; the modules of one layer's parts (e.g.
``datasets`` and ``evaluation``) do not import each other. The whole import
graph, imports inside functions included, has no cycle, and a module imports
another of the package inside a function only where ``LAZY_IMPORTS`` says
why (never to dodge a cycle). The checks read the source with ``ast``:
nothing is imported to check it.
"""
import ast
import os
import os.path as osp
import textwrap
from typing import Dict, List, Set, Tuple

ROOT = osp.join(osp.dirname(__file__), '..')

# Lowest first; each layer is a list of its parts (module prefixes). Parts
# of one layer are independent of each other.
LAYERS: List[List[str]] = [
    [
        'lmd_toolkit.version', 'lmd_toolkit.registry',
        'lmd_toolkit.utils.fileio', 'lmd_toolkit.utils.rng',
        'lmd_toolkit.utils.state_dict', 'lmd_toolkit.utils.config_text',
        'lmd_toolkit.utils.validate'
    ],
    # the dependency shims and the work-dir lock (they write atomically)
    ['lmd_toolkit.utils.compat', 'lmd_toolkit.utils.workdir'],
    ['lmd_toolkit.models.layers'],
    ['lmd_toolkit.models.projectors'],
    ['lmd_toolkit.models'],
    ['lmd_toolkit.datasets', 'lmd_toolkit.evaluation'],
    ['lmd_toolkit.engine'],
    # the entry points: register_all_modules (which mmengine finds as
    # lmd_toolkit.utils.register_all_modules) and the runner set-up
    ['lmd_toolkit.utils'],
    ['lmd_toolkit.apis'],
    ['lmd_toolkit'],
]

# (module, function) -> why it imports package modules inside the function.
LAZY_IMPORTS: Dict[Tuple[str, str], str] = {
    ('lmd_toolkit.utils.setup_env', 'register_all_modules'):
    'importing the packages is what registers their modules; mmengine '
    'calls it by name when a registry of the lmd_toolkit scope is used',
}

Edge = Tuple[str, str, str, int]  # importer, imported, function or '', line


def module_files(root: str, package: str) -> Dict[str, str]:
    """``{module name: file}`` of every module of ``package`` under
    ``root``."""
    files = {}
    for folder, _, names in os.walk(osp.join(root, package)):
        for name in names:
            if not name.endswith('.py'):
                continue
            path = osp.join(folder, name)
            module = osp.relpath(path, root)[:-3].replace(os.sep, '.')
            if module.endswith('.__init__'):
                module = module[:-len('.__init__')]
            files[module] = path
    return files


def _functions_of(tree: ast.AST) -> Dict[int, str]:
    """``{id(node): outermost function name}`` for nodes inside functions."""
    inside = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                inside.setdefault(id(sub), node.name)
    # ast.walk is breadth first: outer functions are seen first.
    return inside


def import_edges(root: str, package: str = 'lmd_toolkit') -> List[Edge]:
    """Every import of a package module by a package module."""
    files = module_files(root, package)
    edges = []
    for module, path in sorted(files.items()):
        is_package = path.endswith('__init__.py')
        here = module if is_package else module.rsplit('.', 1)[0]
        tree = ast.parse(open(path).read(), path)
        functions = _functions_of(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = here.split('.')[:len(here.split('.')) -
                                            node.level + 1]
                    base = '.'.join(parts + ([node.module]
                                             if node.module else []))
                else:
                    base = node.module or ''
                # `from pkg import submodule` is an import of the
                # submodule; `from pkg import name`, of pkg
                subs = [f'{base}.{alias.name}' for alias in node.names]
                targets = [sub for sub in subs if sub in files]
                if len(targets) < len(subs):
                    targets.append(base)
            else:
                continue
            for target in targets:
                if target == package or target.startswith(package + '.'):
                    while target not in files and '.' in target:
                        target = target.rsplit('.', 1)[0]
                    edges.append((module, target,
                                  functions.get(id(node), ''), node.lineno))
    return edges


def layer_of(module: str, layers=LAYERS) -> Tuple[int, str]:
    """(layer index, part) of ``module``: its longest matching prefix."""
    best = None
    for index, parts in enumerate(layers):
        for part in parts:
            if module == part or module.startswith(part + '.'):
                if best is None or len(part) > len(best[1]):
                    best = (index, part)
    assert best is not None, f'{module} is in no layer of LAYERS'
    return best


def layer_violations(edges: List[Edge], layers=LAYERS) -> List[str]:
    found = []
    for importer, imported, function, line in edges:
        (low, part_a), (high, part_b) = (layer_of(importer, layers),
                                         layer_of(imported, layers))
        if high > low:
            found.append(f'{importer}:{line} imports {imported}: layer '
                         f'{part_b!r} is above {part_a!r}')
        elif high == low and part_a != part_b:
            found.append(f'{importer}:{line} imports {imported}: {part_a!r} '
                         f'and {part_b!r} are parts of one layer')
    return found


def cycles(edges: List[Edge]) -> List[List[str]]:
    """The import cycles: strongly connected components of more than one
    module, or a module importing itself (Tarjan's algorithm)."""
    graph: Dict[str, Set[str]] = {}
    for importer, imported, _, _ in edges:
        graph.setdefault(importer, set()).add(imported)
        graph.setdefault(imported, set())
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def lazy_import_violations(edges: List[Edge], allowed=LAZY_IMPORTS
                           ) -> List[str]:
    return [
        f'{importer}:{line} imports {imported} inside {function}(); import '
        'it at module level (or, if a cycle forbids it, fix the layering)'
        for importer, imported, function, line in edges
        if function and (importer, function) not in allowed
    ]


def test_every_module_is_in_a_layer():
    for module in module_files(ROOT, 'lmd_toolkit'):
        layer_of(module)


def test_no_module_imports_a_layer_above_it():
    assert layer_violations(import_edges(ROOT)) == []


def test_the_import_graph_has_no_cycle():
    assert cycles(import_edges(ROOT)) == []


def test_package_imports_inside_functions_say_why():
    assert lazy_import_violations(import_edges(ROOT)) == []


def _package(tmp_path, sources: Dict[str, str]) -> str:
    for name, text in sources.items():
        path = tmp_path.joinpath('pkg', *name.split('.')).with_suffix('.py')
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for folder in tmp_path.joinpath('pkg').rglob('*'):
        if folder.is_dir() and not (folder / '__init__.py').exists():
            (folder / '__init__.py').write_text('')
    (tmp_path / 'pkg' / '__init__.py').touch()
    return str(tmp_path)


def test_the_checks_catch_a_cycle_an_upward_import_and_a_hidden_import(
        tmp_path):
    """The three checks on a made-up package: a cycle hidden by an import
    inside a function, an upward import, parts of one layer."""
    root = _package(
        tmp_path, {
            'low.a': 'from pkg.high import b\n',  # upward, and a cycle
            'high.b': '''
                def f():
                    from pkg.low import a  # hidden half of the cycle
                    return a
                ''',
            'high.c': 'import pkg.high.d\n',  # parts of one layer
            'high2.d': 'x = 1\n',
        })
    (tmp_path / 'pkg' / 'high2').rename(tmp_path / 'pkg' / 'high' / 'd')
    layers = [['pkg.low'], ['pkg.high.b', 'pkg.high.c', 'pkg.high.d'],
              ['pkg.high', 'pkg']]
    edges = import_edges(root, 'pkg')
    assert ('pkg.high.b', 'pkg.low.a', 'f', 3) in edges
    assert cycles(edges) == [['pkg.high.b', 'pkg.low.a']]
    assert layer_violations(edges, layers) == [
        "pkg.high.c:1 imports pkg.high.d: 'pkg.high.c' and 'pkg.high.d' "
        'are parts of one layer',
        "pkg.low.a:1 imports pkg.high.b: layer 'pkg.high.b' is above "
        "'pkg.low'",
    ]
    assert lazy_import_violations(edges, allowed={}) == [
        'pkg.high.b:3 imports pkg.low.a inside f(); import it at module '
        'level (or, if a cycle forbids it, fix the layering)'
    ]
