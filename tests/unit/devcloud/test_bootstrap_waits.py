"""What the bed's start waits for before it calls a cloud up: a fresh
heartbeat from every RPC service that ``status`` checks, and a Cinder
scheduler that knows the volume backend.

The API answers are scripted (one list per poll); the functional tests
(test_devcloud_restart.py, test_devcloud_cinder.py) run the real ones.
"""

import datetime
import types

import pytest

from overcloud_devcloud import bootstrap
from overcloud_devcloud import layout as layout_mod
from overcloud_devcloud import process

CLOUD = 'devcloud-b'   # two compute hosts
SINCE = datetime.datetime(2026, 12, 6, 12, 0, 0)
OLD = '2026-12-06T11:59:30.000000'
NEW = '2026-12-06T12:00:05.000000'


def _svc(binary, host, updated, state='up'):
    return types.SimpleNamespace(binary=binary, host=host, state=state,
                                 status='enabled', updated_at=updated)


class _Polls:
    """Hands out one scripted answer per call; the last one repeats."""

    def __init__(self, answers):
        self.answers, self.calls = list(answers), 0

    def __call__(self):
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(bootstrap.time, 'sleep', lambda seconds: None)


def _nova(conductor_updated):
    hosts = layout_mod.compute_hosts(CLOUD)
    return ([_svc('nova-compute', host, NEW) for host in hosts]
            + [_svc('nova-scheduler', hosts[0], NEW),
               _svc('nova-conductor', hosts[0], conductor_updated)])


def test_compute_waits_for_the_conductors_fresh_heartbeat_too():
    polls = _Polls([_nova(OLD), _nova(OLD), _nova(NEW)])
    conn = types.SimpleNamespace(compute=types.SimpleNamespace(
        services=polls))
    bootstrap.wait_for_compute(conn, CLOUD, lambda: None, SINCE)
    assert polls.calls == 3


def test_compute_names_the_service_without_a_fresh_heartbeat():
    conn = types.SimpleNamespace(compute=types.SimpleNamespace(
        services=_Polls([_nova(OLD)])))
    with pytest.raises(process.ProcessError) as failure:
        bootstrap.wait_for_compute(conn, CLOUD, lambda: None, SINCE,
                                   timeout=0)
    first = layout_mod.compute_hosts(CLOUD)[0]
    assert 'nova-conductor on %s' % first in str(failure.value)
    assert 'nova-compute' not in str(failure.value)


def _cinder():
    return [_svc(binary, layout_mod.cinder_host(CLOUD, binary), NEW)
            for binary in layout_mod.CINDER_SERVICES]


def test_block_storage_waits_until_the_scheduler_has_the_pool():
    pools = _Polls([[], [], ['%s#nfs' % layout_mod.cinder_host(
        CLOUD, 'cinder-volume')]])
    conn = types.SimpleNamespace(block_storage=types.SimpleNamespace(
        services=_Polls([_cinder()]), backend_pools=pools))
    bootstrap.wait_for_block_storage(conn, CLOUD, lambda: None, SINCE)
    assert pools.calls == 3


def test_block_storage_without_a_pool_says_the_scheduler_lacks_it():
    conn = types.SimpleNamespace(block_storage=types.SimpleNamespace(
        services=_Polls([_cinder()]), backend_pools=_Polls([[]])))
    with pytest.raises(process.ProcessError) as failure:
        bootstrap.wait_for_block_storage(conn, CLOUD, lambda: None, SINCE,
                                         timeout=0)
    assert 'no capabilities from %s' % layout_mod.cinder_host(
        CLOUD, 'cinder-volume') in str(failure.value)
