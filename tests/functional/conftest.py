"""Fixtures for functional tests: a running devcloud and clean-up stacks.

The modules may run at the same time (``pytest -n N --dist loadfile``,
what tools/test.sh does), each pytest-xdist worker in a process of its
own, on ONE bed:

- each module runs in one worker (``--dist loadfile``), and the modules
  that need the bed to themselves all in the same worker, one after
  another (tests/conftest.py);
- the first worker that needs the bed brings it up (under a file lock),
  the others find it running; the last worker done with it stops it, if
  this run started it;
- a module that needs the bed to itself (it restarts the bed) says
  ``BED_ACCESS = 'exclusive'`` and runs while no other module is on the
  bed; every other module runs beside the rest (``'shared'``: distinct
  prefixes, nothing counted across them); ``'none'``: the module does not
  use the bed at all;
- a module that sets quotas or counts everything in its project says
  ``PROJECT = '<name>'``: it runs in a Keystone project of its own, in
  both clouds, as users of its own (see :func:`own_project`), so it can
  share the bed too.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import tempfile
import uuid

import openstack
import pytest
import yaml

from overcloud_devcloud import bed as bed_mod
from overcloud_devcloud import scenario
from tests.functional import helpers

KEEP_ENV = 'OVERCLOUD_DEVCLOUD_KEEP'
#: what the README's demo (tools/demo.sh) builds and migrates in this bed
DEMO_PREFIX = '3t'
ACCESS = ('shared', 'exclusive', 'none')
#: quotas of project demo while the tests run (see _prepare)
ROOM = {'compute': {'instances': 40, 'cores': 80},
        'network': {'security_groups': 50, 'security_group_rules': 500,
                    'routers': 30},
        # the volume modules (cold, warm, handoff) side by side
        'block_storage': {'volumes': 60, 'snapshots': 60, 'gigabytes': 600}}


def _lock_path(bed, what):
    """A lock file of this bed, outside its home (``up`` purges a home
    whose cold start never finished)."""
    key = hashlib.sha256(str(bed.layout.home).encode()).hexdigest()[:16]
    return pathlib.Path(tempfile.gettempdir()) / (
        'overcloud-devcloud-%s.%s' % (key, what))


@contextlib.contextmanager
def _flock(path, mode):
    with open(path, 'a+') as handle:
        fcntl.flock(handle, mode)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_id(config):
    """One id for the whole test run, the same in every xdist worker."""
    worker = getattr(config, 'workerinput', None)
    if worker:
        return worker['testrunuid']
    if not hasattr(config, '_overcloud_run_id'):
        config._overcloud_run_id = uuid.uuid4().hex
    return config._overcloud_run_id


@contextlib.contextmanager
def _bed_state(bed, run_id):
    """The run's record of the bed ({started, cleaned, users}), read and
    written under an exclusive lock."""
    path = _lock_path(bed, 'state')
    with _flock(_lock_path(bed, 'lock'), fcntl.LOCK_EX):
        try:
            state = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        if state.get('run') != run_id:
            state = {'run': run_id, 'started': False, 'cleaned': False,
                     'users': 0}
        yield state
        path.write_text(json.dumps(state))


def _prepare(conn):
    """Make a cloud of the bed ready for the run's modules.

    The demo shares the bed and leaves its project in both clouds; the
    tests count servers and quotas, so they start without it. Several
    modules run at once in project demo, each with three servers, three
    security groups and a router per cloud: the defaults (10 instances,
    10 security groups, 10 volumes) leave no room, so the defaults are
    raised (the compute quota class, so that a test that sets and then
    deletes the project's own compute quotas falls back to these).
    """
    scenario.delete(conn, DEMO_PREFIX)
    conn.compute.update_quota_class_set('default', **ROOM['compute'])
    conn.network.update_quota(conn.current_project_id, **ROOM['network'])
    conn.block_storage.update_quota_set(conn.current_project_id,
                                        **ROOM['block_storage'])


@pytest.fixture(scope='session')
def devcloud(request):
    """The two-cloud test bed: reused when running, else brought up.

    A bed this run started is stopped when the last worker is done with it
    (its data is kept, so the next start is warm) unless
    OVERCLOUD_DEVCLOUD_KEEP=1.
    """
    bed = bed_mod.Bed()
    run_id = _run_id(request.config)
    # Shared: a module that restarts the bed holds it exclusively.
    with _bed_access(bed, 'shared'), _bed_state(bed, run_id) as state:
        if not bed.is_up():
            bed.up()
            state['started'] = True
        os.environ.update(bed.environment())
        if not state['cleaned']:
            for name in ('devcloud-a', 'devcloud-b'):
                connection = openstack.connect(cloud=name)
                try:
                    _prepare(connection)
                finally:
                    connection.close()
            state['cleaned'] = True
        state['users'] += 1
    yield bed
    with _bed_state(bed, run_id) as state:
        state['users'] -= 1
        if state['users'] <= 0 and state['started'] \
                and os.environ.get(KEEP_ENV) != '1':
            bed.down()
            state['started'] = False


@pytest.fixture(scope='module', autouse=True)
def bed_access(request):
    """Hold the bed shared or exclusive for the whole module (see the
    module docstring). A readers-writer lock made of two flocks: the
    turnstile keeps new sharers out while an exclusive module waits, so
    it is not starved."""
    access = getattr(request.module, 'BED_ACCESS', 'shared')
    assert access in ACCESS, access
    if access == 'none':
        yield
        return
    with _bed_access(bed_mod.Bed(), access):
        yield


@pytest.fixture(scope='module', autouse=True)
def own_project(request, bed_access):
    """For a module with ``PROJECT = '<name>'``: the project ``<name>`` in
    both clouds, with an admin user ``<name>-admin`` and a member user
    ``<name>-member`` of its own (keypairs belong to users), the run's
    network and block storage quotas (``ROOM``); while the module runs,
    OS_CLIENT_CONFIG_FILE names a clouds.yaml whose devcloud-a,
    devcloud-b and their -member entries are those users in that project,
    so the module's connections and commands see nothing of the other
    modules (Neutron shows an admin every project's resources: what a
    module counts, it filters by its project). Kept after the module (a
    next run finds it and resets the passwords)."""
    name = getattr(request.module, 'PROJECT', None)
    if name is None:
        yield None
        return
    request.getfixturevalue('devcloud')
    real_file = os.environ['OS_CLIENT_CONFIG_FILE']
    with open(real_file) as handle:
        real = yaml.safe_load(handle)['clouds']
    clouds = {}
    for cloud in ('devcloud-a', 'devcloud-b'):
        conn = openstack.connect(cloud=cloud)
        try:
            identity = conn.identity
            project = identity.find_project(name, domain_id='default') or \
                identity.create_project(name=name, domain_id='default',
                                        description='tests: own project')
            roles = {r.name: r for r in identity.roles()}
            for suffix, role in (('', 'admin'), ('-member', 'member')):
                user_name = '%s-%s' % (name, role)
                password = uuid.uuid4().hex
                user = identity.find_user(user_name, domain_id='default')
                if user is None:
                    user = identity.create_user(
                        name=user_name, domain_id='default',
                        password=password, default_project_id=project.id)
                else:
                    identity.update_user(user, password=password)
                identity.assign_project_role_to_user(project, user,
                                                     roles[role])
                entry = json.loads(json.dumps(real[cloud + suffix]))
                entry['auth'].update(username=user_name, password=password,
                                     project_name=name)
                clouds[cloud + suffix] = entry
            conn.network.update_quota(project.id, **ROOM['network'])
            conn.block_storage.update_quota_set(project.id,
                                                **ROOM['block_storage'])
        finally:
            conn.close()
    path = request.getfixturevalue('tmp_path_factory').mktemp(
        'project-' + name) / 'clouds.yaml'
    path.write_text(yaml.safe_dump({'clouds': clouds}))
    path.chmod(0o600)
    os.environ['OS_CLIENT_CONFIG_FILE'] = str(path)
    try:
        yield name
    finally:
        os.environ['OS_CLIENT_CONFIG_FILE'] = real_file


@contextlib.contextmanager
def _bed_access(bed, access):
    mode = fcntl.LOCK_EX if access == 'exclusive' else fcntl.LOCK_SH
    with open(_lock_path(bed, 'share'), 'a+') as handle:
        with _flock(_lock_path(bed, 'gate'), fcntl.LOCK_EX):
            fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope='module')
def clouds(devcloud, request):
    """(source, destination, built project): the module's 3-tier scenario
    (its ``PREFIX``) in devcloud-a, nothing of it in devcloud-b; cleaned
    from both clouds after the module."""
    prefix = request.module.PREFIX
    src = openstack.connect(cloud='devcloud-a')
    dst = openstack.connect(cloud='devcloud-b')
    try:
        for conn in (src, dst):
            helpers.clean(conn, prefix)
        project = scenario.build(src, prefix)
        yield src, dst, project
    finally:
        for conn in (dst, src):
            helpers.clean(conn, prefix)
        src.close()
        dst.close()


@pytest.fixture(params=['devcloud-a', 'devcloud-b'])
def cloud_name(request):
    return request.param


@pytest.fixture
def conn(devcloud, cloud_name):
    """An admin connection (project demo) to one cloud of the bed."""
    connection = openstack.connect(cloud=cloud_name)
    yield connection
    connection.close()


def _cleanup_stack():
    stack = []
    yield stack.append
    errors = []
    for action in reversed(stack):
        try:
            action()
        except Exception as exc:  # keep cleaning; report at the end
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def cleanup():
    """Register a clean-up right after each create; run in reverse order."""
    yield from _cleanup_stack()


@pytest.fixture(scope='module')
def module_cleanup():
    """:func:`cleanup` for what a module's tests share; run after the
    module."""
    yield from _cleanup_stack()
