"""Rows of a migration run, built by column name from the workflow's
records, in a table and in JSON."""

import json

from cliff.formatters import json_format
from cliff.formatters import table

from overcloud_migrate import journal as journal_mod
from overcloud_migrate.plan import model
from overcloud_migrate.plan import replicate
from overcloud_migrate.v1 import columns
from overcloud_migrate.v1 import constants
from overcloud_migrate.workflow import runner


def _journal(tmp_path):
    return journal_mod.Journal('sqlite:///%s' % (tmp_path / 'j.sqlite'))


def _finished_server(journal):
    migration_id = journal.start('src', 'dst', {})
    journal.add_server(migration_id, 'sid-1', 'web', 0)
    # phases are added in the order they happen, not alphabetically
    for phase, seconds in (('stop', 3.462), ('snapshot', 2.816),
                           ('transfer', 4.259), ('boot', 43.316),
                           ('verify', 0.256)):
        journal.update_server(migration_id, 'sid-1', phase=phase,
                              seconds=seconds)
    journal.update_server(migration_id, 'sid-1', state='done',
                          dest_id='did-1', bytes=8_388_608,
                          transfer_seconds=4.0, stopped_at=100.0,
                          active_at=154.0)
    return migration_id, journal.server(migration_id, 'sid-1')


def _server(**values):
    fields = {'id': 'sid-1', 'name': 'web', 'flavor_id': 'f',
              'image_id': 'i', 'dest_host': None}
    fields.update(values)
    return model.Server(**fields)


def test_every_field_has_a_header():
    assert len(constants.MIGRATE_FIELDS) == len(constants.MIGRATE_COLUMNS)


def test_phases_read_in_the_order_they_happened(tmp_path):
    _id, record = _finished_server(_journal(tmp_path))
    phases = columns.PhasesColumn(runner.server_record(record)['phases'])
    assert phases.human_readable() == (
        'stop 3.5 s, snapshot 2.8 s, transfer 4.3 s, boot 43.3 s, '
        'verify 0.3 s')
    assert phases.machine_readable() == {
        'stop': 3.462, 'snapshot': 2.816, 'transfer': 4.259, 'boot': 43.316,
        'verify': 0.256}
    assert list(phases.machine_readable()) == [
        'stop', 'snapshot', 'transfer', 'boot', 'verify']


def test_bytes_have_a_unit_in_tables_and_stay_integers_in_json():
    assert columns.BytesColumn(8_388_608).human_readable() == '8.4 MB'
    assert columns.BytesColumn(8_388_608).machine_readable() == 8_388_608
    assert columns.BytesColumn(512).human_readable() == '512 B'
    assert columns.BytesColumn(1_500).human_readable() == '1.5 kB'
    assert columns.BytesColumn(3 * 10 ** 12).human_readable() == '3.0 TB'
    assert columns.BytesColumn(None).human_readable() == ''
    assert columns.BytesColumn(None).machine_readable() == ''


def _emit(formatter, rows):
    class Args:
        noindent = False
        max_width = 0
        fit_width = False
        print_empty = False

    out = []

    class Stdout:
        def write(self, text):
            out.append(text)

    formatter.emit_list(constants.MIGRATE_COLUMNS, rows, Stdout(), Args())
    return ''.join(out)


def test_a_finished_server_in_a_table_and_in_json(tmp_path):
    _id, record = _finished_server(_journal(tmp_path))
    rows = columns.migrate_rows([runner.server_record(record)])
    text = _emit(table.TableFormatter(), rows)
    assert '8.4 MB' in text
    assert 'stop 3.5 s, snapshot 2.8 s' in text
    [row] = json.loads(_emit(json_format.JSONFormatter(), rows))
    assert row == {
        'Type': 'server', 'Name': 'web', 'Source ID': 'sid-1',
        'Action': 'migrate', 'Destination ID': 'did-1', 'Status': 'done',
        'Bytes': 8_388_608, 'MB/s': 2.1, 'Downtime (s)': 54.0,
        'Destination Host': '',
        'Phases': {'stop': 3.462, 'snapshot': 2.816, 'transfer': 4.259,
                   'boot': 43.316, 'verify': 0.256}}


def test_resources_and_servers_share_the_columns(tmp_path):
    resource = replicate.Row('network', 'web-net', 'nid', 'create', None,
                             'planned').as_dict()
    planned = runner.planned_record(_server(dest_host='host-2'), 'migrate')
    rows = columns.migrate_rows([resource, planned])
    assert all(len(r) == len(constants.MIGRATE_COLUMNS) for r in rows)
    data = json.loads(_emit(json_format.JSONFormatter(), rows))
    assert data[0]['Type'] == 'network'
    assert data[0]['Destination ID'] == ''
    assert data[0]['Bytes'] == '' and data[0]['Phases'] == {}
    assert data[1]['Destination Host'] == 'host-2'
    assert data[1]['Status'] == 'planned' and data[1]['Phases'] == {}


def test_a_handoff_dry_run_row_names_the_directory():
    """`migrate --handoff DIR --dry-run` crashed with "Row has incorrect
    number of values" when rows were built by position."""
    planned = runner.planned_record(_server(), 'handoff', '/srv/handoff')
    [row] = json.loads(_emit(json_format.JSONFormatter(),
                             columns.migrate_rows([planned])))
    assert row['Action'] == 'handoff'
    assert row['Destination ID'] == '/srv/handoff'
    assert row['Status'] == 'planned'


def test_a_handoff_row_names_its_item(tmp_path):
    migration_id, record = _finished_server(_journal(tmp_path))
    [row] = columns.migrate_rows([runner.server_record(
        record, action='handoff', dest_id='%s-sid-1' % migration_id)])
    values = dict(zip(constants.MIGRATE_COLUMNS, row))
    assert values['Action'] == 'handoff'
    assert values['Destination ID'] == '%s-sid-1' % migration_id


def test_a_volume_row_has_its_bytes_rate_and_phases(tmp_path):
    journal = _journal(tmp_path)
    migration_id = journal.start('src', 'dst', {})
    for phase, seconds in (('volume-snapshot', 1.0), ('volume-upload', 2.5)):
        journal.update_volume(migration_id, 'vol-1', server_id='sid-1',
                              phase=phase, seconds=seconds)
    journal.update_volume(migration_id, 'vol-1', dest_id='dvol-1',
                          bytes=50_000_000, transfer_seconds=2.0)
    plan = model.Plan(volumes=[model.Volume(id='vol-1', size=1,
                                            name='db-data')])
    [record] = journal.volumes(migration_id)

    row = columns.migrate_rows([runner.volume_record(record, plan)])[0]

    values = dict(zip(constants.MIGRATE_COLUMNS, row))
    assert values['Type'] == 'volume' and values['Name'] == 'db-data'
    assert values['Destination ID'] == 'dvol-1'
    assert values['Status'] == 'created'
    assert values['Bytes'].machine_readable() == 50_000_000
    assert values['MB/s'].machine_readable() == 25.0
    assert values['Phases'].human_readable() == (
        'volume-snapshot 1.0 s, volume-upload 2.5 s')


def test_a_dry_run_lists_each_volume_of_a_server():
    server = _server()
    volume = model.Volume(id='v', size=2, name='', volume_type='fast')

    record = runner.planned_volume_record(volume, server)

    assert record['type'] == 'volume' and record['name'] == 'v'
    assert record['status'] == 'planned (server web, 2 GiB, fast)'
