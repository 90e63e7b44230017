import datetime

import pytest
import sqlalchemy as sa

from overcloud_migrate.dtn import store as store_mod


@pytest.fixture
def store(tmp_path):
    db = store_mod.Store('sqlite:///%s' % (tmp_path / 'dtn.sqlite'))
    yield db
    db.close()


def test_default_url_is_in_the_state_dir(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_STATE_HOME', str(tmp_path))
    assert store_mod.default_database_url() == 'sqlite:///%s' % (
        tmp_path / 'overcloud-migrate' / 'dtn.sqlite')
    db = store_mod.Store()
    try:
        assert (tmp_path / 'overcloud-migrate' / 'dtn.sqlite').exists()
    finally:
        db.close()


def test_nodes_round_trip_and_persist(tmp_path):
    url = 'sqlite:///%s' % (tmp_path / 'p.sqlite')
    db = store_mod.Store(url)
    db.add_node('dtn-b', '10.0.0.2', gridftp_port=2812,
                exports={'data': '/export/data'})
    db.close()
    db = store_mod.Store(url)
    try:
        [node] = db.list_nodes()
        assert node['name'] == 'dtn-b'
        assert node['gridftp_port'] == 2812
        assert node['exports'] == {'data': '/export/data'}
        assert node['local'] is False
        assert db.find_node_by_address('10.0.0.2', 2812)['name'] == 'dtn-b'
    finally:
        db.close()


def test_duplicate_node_is_a_conflict(store):
    store.add_node('x', 'h', exports={'d': '/d'})
    with pytest.raises(store_mod.Conflict, match="'x' is already"):
        store.add_node('x', 'h2', exports={'d': '/d'})


def test_unknown_node(store):
    with pytest.raises(store_mod.NotFound, match='No DTN node named'):
        store.get_node('nope')
    with pytest.raises(store_mod.NotFound):
        store.delete_node('nope')
    with pytest.raises(store_mod.NotFound, match='1.2.3.4:2811'):
        store.find_node_by_address('1.2.3.4', 2811)


def test_sql_in_values_is_data(store):
    evil = "x' OR 1=1 --"
    store.add_node('real', 'h', exports={'d': '/d'})
    with pytest.raises(store_mod.NotFound):
        store.get_node(evil)
    store.add_node(evil, "'; DROP TABLE nodes; --", exports={'d': '/d'})
    names = [n['name'] for n in store.list_nodes()]
    assert names == ['real', evil]
    with store.engine.connect() as conn:
        assert conn.execute(sa.text('SELECT count(*) FROM nodes')).scalar() \
            == 2


def test_upsert_local_node_refreshes(store):
    store.upsert_local_node('me', 'h', 2811, 'ftp', None, {'a': '/a'})
    store.upsert_local_node('me', 'h', 2812, 'gsiftp', 9000, {'b': '/b'})
    [node] = store.list_nodes()
    assert (node['gridftp_port'], node['gridftp_scheme'], node['data_port'],
            node['exports'], node['local']) == (2812, 'gsiftp', 9000,
                                                {'b': '/b'}, True)


def test_transfer_lifecycle_writes_the_log(store):
    row = store.create_transfer('a', '/x/f', 'b', '/y/f', 'gridftp', 4,
                                bytes_total=10)
    assert row['state'] == store_mod.QUEUED
    store.update_transfer(row['id'], state=store_mod.RUNNING, bytes_done=5)
    assert store.get_transfer(row['id'])['bytes_done'] == 5
    done = store.finish_transfer(row['id'], store_mod.DONE, log={
        'bytes': 2_000_000, 'seconds': 2.0, 'mb_per_s': 1.0})
    assert done['state'] == 'done' and done['finished_at']
    [entry] = store.log()
    assert (entry['source'], entry['destination'], entry['file'],
            entry['mb'], entry['seconds'], entry['mb_per_s']) == (
        'a', 'b', '/y/f', 2.0, 2.0, 1.0)


def test_failed_transfer_writes_no_log(store):
    row = store.create_transfer('a', '/x/f', 'b', '/y/f', 'gridftp', 4)
    store.finish_transfer(row['id'], store_mod.FAILED, error='disk full')
    assert store.get_transfer(row['id'])['error'] == 'disk full'
    assert store.log() == []


def test_update_refuses_unknown_fields(store):
    row = store.create_transfer('a', '/x/f', 'b', '/y/f', 'gridftp', 4)
    with pytest.raises(ValueError, match='source_path'):
        store.update_transfer(row['id'], source_path='/etc/passwd')
    with pytest.raises(store_mod.NotFound):
        store.update_transfer('0' * 32, state='done')


def test_log_filters(store):
    store.add_log('a', 'b', '/d/vm1.qcow2', 1_000_000, 1.0)
    store.add_log('b', 'c', '/d/vm2.qcow2', 2_000_000, 1.0)
    store.add_log('c', 'a', '/d/100%_done', 1, 1.0)
    assert [r['file'] for r in store.log(node='a')] == [
        '/d/vm1.qcow2', '/d/100%_done']
    assert [r['file'] for r in store.log(file='vm2')] == ['/d/vm2.qcow2']
    # LIKE wildcards in the filter are literal characters
    assert [r['file'] for r in store.log(file='%_')] == ['/d/100%_done']
    assert store.log(file="' OR 1=1 --") == []
    assert store.log(node="' OR 1=1 --") == []
    future = datetime.datetime.now(datetime.timezone.utc) + \
        datetime.timedelta(hours=1)
    assert store.log(since=future) == []
    past = datetime.datetime(2000, 1, 1)
    assert len(store.log(since=past)) == 3
    assert len(store.log(limit=2)) == 2


def test_interrupted_transfers_are_failed_at_start(store):
    running = store.create_transfer('a', '/x/f', 'b', '/y/f', 'gridftp', 4)
    store.update_transfer(running['id'], state=store_mod.RUNNING)
    queued = store.create_transfer('a', '/x/g', 'b', '/y/g', 'gridftp', 4)
    done = store.create_transfer('a', '/x/h', 'b', '/y/h', 'gridftp', 4)
    store.finish_transfer(done['id'], store_mod.DONE, log={
        'bytes': 1, 'seconds': 1.0, 'mb_per_s': 1e-6})
    assert store.fail_interrupted() == 2
    for row in (running, queued):
        current = store.get_transfer(row['id'])
        assert current['state'] == 'failed'
        assert 'stopped' in current['error']
    assert store.get_transfer(done['id'])['state'] == 'done'
