"""Warm migration's logic without a cloud: telling a changed source, what
is refused, the round through the pipeline (on a real SQLite journal, the
round itself a stand-in: devcloud proves it), and the figures
``migration show`` prints.  The whole flow runs on devcloud in
tests/functional/test_migrate_warm.py."""

import types
from unittest import mock

from openstack import exceptions as sdk_exc
import pytest

from overcloud_migrate import journal as journal_mod
from overcloud_migrate.transports import base as transport_base
from overcloud_migrate.workflow import pipeline
from overcloud_migrate.workflow import runner
from overcloud_migrate.workflow import warm
from tests.unit.plan import test_model
from tests.unit.workflow import test_pipeline


@pytest.fixture
def journal(tmp_path):
    return journal_mod.Journal('sqlite:///%s' % (tmp_path / 'j.sqlite'))


def server(**changes):
    values = dict(launched_at='2026-12-06T10:00:00', flavor={
        'original_name': 'm1.small'}, image='', attached_volumes=[
            {'id': 'vol-b'}, {'id': 'vol-a'}])
    values.update(changes)
    return types.SimpleNamespace(**values)


def test_a_fingerprint_holds_launch_flavor_image_and_sorted_volumes():
    assert warm.fingerprint(server(image={'id': 'img'})) == {
        'launched_at': '2026-12-06T10:00:00', 'flavor': 'm1.small',
        'image': 'img', 'volumes': ['vol-a', 'vol-b']}
    # a volume-backed server has no image
    assert warm.fingerprint(server())['image'] is None


@pytest.mark.parametrize('changes, sentence', [
    ({}, None),
    ({'flavor': {'original_name': 'm1.large'},
      'launched_at': '2026-12-06T11:00:00'},
     'was resized (flavor m1.small, now m1.large)'),
    ({'launched_at': '2026-12-06T11:00:00'},
     'was rebuilt (launched at 2026-12-06T10:00:00, now at '
     '2026-12-06T11:00:00)'),
    ({'attached_volumes': [{'id': 'vol-a'}, {'id': 'vol-c'}]},
     'had its volumes changed (detached vol-b, attached vol-c)'),
])
def test_a_change_between_rounds_is_named(changes, sentence):
    before = warm.fingerprint(server())
    assert warm.describe_change(before, warm.fingerprint(
        server(**changes))) == sentence


class Cold(transport_base.Transport):
    name = 'plain'

    def check(self, size=None):
        pass

    def transfer(self, source, dest, progress):
        raise AssertionError('not called')


class Deltas(Cold):
    name = 'deltas'
    capabilities = frozenset({'deltas'})
    refusal = None

    def check_deltas(self, images=False):
        if self.refusal:
            raise transport_base.PreflightError(self.refusal)


def test_a_transport_without_deltas_is_refused_naming_those_that_can():
    plan = test_model.sample()
    found = warm.problems(plan, Cold())
    assert found[0].type == 'transport'
    assert found[0].problem == (
        'the plain transport cannot move deltas; warm migration needs one '
        'that can: dtn')


def test_a_server_without_volumes_and_a_transport_refusal_are_problems():
    plan = test_model.sample()
    assert not plan.servers[0].volumes
    transport = Deltas()
    transport.refusal = 'Warm migration with the dtn transport needs ' \
        '--dtn-source-volumes.'
    found = warm.problems(plan, transport)
    assert [(p.type, p.name) for p in found] == [
        ('transport', 'deltas'), ('server', plan.servers[0].name)]
    assert found[0].problem == transport.refusal
    assert found[1].problem.startswith('has no Cinder volume')


def test_the_sync_key_is_a_name_a_dtn_accepts():
    key = warm.sync_key('8d5c1f9e-0000-4000-8000-000000000001',
                        '3f1e0c2a-0000-4000-8000-000000000002')
    assert len(key) <= 128
    assert set(key) <= set('abcdefghijklmnopqrstuvwxyz0123456789-.')


