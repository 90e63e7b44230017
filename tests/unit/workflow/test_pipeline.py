"""The one destination pipeline, specified on a real journal (SQLite in
tmp).  The cloud edge is an openstacksdk Connection fake with a spec; the
steps below the pipeline (prechecks, replication, the TaskFlow engine)
are proven on devcloud, so here they are stand-ins that record the order
the pipeline calls them in."""

import types
from unittest import mock

from openstack import connection
import pytest

from overcloud_migrate import journal as journal_mod
from overcloud_migrate.plan import prechecks
from overcloud_migrate.plan import replicate
from overcloud_migrate.workflow import pipeline
from overcloud_migrate.workflow import tasks
from tests.unit.plan import test_model


@pytest.fixture
def journal(tmp_path):
    return journal_mod.Journal('sqlite:///%s' % (tmp_path / 'j.sqlite'))


def dest_with(*servers):
    """A destination whose Nova lists ``servers`` (SimpleNamespaces)."""
    dest = mock.Mock(spec=connection.Connection)
    dest.compute = mock.Mock(spec=['servers'])
    dest.compute.servers.side_effect = lambda tags: [
        s for s in servers if tags in s.tags]
    return dest


def copy_of(source_id, status='ACTIVE'):
    return types.SimpleNamespace(id='dest-' + source_id, status=status,
                                 tags=[tasks.SERVER_TAG_PREFIX + source_id])


class Steps:
    """Stand-ins for prechecks, replication and the engine."""

    def __init__(self, monkeypatch, problems=(), replication_error=None,
                 server_error=None):
        self.calls = []
        self.contexts = []
        steps = self

        class Prechecks:
            def __init__(self, plan, dest, journal, source_key, dest_key,
                         admin, source=None, migrated=()):
                steps.migrated = list(migrated)

            def run(self):
                steps.calls.append('prechecks')
                return list(problems)

        class Replicator:
            def __init__(self, plan, dest, journal, source_key, dest_key,
                         **kwargs):
                self.ids = {('network', 'n1'): 'dn1'}

            def run(self):
                steps.calls.append('replication')
                if replication_error:
                    raise replicate.ReplicationError(replication_error)
                return [replicate.Row('network', 'web', 'n1', 'create',
                                      'dn1', 'created')]

        def run_servers(contexts, url, migration_id, parallel=1):
            steps.calls.append('servers')
            steps.contexts = contexts
            for ctx in contexts:
                ctx.journal.update_server(
                    migration_id, ctx.server.id,
                    state=journal_mod.FAILED if server_error else
                    (journal_mod.HANDED_OFF if ctx.handoff
                     else journal_mod.DONE),
                    error=server_error, dest_id='dest-' + ctx.server.id)
            return {c.server.id: server_error for c in contexts}

        monkeypatch.setattr(prechecks, 'Prechecks', Prechecks)
        monkeypatch.setattr(replicate, 'Replicator', Replicator)
        monkeypatch.setattr(pipeline.engine, 'run_servers', run_servers)


def job(journal, dest, **values):
    plan = test_model.sample()
    migration_id = journal.start('src', 'dst', plan.to_dict())
    for position, server in enumerate(plan.servers):
        journal.add_server(migration_id, server.id, server.name, position)
    return pipeline.Job(migration_id=migration_id, plan=plan,
                        journal=journal, source_key='src', dest_key='dst',
                        dest=dest, **values)


def test_the_steps_run_in_order_and_the_migration_ends_done(
        monkeypatch, journal):
    steps = Steps(monkeypatch)
    the_job = job(journal, dest_with())
    result = pipeline.run(the_job)
    assert steps.calls == ['prechecks', 'replication', 'servers']
    assert [r.type for r in result.resources] == ['network']
    assert [(r.source_id, r.state) for r in result.servers] == [
        ('v1', journal_mod.DONE)]
    assert result.failed == 0 and result.migrated == {}
    assert journal.get(the_job.migration_id).state == journal_mod.DONE


def test_each_flow_is_built_from_the_plans_server_record(monkeypatch,
                                                         journal):
    steps = Steps(monkeypatch)
    settings = pipeline.Settings(stop=False, timeout=42, delete_source=True)
    the_job = job(journal, dest_with(), settings=settings,
                  transport=mock.sentinel.transport)
    pipeline.run(the_job)
    [ctx] = steps.contexts
    assert ctx.server is the_job.plan.servers[0]
    assert ctx.ids == {('network', 'n1'): 'dn1'}
    assert (ctx.stop, ctx.timeout, ctx.delete_source) == (False, 42, True)
    assert ctx.transport is mock.sentinel.transport
    assert ctx.handoff is False and ctx.item is None


