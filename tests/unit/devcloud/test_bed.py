"""The bed's refusals and failure reports, with real processes and sockets."""

import json
import os
import pathlib
import socket
import sys

import pytest

from overcloud_devcloud import bed as bed_mod
from overcloud_devcloud import cli
from overcloud_devcloud import layout as layout_mod
from overcloud_devcloud import services


@pytest.fixture
def bed(tmp_path, monkeypatch):
    monkeypatch.setenv(layout_mod.HOME_ENV, str(tmp_path / 'bed'))
    monkeypatch.setenv(layout_mod.BASE_PORT_ENV, str(_free_base()))
    return bed_mod.Bed(progress=lambda message: None)


def _free_base():
    """A base port whose whole block is free right now."""
    for base in range(42000, 60000, 100):
        ports = layout_mod.Ports(base).all()
        if not any(_taken(p) for p in ports):
            return base
    raise RuntimeError('no free port block')


def _taken(port):
    with socket.socket() as sock:
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return True
    return False


def test_port_taken_is_named_with_its_holder_and_nothing_starts(bed):
    port = bed.layout.ports.api('devcloud-b', 'glance')
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(('127.0.0.1', port))
        sock.listen()
        with pytest.raises(bed_mod.BedError) as caught:
            bed.up()
    message = str(caught.value)
    assert 'port %d (devcloud-b/glance) is already in use' % port in message
    # the holder is this very process, named as /proc names it (a process
    # title set by setproctitle, as pytest-xdist's workers do, included)
    shown = pathlib.Path('/proc/self/cmdline').read_bytes().split(b'\0')[0]
    assert ' by %s (pid %d)' % (os.path.basename(shown.decode()),
                                os.getpid()) in message
    assert not list(bed.layout.run_dir.glob('*.pid')) \
        if bed.layout.run_dir.exists() else True
    assert all(row['pid'] is None for row in bed.status())


def test_missing_debian_packages_give_the_install_command(bed, monkeypatch):
    monkeypatch.setattr(services, 'find_binary', lambda name: None)
    with pytest.raises(bed_mod.BedError) as caught:
        bed.up()
    assert ('apt-get install -y mariadb-server qemu-utils rabbitmq-server'
            in str(caught.value))


def test_a_service_that_dies_while_starting_reports_its_log(bed):
    dying = services.Service(
        'devcloud-a/broken', [sys.executable, '-c',
                              'print("cannot open the flux capacitor");'
                              'raise SystemExit(3)'],
        env=None, port=bed.layout.ports.api('devcloud-a', 'glance'),
        health='tcp')
    started = []
    with pytest.raises(bed_mod.BedError) as caught:
        bed._start_and_wait([dying], started)
    assert started == [dying]
    message = str(caught.value)
    assert 'devcloud-a/broken died while starting' in message
    assert str(bed.layout.logfile('devcloud-a-broken')) in message
    assert 'cannot open the flux capacitor' in message


def test_down_on_a_stopped_bed_says_so_and_succeeds(bed, capsys):
    assert bed.down() == []
    assert cli.main(['down']) == 0
    assert 'devcloud is not running' in capsys.readouterr().err


def test_status_of_a_stopped_bed_lists_every_service(bed, capsys):
    assert cli.main(['status', '-f', 'json']) == 0
    rows = json.loads(capsys.readouterr().out)
    computes = sum(len(layout_mod.compute_hosts(c)) for c in layout_mod.CLOUDS)
    assert len(rows) == 2 + 11 * len(layout_mod.CLOUDS) + computes
    assert {r['Service'] for r in rows} >= {
        'mariadb', 'devcloud-b/neutron', 'devcloud-a/nova-compute',
        'devcloud-b/nova-compute', 'devcloud-b/nova-compute-2',
        'devcloud-a/cinder-api', 'devcloud-b/cinder-volume',
        'devcloud-b/cinder-backup', 'devcloud-a/cinder-scheduler'}
    data = {r['Service']: r['Data'] for r in rows}
    # A DTN finds each cloud's volume share here.
    assert data['devcloud-a/cinder-volume'] == str(
        bed.layout.volume_share('devcloud-a'))
    assert data['devcloud-b/cinder-backup'] == str(
        bed.layout.backup_dir('devcloud-b'))
    assert not any(r['Running'] or r['Answers'] for r in rows)
    assert all(r['Log'].startswith(str(bed.layout.log_dir)) for r in rows)


def test_env_prints_a_quoted_export(bed, capsys):
    assert cli.main(['env']) == 0
    out = capsys.readouterr().out
    assert out.startswith('export OS_CLIENT_CONFIG_FILE=')
    assert str(bed.layout.clouds_yaml) in out
    assert 'export OVERCLOUD_DEVCLOUD_VOLUMES_A=%s\n' % \
        bed.layout.volume_share('devcloud-a') in out
    assert 'export OVERCLOUD_DEVCLOUD_BACKUPS_B=%s\n' % \
        bed.layout.backup_dir('devcloud-b') in out


def test_purge_removes_only_what_devcloud_wrote(bed):
    home = bed.layout.home
    (home / 'log').mkdir(parents=True)
    (home / 'secrets.json').write_text('{}')
    (home / 'operator-notes.txt').write_text('keep me')
    bed.down(purge=True)
    assert (home / 'operator-notes.txt').read_text() == 'keep me'
    assert not (home / 'log').exists()
    assert not (home / 'secrets.json').exists()
