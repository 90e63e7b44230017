"""The preloader: real processes, with a stand-in Cinder on PYTHONPATH."""

import json
import os
import pathlib
import time

import pytest

import overcloud_devcloud
from overcloud_devcloud import layout as layout_mod
from overcloud_devcloud import preload
from overcloud_devcloud import services

COMMAND = '''
import json, os, sys
IMPORTED_BY = os.getpid()

def main():
    with open(os.environ['PRELOAD_TEST_OUT'] + '.%d' % os.getpid(), 'w') as f:
        json.dump({'argv': sys.argv, 'imported_by': IMPORTED_BY,
                   'sid': os.getsid(0), 'pid': os.getpid()}, f)
    print('service output')
    return 0
'''


def _fake_cinder(root, broken=None):
    """A 'cinder' package whose three commands record how they ran."""
    package = root / 'cinder'
    (package / 'cmd').mkdir(parents=True)
    (package / '__init__.py').write_text('')
    (package / 'cmd' / '__init__.py').write_text('')
    for name in ('scheduler', 'volume', 'backup'):
        text = COMMAND
        if name == broken:
            text = 'raise ImportError("no flux capacitor")\n'
        (package / 'cmd' / ('%s.py' % name)).write_text(text)


def _env(tmp_path):
    source = pathlib.Path(overcloud_devcloud.__file__).parent.parent
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path / 'fake'), str(source)]),
        PRELOAD_TEST_OUT=str(tmp_path / 'out'))


def _wait_for(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, '%s never appeared' % path
        time.sleep(0.05)
    time.sleep(0.1)  # written, now closed
    return json.loads(path.read_text())


def test_services_are_forked_from_one_import(tmp_path):
    _fake_cinder(tmp_path / 'fake')
    loader = preload.Preloader('cinder', tmp_path / 'preload.log',
                               env=_env(tmp_path))
    try:
        pids = {}
        for target in ('cinder-volume', 'cinder-backup'):
            pids[target] = loader.spawn(
                'devcloud-a/' + target, target, ['--config-file', 'c.conf'],
                tmp_path / ('%s.pid' % target),
                tmp_path / ('%s.log' % target))
    finally:
        loader.close()
    runs = {target: _wait_for(tmp_path / ('out.%d' % pid))
            for target, pid in pids.items()}
    assert runs['cinder-volume']['argv'] == ['cinder-volume', '--config-file',
                                             'c.conf']
    assert runs['cinder-backup']['argv'][0] == 'cinder-backup'
    # Imported once, by the preloader, not by the services.
    importer = runs['cinder-volume']['imported_by']
    assert importer == runs['cinder-backup']['imported_by']
    assert importer not in pids.values()
    for target, pid in pids.items():
        assert runs[target]['pid'] == pid
        assert runs[target]['sid'] == pid  # a session of its own
        record = json.loads((tmp_path / ('%s.pid' % target)).read_text())
        assert record['pid'] == pid
        log = (tmp_path / ('%s.log' % target)).read_text()
        assert 'starting devcloud-a/%s (preloaded)' % target in log
        assert 'service output' in log


def _refused(tmp_path, target, broken=None):
    """The PreloadError of asking a (fake) cinder preloader for ``target``;
    the request's pidfile path beside it."""
    _fake_cinder(tmp_path / 'fake', broken=broken)
    loader = preload.Preloader('cinder', tmp_path / 'preload.log',
                               env=_env(tmp_path))
    pidfile = tmp_path / 'service.pid'
    try:
        with pytest.raises(preload.PreloadError) as caught:
            loader.spawn('devcloud-a/' + target, target, [], pidfile,
                         tmp_path / 'service.log')
    finally:
        loader.close()
    return str(caught.value), pidfile


def test_a_preloader_that_cannot_import_reports_its_log(tmp_path):
    message, pidfile = _refused(tmp_path, 'cinder-volume', broken='backup')
    assert 'the cinder preloader exited' in message
    assert 'no flux capacitor' in message
    assert not pidfile.exists()


def test_a_preloader_starts_only_its_own_family(tmp_path):
    message, _ = _refused(tmp_path, 'nova-compute')
    assert "cannot start 'nova-compute'" in message


def test_rpc_services_name_their_preloader_and_arguments(tmp_path):
    layout = layout_mod.Layout(tmp_path, 27300)
    found = {}
    for cloud in layout_mod.CLOUDS:
        for service in services.cloud_services(layout, cloud):
            if service.health != 'process':
                assert service.preload is None
                continue
            found[service.binary] = service.preload
            assert preload.TARGETS[service.binary] == service.preload
            # The same arguments as the standalone command line.
            assert service.argv[-len(service.args):] == service.args
    assert found == {'nova-conductor': 'nova', 'nova-scheduler': 'nova',
                     'nova-compute': 'nova', 'cinder-scheduler': 'cinder',
                     'cinder-volume': 'cinder', 'cinder-backup': 'cinder'}


def test_the_bed_can_start_them_on_their_own(tmp_path):
    """Bed(preloading=False) starts every service as its own command."""
    from overcloud_devcloud import bed as bed_mod
    bed = bed_mod.Bed(layout_mod.Layout(tmp_path, 27300),
                      preloading=False)
    bed._start_preloaders({s.name for s in bed.all_services()})
    assert bed._preloaders == {}
