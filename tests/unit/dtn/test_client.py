"""DTNClient against the real service (conftest.py) and a closed port."""

import socket

import pytest

from overcloud_migrate.dtn import client as dtn_client


@pytest.fixture
def client(dtn):
    return dtn_client.DTNClient(dtn.url, token=dtn.token, timeout=10)


def _closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_unreachable_dtn_names_the_endpoint():
    url = 'http://127.0.0.1:%d' % _closed_port()
    with pytest.raises(dtn_client.DTNClientError,
                       match='%s is unreachable: .*Connection refused'
                       % url):
        dtn_client.DTNClient(url, token='x' * 20, timeout=2).nodes()


def test_endpoint_must_be_http():
    with pytest.raises(dtn_client.DTNClientError, match='not an http'):
        dtn_client.DTNClient('ftp://dtn:2811')


def test_wrong_token_is_an_error_with_status(dtn):
    bad = dtn_client.DTNClient(dtn.url, token='wrong-token-1234567890')
    with pytest.raises(dtn_client.DTNClientError, match='answered 401') as e:
        bad.nodes()
    assert e.value.status == 401


def test_nodes_round_trip(client):
    node = client.add_node('seoul', '10.1.1.1', {'data': '/export/data'},
                           gridftp_port=2812, data_port=22700)
    assert node['data_port'] == 22700
    assert [n['name'] for n in client.nodes()] == ['a', 'b', 'seoul']
    assert client.node('seoul')['gridftp_port'] == 2812
    client.delete_node('seoul')
    with pytest.raises(dtn_client.DTNClientError, match="'seoul'"):
        client.node('seoul')


def test_transfer_wait_and_log(client, dtn):
    row = client.start_transfer('a:%s/small.dat' % dtn.export_a,
                                'b:%s/w.dat' % dtn.export_b, streams=3)
    seen = []
    done = client.wait_transfer(row['id'], timeout=10, interval=0.05,
                                progress=seen.append)
    assert done['state'] == 'done' and seen[-1] is not None
    assert [r['file'] for r in client.log(node='a')] == [
        '%s/w.dat' % dtn.export_b]
    assert client.listing('a', str(dtn.export_a))['entries'] == [
        'small.dat', 'sub/']


def test_wait_raises_on_failure_and_timeout(client, dtn):
    failing = client.start_transfer('a:%s/small.dat' % dtn.export_a,
                                    'b:%s/none/x' % dtn.export_b)
    with pytest.raises(dtn_client.TransferFailed, match='failed'):
        client.wait_transfer(failing['id'], timeout=10, interval=0.05)
    (dtn.export_a / 'big.dat').write_bytes(b'\0' * (4 * 1024 * 1024))
    slow = client.start_transfer('a:%s/big.dat' % dtn.export_a,
                                 'b:%s/big.dat' % dtn.export_b,
                                 mover='slowcopy')
    with pytest.raises(dtn_client.WaitTimeout, match='did not finish'):
        client.wait_transfer(slow['id'], timeout=0.3, interval=0.05)
    cancelled = client.cancel_transfer(slow['id'])
    assert cancelled['id'] == slow['id']
    with pytest.raises(dtn_client.TransferFailed, match='cancelled'):
        client.wait_transfer(slow['id'], timeout=10, interval=0.05)


def test_a_waiting_request_answers_when_the_transfer_ends(client, dtn):
    # slowcopy takes 0.05 s per 64 KiB: four chunks here, 64 below
    (dtn.export_a / 'four.dat').write_bytes(b'\1' * (4 * 64 * 1024))
    short = client.start_transfer('a:%s/four.dat' % dtn.export_a,
                                  'b:%s/four.dat' % dtn.export_b,
                                  mover='slowcopy')
    assert client.transfer(short['id'], wait=10)['state'] == 'done'
    (dtn.export_a / 'big.dat').write_bytes(b'\1' * (64 * 64 * 1024))
    slow = client.start_transfer('a:%s/big.dat' % dtn.export_a,
                                 'b:%s/big.dat' % dtn.export_b,
                                 mover='slowcopy')
    # the wait ends first: the answer is the transfer as it runs
    assert client.transfer(slow['id'], wait=0.2)['state'] in (
        'queued', 'running')
    client.cancel_transfer(slow['id'])
    assert client.transfer(slow['id'], wait=10)['state'] == 'cancelled'


@pytest.mark.parametrize('query', ['wait=abc', 'wait=-1', 'wait=10.5',
                                   'wait=nan', 'wait=inf', 'since=1'])
def test_a_bad_wait_is_refused(client, dtn, query):
    row = client.start_transfer('a:%s/small.dat' % dtn.export_a,
                                'b:%s/q.dat' % dtn.export_b)
    with pytest.raises(dtn_client.DTNClientError, match='answered 400') as e:
        client._call('GET', '/v1/transfers/%s?%s' % (row['id'], query))
    assert e.value.status == 400
    client.wait_transfer(row['id'], timeout=10, interval=0.05)
