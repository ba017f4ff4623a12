"""No module imports from a higher floor than docs/architecture.md draws ("Floors").

The floors are read from the page's table, so the page and this check cannot drift apart:
every module of the package must be placed by the table (the most specific entry wins), and
every ``import`` / ``from ... import`` of a cmpese module, at module level or inside a
function, must name a module on the same floor or a lower one. Imports under
``if __name__ == '__main__':`` are a module's command-line entry and are not counted (an old
path such as ``python -m cmpese.training.launch`` forwards to ``cmpese.cli`` there).
"""
import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'cmpese')
PAGE = os.path.join(ROOT, 'docs', 'architecture.md')


def read_floors(text):
    """``{module pattern: floor}`` from the page's "Floors" table: rows ``| N | name | ... |``
    whose third cell lists the modules in backticks."""
    section = re.search(r'^## Floors\n(.*?)(?=^## |\Z)', text, re.M | re.S)
    assert section, 'docs/architecture.md has no "## Floors" section'
    floors = {}
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        for pattern in re.findall(r'`([a-z_.]+)`', cells[2]):
            assert pattern not in floors, '%s is placed twice on the page' % pattern
            floors[pattern] = int(cells[0])
    return floors


def floor_of(module, floors):
    """The floor of ``module``: its most specific pattern (``cmpese`` alone names only the
    package's own ``__init__``)."""
    best = None
    for pattern, floor in floors.items():
        matches = module == pattern or (pattern != 'cmpese' and module.startswith(pattern + '.'))
        if matches and (best is None or len(pattern) > len(best[0])):
            best = pattern, floor
    return best


def package_modules():
    """``{module name: path}`` of every .py file of the package."""
    out = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.')
                out[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = path
    return out


def _is_main_guard(node):
    test = getattr(node, 'test', None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and
            isinstance(test.left, ast.Name) and test.left.id == '__name__' and
            any(isinstance(c, ast.Constant) and c.value == '__main__'
                for c in test.comparators))


def imports_of(module, path, modules):
    """``[(line, imported cmpese module)]`` of ``module``, outside its ``__main__`` guard."""
    tree = ast.parse(open(path).read(), path)
    is_package = path.endswith('__init__.py')
    here = module if is_package else module.rsplit('.', 1)[0]
    found = []

    def visit(node):
        if _is_main_guard(node):
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names
                         if a.name.split('.')[0] == 'cmpese')
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1])
                target = base + ('.' + node.module if node.module else '')
            else:
                target = node.module or ''
            if target.split('.')[0] == 'cmpese':
                for alias in node.names:
                    sub = '%s.%s' % (target, alias.name)
                    found.append((node.lineno, sub if sub in modules else target))
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(tree)
    return found


def test_the_page_places_every_module():
    floors = read_floors(open(PAGE).read())
    unplaced = [m for m in sorted(package_modules()) if floor_of(m, floors) is None]
    assert not unplaced, ('docs/architecture.md ("Floors") does not place %s: add it to the '
                          'floor it belongs to' % ', '.join(unplaced))


def test_no_module_imports_from_a_higher_floor():
    floors = read_floors(open(PAGE).read())
    modules = package_modules()
    wrong = []
    for module, path in sorted(modules.items()):
        mine = floor_of(module, floors)
        if mine is None:
            continue        # the test above names it
        for line, target in imports_of(module, path, modules):
            theirs = floor_of(target, floors)
            if theirs is not None and theirs[1] > mine[1]:
                wrong.append('%s:%d imports %s (floor %d %s) from floor %d (%s)' % (
                    os.path.relpath(path, ROOT), line, target, theirs[1], theirs[0], mine[1],
                    mine[0]))
    assert not wrong, 'imports from a higher floor:\n' + '\n'.join(wrong)


@pytest.mark.parametrize('source, expected', [
    ('from ..deploy.export import export_model\n', ['cmpese.deploy.export']),
    ('from ..papers import reproduce\n', ['cmpese.papers.reproduce']),
    ('from .. import errors\n', ['cmpese.errors']),
    ('def f():\n    import cmpese.cli.export\n', ['cmpese.cli.export']),
    ("if __name__ == '__main__':\n    from ..cli.export import console\n", []),
    ('import numpy\nfrom mxnet import gluon\n', []),
])
def test_the_import_reader(tmp_path, source, expected):
    """The reader resolves relative imports, submodules and imports inside functions, and
    skips the ``__main__`` entry (a check on the check)."""
    path = tmp_path / 'mod.py'
    path.write_text(source)
    modules = {'cmpese.deploy.export', 'cmpese.papers.reproduce', 'cmpese.errors',
               'cmpese.cli.export', 'cmpese.analysis.mod'}
    got = [t for _, t in imports_of('cmpese.analysis.mod', str(path), modules)]
    assert got == expected


def test_the_floor_rule_catches_an_upward_import():
    """A training module importing the command lines is refused; a deploy module importing
    the zoo is not (checked on the page's own floors)."""
    floors = read_floors(open(PAGE).read())
    assert floor_of('cmpese.cli.export', floors)[1] > floor_of('cmpese.training.fit', floors)[1]
    assert floor_of('cmpese.model_zoo', floors)[1] < floor_of('cmpese.deploy.export', floors)[1]
    assert floor_of('cmpese', floors)[0] == 'cmpese'
    assert floor_of('cmpese.units.se', floors)[0] == 'cmpese.units'
