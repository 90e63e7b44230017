import sys
import types

from overcloud_devcloud import layout as layout_mod
from overcloud_devcloud import nofork
from overcloud_devcloud import services


def _fake_nova(monkeypatch, calls):
    """A fake nova.cmd.conductor whose main() serves as Nova's does."""
    service = types.ModuleType('nova.service')

    def serve(server, workers=None, no_fork=False):
        calls.append(('serve', server, workers, no_fork))
    service.serve = serve
    command = types.ModuleType('nova.cmd.conductor')

    def main():
        calls.append(('argv', list(sys.argv)))
        service.serve('the-server', workers=4)
        return 0
    command.main = main
    nova = types.ModuleType('nova')
    nova.service = service
    monkeypatch.setitem(sys.modules, 'nova', nova)
    monkeypatch.setitem(sys.modules, 'nova.service', service)
    monkeypatch.setitem(sys.modules, 'nova.cmd.conductor', command)
    monkeypatch.setattr(sys, 'argv', ['launcher'])


def test_the_service_runs_in_one_process(monkeypatch):
    calls = []
    _fake_nova(monkeypatch, calls)
    assert nofork.main(['launcher', 'nova-conductor', '--config-file',
                        'nova.conf']) == 0
    assert calls == [
        ('argv', ['nova-conductor', '--config-file', 'nova.conf']),
        ('serve', 'the-server', 1, True)]


def test_only_nova_conductor_and_scheduler_are_launched(capsys):
    assert nofork.main(['launcher', 'nova-api']) == 2
    assert 'nova-conductor' in capsys.readouterr().err


def test_conductor_and_scheduler_are_started_through_the_launcher(tmp_path):
    layout = layout_mod.Layout(tmp_path, 27300)
    for name in layout_mod.RPC_SERVICES:
        service = services.rpc_service(layout, 'devcloud-a', name)
        assert service.argv[:4] == [sys.executable, '-m',
                                    'overcloud_devcloud.nofork', name]
        assert service.binary == name
