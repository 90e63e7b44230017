"""journal: a journal made before phase spans were recorded still opens."""

import sqlite3

from overcloud_migrate import journal as journal_mod


def test_an_older_journal_gets_the_phase_spans_column(tmp_path):
    path = tmp_path / 'old.sqlite'
    url = 'sqlite:///%s' % path
    journal = journal_mod.Journal(url)
    migration = journal.start('s', 'd', {'servers': []})
    journal.add_server(migration, 'v1', 'web', 0)
    journal.engine.dispose()
    with sqlite3.connect(path) as db:   # as an older release made it
        db.execute('ALTER TABLE server_runs DROP COLUMN phase_spans')
    journal = journal_mod.Journal(url)
    journal.update_server(migration, 'v1', phase='stop', seconds=1.5,
                          started=100.0)
    record = journal.server(migration, 'v1')
    assert record.phase_spans == '{"stop": [100.0, 101.5]}'
    assert record.phases == '{"stop": 1.5}'
