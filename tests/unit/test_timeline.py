"""The timeline picture, from a journal with known times (no cloud)."""

import sys
import xml.etree.ElementTree as ET

import pytest

from overcloud_migrate import journal as journal_mod
from overcloud_migrate import timeline
from tests.unit import test_plugin_cli

T0 = 1_800_000_000.0
PHASES = ('stop', 'snapshot', 'transfer', 'boot', 'verify')


def record(journal, migration_id, server_id, name, start, durations,
           position):
    """Run ``durations`` one after another from ``T0 + start``."""
    journal.add_server(migration_id, server_id, name, position)
    at = T0 + start
    for phase, seconds in zip(PHASES, durations):
        journal.update_server(migration_id, server_id, phase=phase,
                              seconds=seconds, started=at)
        if phase == 'stop':
            journal.update_server(migration_id, server_id,
                                  stopped_at=at + seconds)
        if phase == 'boot':
            journal.update_server(migration_id, server_id,
                                  active_at=at + seconds)
        at += seconds
    journal.update_server(migration_id, server_id, state='done')


ORDER = {'waves': [
    {'index': 1, 'groups': [{'server_ids': ['v-app', 'v-db']}]},
    {'index': 2, 'groups': [{'server_ids': ['v-web']}]}]}


@pytest.fixture
def journal_3t(tmp_path):
    journal = journal_mod.Journal('sqlite:///%s' % (tmp_path / 'j.sqlite'))
    migration = journal.start('s', 'd', {'servers': [], 'order': ORDER})
    record(journal, migration, 'v-web', 'web', 30.0, (2, 3, 4, 5, 1), 0)
    record(journal, migration, 'v-db', 'db', 1.0, (1, 2, 3, 4, 1), 1)
    record(journal, migration, 'v-app', 'app', 0.0, (3, 3, 3, 3, 1), 2)
    return journal, migration


def test_layout_sorts_by_wave_then_start_and_finds_the_windows(journal_3t):
    journal, migration = journal_3t
    line = timeline.layout(timeline.servers_from_journal(journal, migration),
                           ORDER)
    assert [ln.name for ln in line.lines] == ['app', 'db', 'web']
    assert [(ln.wave, ln.group) for ln in line.lines] == [(1, 1), (1, 1),
                                                          (2, 1)]
    app, db, web = line.lines
    assert app.spans[0] == ('stop', 0.0, 3.0)
    assert [p for p, _s, _e in web.spans] == list(PHASES)
    assert web.spans[-1] == ('verify', 44.0, 45.0)
    # downtime: stop ended -> boot ended
    assert app.down == (3.0, 12.0) and db.down == (2.0, 11.0)
    assert web.down == (32.0, 44.0)
    assert line.groups == {(1, 1): (2.0, 12.0), (2, 1): (32.0, 44.0)}
    assert line.waves == {1: (0, 1), 2: (2, 2)}


def gids(svg_path):
    tree = ET.parse(svg_path)
    return {el.get('id') for el in tree.iter() if el.get('id')}


def test_the_svg_has_one_bar_per_server_and_phase(journal_3t, tmp_path):
    journal, migration = journal_3t
    path = tmp_path / 'timeline.svg'
    figure = timeline.write(journal, migration, path, order=ORDER)
    ids = gids(path)
    bars = {i for i in ids if i.startswith('phase:')}
    assert bars == {'phase:%s:%s' % (s, p) for s in ('web', 'app', 'db')
                    for p in PHASES}
    assert {'down:web', 'down:app', 'down:db'} <= ids
    assert 'group:1.1' in ids        # app and db down together
    assert 'group:2.1' not in ids    # a group of one: its own window
    assert 'wave:2' in ids
    # The drawn rectangles carry the journal's times: web's boot.
    (axes,) = figure.axes
    boot = [p for p in axes.patches if p.get_gid() == 'phase:web:boot']
    assert [(b.get_x(), b.get_width()) for b in boot] == [(39.0, 5.0)]
    colours = {p.get_gid().split(':')[2]: p.get_facecolor()
               for p in axes.patches
               if (p.get_gid() or '').startswith('phase:app:')}
    assert len(set(colours.values())) == len(PHASES)   # one per phase
    labels = [t.get_text() for t in axes.get_yticklabels()]
    assert labels == ['app', 'db', 'web']


def test_a_png_is_written(journal_3t, tmp_path):
    journal, migration = journal_3t
    path = tmp_path / 'timeline.png'
    timeline.write(journal, migration, path)
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_a_hundred_servers_stay_readable(tmp_path):
    servers = [{'name': 'vm-%03d' % i, 'source_id': 'id-%d' % i,
                'phases': {}, 'stopped_at': T0 + i + 1,
                'active_at': T0 + i + 9,
                'spans': {p: [T0 + i + n * 2, T0 + i + n * 2 + 2]
                          for n, p in enumerate(PHASES)}}
               for i in reversed(range(100))]
    order = {'waves': [{'index': w + 1, 'groups': [
        {'server_ids': ['id-%d' % i for i in range(w * 25, w * 25 + 25)]}]}
        for w in range(4)]}
    line = timeline.layout(servers, order)
    assert [ln.name for ln in line.lines] == ['vm-%03d' % i
                                              for i in range(100)]
    figure = timeline.draw(line, tmp_path / 'big.svg')
    width, height = figure.get_size_inches()
    assert height >= 100 * 0.25      # a quarter inch per server at least
    assert len(gids(tmp_path / 'big.svg') & {'group:%d.1' % w
                                             for w in (1, 2, 3, 4)}) == 4


def test_old_journals_without_spans_are_rebuilt_from_the_durations():
    server = {'name': 'web', 'source_id': 'v1', 'spans': {},
              'phases': {'boot': 4.0, 'stop': 1.0, 'snapshot': 2.0,
                         'transfer': 3.0},
              'stopped_at': T0 + 1.0, 'active_at': T0 + 10.0}
    (line,) = timeline.layout([server]).lines
    assert line.spans == [('stop', 0.0, 1.0), ('snapshot', 1.0, 3.0),
                          ('transfer', 3.0, 6.0), ('boot', 6.0, 10.0)]


def test_a_wrong_suffix_and_no_data_are_refused(tmp_path):
    with pytest.raises(timeline.TimelineError, match='.svg or .png'):
        timeline.draw(timeline.Timeline([], {}, {}), tmp_path / 't.pdf')
    with pytest.raises(timeline.TimelineError, match='no server'):
        timeline.draw(timeline.Timeline([], {}, {}), tmp_path / 't.svg')


def test_missing_matplotlib_is_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'matplotlib', None)
    line = timeline.layout([{'name': 'a', 'source_id': 'a', 'phases': {},
                             'spans': {'stop': [T0, T0 + 1]}}])
    with pytest.raises(timeline.TimelineError,
                       match=r"overcloud-migrate\[timeline\]"):
        timeline.draw(line, tmp_path / 't.svg')


def test_show_timeline_through_the_cli(journal_3t, tmp_path):
    journal, migration = journal_3t
    path = tmp_path / 'cli.svg'
    code, out, err = test_plugin_cli.run([
        'overcloud', 'migration', 'show', migration, '--journal-url',
        journal.url, '--timeline', str(path), '-f', 'json', '-c', 'id'])
    assert code == 0, err
    assert 'Timeline of migration %s written to %s' % (migration, path) in err
    assert '"id"' in out and str(path) not in out   # stdout: the result
    assert len([i for i in gids(path) if i.startswith('phase:')]) == 15