def test_a_server_an_earlier_run_moved_is_done_and_not_moved_again(
        monkeypatch, journal):
    steps = Steps(monkeypatch)
    the_job = job(journal, dest_with(copy_of('v1', 'SHUTOFF'),
                                     copy_of('v1')))
    result = pipeline.run(the_job)
    assert result.migrated == {'v1': 'dest-v1'}
    assert steps.contexts == []
    # migrate still reports (and repairs) the network world
    assert steps.calls == ['prechecks', 'replication']
    assert steps.migrated == ['v1']
    record = journal.server(the_job.migration_id, 'v1')
    assert (record.state, record.dest_id) == (journal_mod.DONE, 'dest-v1')
    assert journal.get(the_job.migration_id).state == journal_mod.DONE


def test_a_receiver_item_whose_server_runs_already_touches_nothing(
        monkeypatch, journal):
    steps = Steps(monkeypatch)
    the_job = job(journal, dest_with(copy_of('v1')),
                  network_when_migrated=False)
    result = pipeline.run(the_job)
    assert steps.calls == []
    assert result.migrated == {'v1': 'dest-v1'}
    assert journal.get(the_job.migration_id).state == journal_mod.DONE


def test_an_aborting_migration_does_not_adopt_earlier_copies(monkeypatch,
                                                             journal):
    steps = Steps(monkeypatch)
    the_job = job(journal, dest_with(copy_of('v1')))
    journal.set_state(the_job.migration_id, journal_mod.ABORTING)
    result = pipeline.run(the_job)
    assert result.migrated == {}
    assert [c.server.id for c in steps.contexts] == ['v1']


def test_failed_prechecks_fail_the_migration_before_anything_is_built(
        monkeypatch, journal):
    problem = prechecks.Problem('flavor', 'm1.tiny', 'm1.tiny',
                                'does not exist')
    steps = Steps(monkeypatch, problems=[problem])
    the_job = job(journal, dest_with())
    with pytest.raises(pipeline.PrecheckFailed) as caught:
        pipeline.run(the_job)
    assert caught.value.problems == [problem]
    assert steps.calls == ['prechecks']
    record = journal.get(the_job.migration_id)
    assert record.state == journal_mod.FAILED
    assert record.error == caught.value.summary()
    assert 'flavor m1.tiny: does not exist' in record.error


def test_prechecks_the_caller_ran_are_not_run_again(monkeypatch, journal):
    steps = Steps(monkeypatch)
    pipeline.run(job(journal, dest_with(), prechecked=True))
    assert steps.calls == ['replication', 'servers']


def test_a_replication_failure_fails_the_migration(monkeypatch, journal):
    steps = Steps(monkeypatch, replication_error="network 'web': quota")
    the_job = job(journal, dest_with())
    with pytest.raises(pipeline.MigrationFailed) as caught:
        pipeline.run(the_job)
    assert caught.value.reason == "network 'web': quota"
    assert caught.value.migration_id == the_job.migration_id
    assert steps.calls == ['prechecks', 'replication']
    assert journal.get(the_job.migration_id).state == journal_mod.FAILED


def test_network_only_ends_network_ready_and_moves_no_server(monkeypatch,
                                                             journal):
    steps = Steps(monkeypatch)
    the_job = job(journal, dest_with(copy_of('v1')), servers=False)
    result = pipeline.run(the_job)
    assert steps.calls == ['prechecks', 'replication']
    assert result.servers == [] and result.migrated == {}
    assert journal.get(the_job.migration_id).state == \
        journal_mod.NETWORK_READY


def test_a_failed_server_fails_the_migration_with_its_reason(monkeypatch,
                                                             journal):
    Steps(monkeypatch, server_error='boot timed out')
    the_job = job(journal, dest_with())
    result = pipeline.run(the_job)
    assert result.failed == 1
    record = journal.get(the_job.migration_id)
    assert (record.state, record.error) == (journal_mod.FAILED,
                                            'boot timed out')


def test_resume_runs_only_the_servers_not_finished(monkeypatch, journal):
    steps = Steps(monkeypatch)
    the_job = job(journal, dest_with())
    journal.update_server(the_job.migration_id, 'v1',
                          state=journal_mod.DONE, dest_id='dest-v1')
    result = pipeline.run(the_job)
    assert steps.contexts == []
    assert result.servers[0].state == journal_mod.DONE


def test_a_handoff_reaches_no_destination_and_ends_handed_off(monkeypatch,
                                                              journal):
    steps = Steps(monkeypatch)
    the_job = job(journal, None, handoff=True, prechecked=True)
    result = pipeline.run(the_job)
    assert steps.calls == ['servers']
    assert [c.handoff for c in steps.contexts] == [True]
    assert [r.state for r in result.servers] == [journal_mod.HANDED_OFF]
    assert journal.get(the_job.migration_id).state == journal_mod.HANDED_OFF


def test_the_receiver_gives_each_flow_its_item(monkeypatch, journal):
    steps = Steps(monkeypatch)
    pipeline.run(job(journal, dest_with(), items={'v1': mock.sentinel.item}))
    assert [c.item for c in steps.contexts] == [mock.sentinel.item]