def test_the_summary_reads_the_last_round_of_each_volume(journal):
    migration = journal.start('src', 'dst', {})
    journal.add_round(migration, 's1', 'va', 1, size=10, bytes=900,
                      changed_bytes=900, repaired_bytes=0, seconds=9.0,
                      finished_at=1000.0)
    journal.add_round(migration, 's1', 'va', 2, size=10, bytes=40,
                      changed_bytes=36, repaired_bytes=4, seconds=1.5,
                      finished_at=1100.0)
    journal.add_round(migration, 's1', 'vb', 2, size=10, bytes=10,
                      changed_bytes=10, repaired_bytes=0, seconds=0.5,
                      finished_at=1090.0)
    # the same round journaled again (a resumed round) replaces its figures
    journal.add_round(migration, 's1', 'vb', 2, size=10, bytes=12,
                      changed_bytes=12, repaired_bytes=0, seconds=0.5,
                      finished_at=1095.0)
    assert warm.summary(journal, migration, 's1', now=1130.0) == {
        'sync_rounds': 2, 'last_sync_age': 30.0, 'last_sync_bytes': 52,
        'last_changed_bytes': 48, 'cutover_copy_estimate': 2.0}
    assert warm.summary(journal, migration, 'other') == {}


def test_a_sync_round_ends_synced_and_builds_the_network_only_first(
        monkeypatch, journal):
    steps = test_pipeline.Steps(monkeypatch)
    rounds = []

    def run_round(contexts, parallel=1):
        rounds.append([(c.server.id, c.warm) for c in contexts])
        for ctx in contexts:
            ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                      state=journal_mod.SYNCED)
        return {c.server.id: None for c in contexts}

    monkeypatch.setattr(warm, 'run_round', run_round)
    first = test_pipeline.job(journal, test_pipeline.dest_with(),
                              warm=warm.SYNC, prechecked=True)
    result = pipeline.run(first)
    assert steps.calls == ['replication']
    assert rounds == [[('v1', 'sync')]]
    assert journal.get(first.migration_id).state == journal_mod.SYNCED
    assert journal.get(first.migration_id).step is None
    assert result.failed == 0
    again = pipeline.Job(**dict(vars(first), network=False))
    pipeline.run(again)
    assert steps.calls == ['replication']    # not again
    assert len(rounds) == 2


def test_a_failed_round_fails_the_migration_with_its_reason(monkeypatch,
                                                            journal):
    test_pipeline.Steps(monkeypatch)

    def run_round(contexts, parallel=1):
        for ctx in contexts:
            ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                      state=journal_mod.FAILED,
                                      error='resized')
        return {c.server.id: 'resized' for c in contexts}

    monkeypatch.setattr(warm, 'run_round', run_round)
    the_job = test_pipeline.job(journal, test_pipeline.dest_with(),
                                warm=warm.SYNC, prechecked=True)
    result = pipeline.run(the_job)
    assert result.failed == 1
    record = journal.get(the_job.migration_id)
    assert (record.state, record.error) == (journal_mod.FAILED, 'resized')


def _run(journal, plan, migration, **options):
    identity = types.SimpleNamespace(key=lambda: 'k', name='c')
    return runner.Run(plan, None, None, identity, identity, journal,
                      runner.Options(**options))


def test_a_cutover_of_a_server_never_synced_is_refused(journal):
    plan = test_model.sample()
    migration = journal.start('src', 'dst', plan.to_dict())
    journal.add_server(migration, 'v1', plan.servers[0].name, 0)
    run = _run(journal, plan, migration, warm=True)
    with pytest.raises(runner.MigrationFailed) as caught:
        run.cutover(migration)
    assert "server '%s' never finished a sync round; run `openstack " \
        'overcloud migration sync %s` first' % (plan.servers[0].name,
                                                 migration) in str(caught.value)
    with pytest.raises(runner.MigrationFailed) as caught:
        run.sync(migration, servers=['nope'])
    assert "has no server 'nope'" in str(caught.value)


def test_sync_and_cutover_refuse_a_cold_or_finished_migration(journal):
    plan = test_model.sample()
    migration = journal.start('src', 'dst', plan.to_dict())
    with pytest.raises(runner.MigrationFailed) as caught:
        _run(journal, plan, migration).sync(migration)
    assert 'is a cold migration' in str(caught.value)
    journal.finish(migration, journal_mod.DONE)
    with pytest.raises(runner.MigrationFailed) as caught:
        _run(journal, plan, migration, warm=True).cutover(migration)
    assert 'is done: nothing is left to cut over' in str(caught.value)


def test_resume_between_rounds_says_what_to_run(journal):
    plan = test_model.sample()
    migration = journal.start('src', 'dst', plan.to_dict())
    journal.finish(migration, journal_mod.SYNCED)
    with pytest.raises(runner.MigrationFailed) as caught:
        _run(journal, plan, migration, warm=True).resume(migration)
    assert 'between its sync rounds: nothing was interrupted' in \
        str(caught.value)


# -- the flows, built from the plan's server record -------------------------

