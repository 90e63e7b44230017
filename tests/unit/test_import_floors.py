"""No import in overcloud_migrate/ runs upward: the floors of
doc/source/contributor/architecture.rst, checked over every module's
imports (read with ast, nothing is imported)."""

import ast
import pathlib

import overcloud_migrate

PACKAGE = pathlib.Path(overcloud_migrate.__file__).parent

#: first component under overcloud_migrate -> its floor
FLOORS = {
    'exceptions': 0, 'faults': 0, 'atomic': 0,
    'planner': 1, 'journal': 1, 'clouds': 1, 'dtn': 1, 'timeline': 1,
    'plan': 2,
    'handoff': 3,
    'transports': 4,
    'workflow': 5,
    'receiver': 6,
    'cli': 7,
    'v1': 8, 'plugin': 8,
}
#: libraries the DTN service must not need (it runs without an OpenStack
#: client)
NOT_IN_DTN = ('openstack', 'keystoneauth1', 'osc_lib', 'openstackclient')


def _unit(module):
    """'overcloud_migrate.plan.model' -> 'plan'."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def _imports():
    """(source unit, source path, imported module) of every module."""
    found = []
    for path in sorted(PACKAGE.rglob('*.py')):
        relative = path.relative_to(PACKAGE.parent).with_suffix('')
        parts = list(relative.parts)
        if parts[-1] == '__init__':
            parts.pop()
        module = '.'.join(parts)
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(module, path, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:   # relative: resolve against this package
                    base = parts[:len(parts) - node.level + (
                        path.name == '__init__.py')]
                    target = '.'.join(base + ([node.module]
                                              if node.module else []))
                else:
                    target = node.module
                if target == 'overcloud_migrate':
                    found += [(module, path, 'overcloud_migrate.' + a.name)
                              for a in node.names]
                else:
                    found.append((module, path, target))
    return found


def test_every_package_has_a_floor():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == '.py' and p.stem != '__init__')
             or (p.is_dir() and (p / '__init__.py').exists())}
    assert units == set(FLOORS)


def test_no_import_runs_upward():
    upward = []
    for module, path, target in _imports():
        if not target.startswith('overcloud_migrate.'):
            continue
        source, wanted = _unit(module), _unit(target)
        if source is None or source == wanted:
            continue
        if FLOORS[wanted] >= FLOORS[source]:
            upward.append('%s imports %s (floor %d -> %d)' % (
                module, target, FLOORS[source], FLOORS[wanted]))
    assert upward == []


def test_dtn_imports_no_openstack_client():
    found = ['%s imports %s' % (module, target)
             for module, _path, target in _imports()
             if _unit(module) == 'dtn'
             and target.split('.')[0] in NOT_IN_DTN]
    assert found == []


def test_the_planner_makes_no_cloud_call():
    found = ['%s imports %s' % (module, target)
             for module, _path, target in _imports()
             if _unit(module) == 'planner'
             and target.split('.')[0] in NOT_IN_DTN]
    assert found == []


def test_nothing_imports_the_test_bed():
    assert [t for _m, _p, t in _imports()
            if t.split('.')[0] == 'overcloud_devcloud'] == []
