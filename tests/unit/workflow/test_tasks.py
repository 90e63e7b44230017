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
    assert tasks.delete_source_snapshots(conn, MIG, ['web']) == ['mine-web']
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

def test_the_boot_wait_reads_the_status_every_second():
    seen = {}

    class Compute:
        def wait_for_server(self, server, status, failures, interval, wait):
            seen.update(status=status, failures=failures, interval=interval,
                        wait=wait)
            return server

    server = types.SimpleNamespace(id='s1')
    assert tasks.wait_until_built(Compute(), server, timeout=60) is server
    assert seen == {'status': 'ACTIVE', 'failures': ['ERROR'],
                    'interval': 1.0, 'wait': 60}