def _ctx(boot_source, **values):
    from tests.unit.workflow import test_volumes
    plan = test_volumes._plan(boot_source)
    plan.images = [test_volumes.model.Image(id='img', name='img',
                                            size=3 * 1024 ** 3 + 1)]
    ctx = test_volumes._ctx(plan)
    for key, value in values.items():
        setattr(ctx, key, value)
    return ctx


def test_a_round_checks_the_source_then_prepares_and_syncs_each_volume():
    names = [t.name for t in warm.round_tasks(_ctx('volume', warm='sync'))]
    assert names == ['check-source:s1', 'volume-prepare:s1:root',
                     'volume-prepare:s1:data', 'volume-prepare:s1:log',
                     'sync:s1:root', 'sync:s1:data', 'sync:s1:log']


def test_the_cutover_stops_then_moves_the_last_changes_and_boots():
    from overcloud_migrate.workflow import engine
    flow = engine.server_flow(_ctx('volume', warm='cutover'))
    names = [t.name for t in flow]
    # the copies are found again before the stop (outside the downtime)
    assert names[:5] == ['check-source:s1', 'volume-prepare:s1:root',
                         'volume-prepare:s1:data', 'volume-prepare:s1:log',
                         'stop:s1']
    assert names[5:8] == ['final-sync:s1:root', 'final-sync:s1:data',
                          'final-sync:s1:log']
    assert names[8:] == ['boot:s1', 'verify:s1', 'verify-volumes:s1',
                         'forget-syncs:s1']
    assert engine.flow_name(_ctx('volume', warm='cutover')) == 's1:cutover'


def test_an_image_booted_server_moves_its_root_cold_at_the_cutover():
    from overcloud_migrate.workflow import engine
    names = [t.name for t in engine.server_flow(
        _ctx('image', warm='cutover'))]
    assert names[3:6] == ['stop:s1', 'snapshot:s1', 'transfer:s1']
    assert names[-1] == 'clean-source:s1'


def test_dest_boot_volume_syncs_the_root_from_a_snapshot_and_boots_it():
    from overcloud_migrate.workflow import engine
    from overcloud_migrate.workflow import volumes
    ctx = _ctx('image', warm='cutover', dest_boot_volume=True,
               transport=Deltas())
    flow = list(engine.server_flow(ctx))
    names = [t.name for t in flow]
    assert 'transfer:s1' not in names and 'snapshot:s1' not in names
    assert names[1] == 'volume-prepare:s1:root-s1'
    assert names[4:7] == ['stop:s1', 'root-snapshot:s1',
                          'final-sync:s1:root-s1']
    boot = next(t for t in flow if t.name == 'boot:s1')
    assert set(boot.requires) == {'volume_dest:root-s1', 'volume_dest:data',
                                  'volume_dest:log'}
    # as large as the flavor, the image (3 GiB and a byte) and min_disk ask
    root = volumes.root_volume(ctx)
    assert (root.id, root.size, root.bootable) == ('root-s1', 4, True)
    mapping = volumes.block_device_mapping(ctx, {
        'volume_dest:root-s1': 'R', 'volume_dest:data': 'D',
        'volume_dest:log': 'L'})
    assert [(m['uuid'], m['boot_index'], m['source_type'])
            for m in mapping] == [('R', 0, 'volume'), ('D', -1, 'volume'),
                                  ('L', -1, 'volume')]


