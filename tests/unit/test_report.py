"""cli.report: the report first, then a non-zero exit that says why."""

from osc_lib import exceptions
import pytest

from overcloud_migrate.cli import report
from overcloud_migrate.workflow import runner
from overcloud_migrate.workflow import warm

REBUILT = ("Server 'db' (sid-1) was rebuilt (launched at T1, now at T2) "
           'since warm migration mid-1 began; it stops here: `openstack '
           'overcloud migration rollback mid-1` deletes what it made at the '
           'destination (the source is untouched), then migrate the server '
           'again.')


def server(name, status):
    return {'type': 'server', 'name': name, 'status': status}


class Lister:
    def __init__(self, outcome):
        self.made = outcome

    def run(self, parsed_args):
        self.outcome = self.made
        return 0


class Command(report.ReportThenFail, Lister):
    pass


def fail(outcome):
    with pytest.raises(exceptions.CommandError) as caught:
        Command(outcome).run(None)
    return str(caught.value)


def test_no_failure_returns_the_report():
    outcome = runner.Outcome([server('db', 'synced')], 'mid-1', 0, 1,
                             warm=warm.SYNC)
    assert Command(outcome).run(None) == 0


def test_a_failed_sync_names_each_failed_server_and_its_reason():
    outcome = runner.Outcome(
        [{'type': 'network', 'name': 'net', 'status': 'failed: ignored'},
         server('db', 'failed: ' + REBUILT), server('app', 'synced')],
        'mid-1', 1, 2, warm=warm.SYNC)
    message = fail(outcome)
    assert message.splitlines() == [
        '1 of 2 servers failed (migration mid-1: `openstack overcloud '
        'migration show mid-1`; what their rounds copied stays at the '
        'destination until `openstack overcloud migration rollback '
        'mid-1`):',
        '  db failed: ' + REBUILT]
    # a sync round never rolls back what it copied
    assert 'were rolled back' not in message


def test_a_failed_cutover_says_what_it_undid():
    message = fail(runner.Outcome([server('db', 'failed: no boot')],
                                  'mid-1', 1, 1, warm=warm.CUTOVER))
    assert 'each failed cut-over deleted what it booted and restarted its ' \
        'source server; the synced volumes stay for another try):' in message
    assert message.endswith('\n  db failed: no boot')


def test_a_failed_cold_migration_was_rolled_back():
    message = fail(runner.Outcome([server('web', 'failed: boot failed'),
                                   server('db', 'done')], 'mid-2', 1, 2))
    assert message == (
        '1 of 2 servers failed (migration mid-2: `openstack overcloud '
        'migration show mid-2`; the failed ones were rolled back):\n'
        '  web failed: boot failed')
