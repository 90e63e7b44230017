"""nova-compute's launcher shortens the waits of its start."""

import sys
import types

from overcloud_devcloud import compute


def _fake_nova(monkeypatch, calls):
    conductor_api = types.ModuleType('nova.conductor.api')

    class API:
        def wait_until_ready(self, context, early_timeout=10,
                             early_attempts=10):
            calls.append((context, early_timeout, early_attempts))
    conductor_api.API = API
    servicegroup_api = types.ModuleType('nova.servicegroup.api')
    servicegroup_api.INITIAL_REPORTING_DELAY = 5
    for name, module in (
            ('nova', types.ModuleType('nova')),
            ('nova.conductor', types.ModuleType('nova.conductor')),
            ('nova.conductor.api', conductor_api),
            ('nova.servicegroup', types.ModuleType('nova.servicegroup')),
            ('nova.servicegroup.api', servicegroup_api)):
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules['nova.conductor'].api = conductor_api
    sys.modules['nova.servicegroup'].api = servicegroup_api
    return API, servicegroup_api


def test_short_conductor_pings_and_a_heartbeat_at_once(monkeypatch):
    calls = []
    api, servicegroup_api = _fake_nova(monkeypatch, calls)
    compute.tune_start()
    compute.tune_start()  # twice: still one wrapper
    api().wait_until_ready('ctx')
    assert calls == [('ctx', compute.CONDUCTOR_PING_TIMEOUT,
                      compute.CONDUCTOR_PING_ATTEMPTS)]
    assert compute.CONDUCTOR_PING_TIMEOUT < 10
    assert servicegroup_api.INITIAL_REPORTING_DELAY == 0
