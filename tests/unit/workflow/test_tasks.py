"""workflow.tasks: the source snapshots are deleted after a verified move,
by the migration's own markers only."""

import types

from openstack.image.v2 import image as sdk_image

from overcloud_migrate import journal as journal_mod
from overcloud_migrate.plan import model
from overcloud_migrate.workflow import engine
from overcloud_migrate.workflow import tasks


class FakeImages:
    """The few Glance calls of marked_images and delete_image."""

    def __init__(self, images):
        self.images_by_id = {i.id: i for i in images}
        self.deleted = []

    def images(self, **query):
        # Like openstacksdk with an unknown filter: the query is ignored.
        return list(self.images_by_id.values())

    def delete_image(self, image, ignore_missing=True):
        self.deleted.append(image.id)
        self.images_by_id.pop(image.id, None)


def conn_with(images):
    return types.SimpleNamespace(image=FakeImages(images),
                                 current_project_id='p1')


def image(id, **props):
    return sdk_image.Image(id=id, name='om-' + id, properties=props)


MIG = '6b1f0000-0000-4000-8000-000000000001'


def source_images():
    return [
        image('mine-web', om_migration=MIG, om_source_server='web'),
        image('mine-db', om_migration=MIG, om_source_server='db'),
        image('other-migration', om_migration='another',
              om_source_server='web'),
        image('base'),
    ]


def test_only_this_migrations_snapshot_of_this_server_is_deleted():
    conn = conn_with(source_images())
    assert tasks.delete_source_snapshots(conn, MIG, 'web') == ['mine-web']
    assert sorted(conn.image.images_by_id) == ['base', 'mine-db',
                                               'other-migration']


def test_all_snapshots_of_the_migration_without_a_server():
    conn = conn_with(source_images())
    assert sorted(tasks.delete_source_snapshots(conn, MIG)) == [
        'mine-db', 'mine-web']
    assert tasks.delete_source_snapshots(conn, MIG) == []  # idempotent


def context(tmp_path, conn, keep=False):
    journal = journal_mod.Journal('sqlite:///%s' % (tmp_path / 'j.sqlite'))
    server = model.Server(id='web', name='web', flavor_id='f1')
    plan = model.Plan(servers=[server])
    migration_id = journal.start('s', 'd', plan.to_dict())
    journal.add_server(migration_id, 'web', 'web', 0)
    said = []
    ctx = tasks.ServerContext(
        migration_id=migration_id, server=server, plan=plan, source=conn,
        dest=None, journal=journal, transport=None, ids={},
        keep_source_snapshots=keep, progress=said.append)
    return ctx, said


def test_the_cleanup_task_runs_after_verify_and_is_timed(tmp_path):
    conn = conn_with([image('snap', om_migration='m', om_source_server='web')])
    ctx, said = context(tmp_path, conn)
    conn.image.images_by_id['snap'].properties['om_migration'] = \
        ctx.migration_id
    names = [t.phase for t in engine.server_flow(ctx)]
    assert names == ['stop', 'snapshot', 'transfer', 'boot', 'verify',
                     'clean-source']
    tasks.CleanSourceSnapshots(ctx).execute(dest_server_id='x')
    assert conn.image.deleted == ['snap']
    assert said == ['web: deleted 1 snapshot in the source Glance']
    record = ctx.journal.server(ctx.migration_id, 'web')
    assert 'clean-source' in record.phases


def test_keep_source_snapshots_leaves_the_task_out(tmp_path):
    ctx, _said = context(tmp_path, conn_with([]), keep=True)
    assert 'clean-source' not in [t.phase for t in engine.server_flow(ctx)]


# -- waiting for the destination boot ----------------------------------------

class FakeBuild:
    """Nova's create action of one server, its events and its status: the
    build ends after ``polls`` looks at the events."""

    def __init__(self, polls, status='ACTIVE', events_visible=True):
        self.polls = polls
        self.status = status
        self.events_visible = events_visible
        self.calls = []

    def server_actions(self, server):
        self.calls.append('actions')
        return [types.SimpleNamespace(action='create', request_id='req-1')]

    def get_server_action(self, request_id, server):
        self.calls.append('action')
        self.polls -= 1
        if not self.events_visible:
            return types.SimpleNamespace(events=None)
        done = self.polls <= 0
        return types.SimpleNamespace(events=[
            types.SimpleNamespace(event='conductor_schedule_and_build_'
                                  'instances', result='Success',
                                  finish_time='t1'),
            types.SimpleNamespace(event=tasks.BUILD_EVENT,
                                  result='Success' if done else None,
                                  finish_time='t2' if done else None)])

    def get_server(self, server_id):
        self.calls.append('server')
        return types.SimpleNamespace(id=server_id, status=self.status)

    def wait_for_server(self, server, status, failures, interval, wait):
        self.calls.append('wait_for_server')
        return types.SimpleNamespace(id=server.id, status=self.status)


def test_the_boot_wait_reads_the_build_events_then_the_server_once():
    compute = FakeBuild(polls=3)
    server = tasks.wait_until_built(compute, types.SimpleNamespace(id='s1'),
                                    timeout=60, interval=0)
    assert server.status == 'ACTIVE'
    assert compute.calls == ['actions', 'action', 'action', 'action',
                             'server']


def test_hidden_events_fall_back_to_the_status_poll():
    compute = FakeBuild(polls=3, events_visible=False)
    tasks.wait_until_built(compute, types.SimpleNamespace(id='s1'),
                           timeout=60, interval=0)
    assert compute.calls == ['actions', 'action', 'wait_for_server']


def test_a_failed_build_is_left_to_wait_for_server_to_report():
    compute = FakeBuild(polls=1, status='ERROR')
    tasks.wait_until_built(compute, types.SimpleNamespace(id='s1'),
                           timeout=60, interval=0)
    assert compute.calls[-2:] == ['server', 'wait_for_server']