class DiskReader(Deltas):
    """Reads root disks in the source instance store."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def reads_disks(self):
        return True

    def sync_disk(self, server_id, host, dest_volume_id, key, progress):
        self.calls.append((server_id, host, dest_volume_id, key))
        return transport_base.SyncResult(size=8, bytes=4, changed_bytes=4,
                                         repaired_bytes=0, seconds=0.5,
                                         round=2)


def test_a_transport_reading_disks_needs_no_snapshot_of_the_root():
    from overcloud_migrate.workflow import engine
    ctx = _ctx('image', warm='cutover', dest_boot_volume=True,
               transport=DiskReader())
    names = [t.name for t in engine.server_flow(ctx)]
    assert 'root-snapshot:s1' not in names and 'snapshot:s1' not in names
    assert names[4:6] == ['stop:s1', 'final-sync:s1:root-s1']
    ctx = _ctx('image', warm='sync', dest_boot_volume=True,
               transport=DiskReader())
    names = [t.name for t in warm.round_tasks(ctx)]
    assert names == ['check-source:s1', 'volume-prepare:s1:root-s1',
                     'volume-prepare:s1:data', 'volume-prepare:s1:log',
                     'sync:s1:root-s1', 'sync:s1:data', 'sync:s1:log']


def test_a_disk_round_reads_the_host_now_and_journals_the_round(journal):
    from unittest import mock
    migration = journal.start('src', 'dst', {})
    journal.add_server(migration, 's1', 'web', 0)
    ctx = _ctx('image', warm='sync', dest_boot_volume=True,
               transport=DiskReader(), journal=journal,
               migration_id=migration, progress_bar=None)
    ctx.source = mock.Mock()
    ctx.source.compute.get_server.return_value = mock.Mock(
        compute_host='compute-2')
    task = next(t for t in warm.sync_tasks(ctx) if isinstance(
        t, warm.SyncDisk))
    assert task.execute(**{'volume_dest:root-s1': 'dest-vol'}) == 'dest-vol'
    assert ctx.transport.calls == [
        ('s1', 'compute-2', 'dest-vol', warm.sync_key(migration,
                                                      'root-s1'))]
    [row] = journal.rounds(migration)
    assert (row.volume_id, row.round, row.changed_bytes) == (
        'root-s1', 2, 4)


def test_a_cold_move_through_the_shares_syncs_once_and_makes_nothing():
    from overcloud_migrate.workflow import engine
    names = [t.name for t in engine.server_flow(
        _ctx('volume', volume_shares=True))]
    assert names[:4] == ['stop:s1', 'volume-prepare:s1:root',
                         'volume-prepare:s1:data', 'volume-prepare:s1:log']
    assert 'volume-snapshot:s1:root' not in names
    assert names[-1] == 'forget-syncs:s1'


def test_rollback_marks_every_server_rolled_back_a_deleted_source_too(
        journal, monkeypatch):
    """A warm migration stopped because a source server was deleted (one
    running, one that was stopped before it): rollback starts what it can
    and leaves no server of the migration 'failed' or 'synced'."""
    migration = journal.start('s', 'd', {'servers': []})
    for position, (sid, state, running) in enumerate((
            ('gone', journal_mod.FAILED, True),
            ('up', journal_mod.FAILED, True),
            ('off', journal_mod.SYNCED, False))):
        journal.add_server(migration, sid, 'srv-' + sid, position)
        journal.update_server(migration, sid, state=state,
                              source_was_running=running)
    monkeypatch.setattr(runner.tasks, 'tagged_servers', lambda conn, sid: [])
    monkeypatch.setattr(runner.tasks, 'marked_images',
                        lambda conn, mid, **props: [])
    monkeypatch.setattr(runner, '_rollback_volumes', lambda *args: 0)
    source = mock.Mock()
    found = {'up': types.SimpleNamespace(id='up', status='SHUTOFF')}

    def get_server(sid):
        if sid not in found:
            raise sdk_exc.NotFoundException('no server %s' % sid)
        return found[sid]

    source.compute.get_server.side_effect = get_server
    runner.rollback(journal.get(migration), source, mock.Mock(), journal)
    assert {r.source_id: r.state for r in journal.servers(migration)} == {
        'gone': journal_mod.ROLLED_BACK, 'up': journal_mod.ROLLED_BACK,
        'off': journal_mod.ROLLED_BACK}
    source.compute.start_server.assert_called_once_with(found['up'])
    # the stopped one was not looked up, let alone started
    assert [c.args[0] for c in source.compute.get_server.call_args_list] \
        == ['gone', 'up']
    assert journal.get(migration).state == journal_mod.ROLLED_BACK


def test_resume_of_a_round_cut_short_is_a_round_and_says_so(monkeypatch,
                                                             journal):
    """A warm migration interrupted inside a sync round resumes as a round
    (the source keeps running): its outcome is a round's, so a failure
    does not claim anything was rolled back."""
    from overcloud_migrate.cli import report
    plan = test_model.sample()
    migration = journal.start('src', 'dst', plan.to_dict())
    journal.set_state(migration, journal_mod.RUNNING, step=warm.SYNC)
    jobs = []

    def run(job):
        jobs.append(job)
        return types.SimpleNamespace(resources=[], servers=[], failed=1)
    monkeypatch.setattr(pipeline, 'run', run)
    monkeypatch.setattr(runner.Run, 'transport', lambda self: None)
    outcome = _run(journal, plan, migration, warm=True).resume(migration)
    assert [job.warm for job in jobs] == [warm.SYNC]
    assert outcome.warm == warm.SYNC
    assert report.AFTER_FAILURE[outcome.warm] != report.AFTER_FAILURE[None]
    assert 'rolled back' not in report.AFTER_FAILURE[outcome.warm]
