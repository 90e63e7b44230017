"""The ``ssh`` driver against a real, throwaway sshd on a loopback port.

The sshd is started for this module only, as root, with its own host key,
configuration and authorized_keys in a temporary directory; the system's
sshd and /etc/ssh are never touched. Skipped where that cannot run.
"""

import os
import shutil
import socket
import subprocess
import time

import pytest

from overcloud_migrate.transports import base
from overcloud_migrate.transports import ssh

SSHD = '/usr/sbin/sshd'


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _keygen(path):
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C',
                    'overcloud-migrate-test', '-f', str(path)], check=True)
    return path.with_suffix('.pub').read_text().strip()


@pytest.fixture(scope='module')
def sshd(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip('a throwaway sshd needs root')
    if not (os.access(SSHD, os.X_OK) and shutil.which('ssh')
            and shutil.which('ssh-keygen')):
        pytest.skip('openssh-server/openssh-client are not installed')
    # sshd's compiled-in privilege separation directory.
    os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
    home = tmp_path_factory.mktemp('sshd')
    host_pub = _keygen(home / 'host_key')
    client_pub = _keygen(home / 'client_key')
    (home / 'authorized_keys').write_text(client_pub + '\n')
    port = _free_port()
    (home / 'known_hosts').write_text('[127.0.0.1]:%d %s\n' % (
        port, ' '.join(host_pub.split()[:2])))
    config = home / 'sshd_config'
    config.write_text('\n'.join([
        'Port %d' % port,
        'ListenAddress 127.0.0.1',
        'HostKey %s' % (home / 'host_key'),
        'PidFile %s' % (home / 'sshd.pid'),
        'AuthorizedKeysFile %s' % (home / 'authorized_keys'),
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'StrictModes no',
        'UsePAM no',
        'LogLevel ERROR',
        '']))
    log = open(home / 'sshd.log', 'wb')
    proc = subprocess.Popen([SSHD, '-D', '-e', '-f', str(config)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), 1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.skip('the throwaway sshd did not start: %s'
                            % (home / 'sshd.log').read_text()[-500:])
            time.sleep(0.1)
    options = {
        'host': 'root@127.0.0.1', 'port': port,
        'identity_file': str(home / 'client_key'),
        'ssh_options': ['UserKnownHostsFile=%s' % (home / 'known_hosts'),
                        'GlobalKnownHostsFile=/dev/null',
                        'StrictHostKeyChecking=yes'],
    }
    yield options
    proc.terminate()
    proc.wait(10)
    log.close()


def driver(sshd, directory, **overrides):
    return ssh.SshTransport(**dict(sshd, directory=str(directory),
                                   **overrides))


def test_transfer_is_byte_identical_and_lands_remotely(
        sshd, tmp_path, image, image_server):
    seen = []
    result = driver(sshd, tmp_path).transfer(
        image.source, image.dest, lambda d, t: seen.append((d, t)))
    assert image_server.uploads['dst-0001'] == image.data
    assert result.bytes == len(image.data)
    assert result.sha512 == image.sha512
    # as in the seed, the image stays in the remote directory
    assert os.listdir(tmp_path) == ['src-0001.img']
    assert (tmp_path / 'src-0001.img').read_bytes() == image.data
    assert seen.count((len(image.data), len(image.data))) == 2


def test_keep_false_removes_the_remote_copy(
        sshd, tmp_path, image, image_server):
    driver(sshd, tmp_path, keep=False).transfer(image.source, image.dest,
                                                None)
    assert image_server.uploads['dst-0001'] == image.data
    assert os.listdir(tmp_path) == []


def test_remote_words_are_quoted(sshd, tmp_path, image, image_server):
    odd = tmp_path / "it's a dir; $(touch PWNED) `touch PWNED2`"
    odd.mkdir()
    here = os.getcwd()
    try:
        os.chdir(tmp_path)
        drv = driver(sshd, odd)
        drv.check()
        drv.transfer(image.source, image.dest, None)
    finally:
        os.chdir(here)
    assert (odd / 'src-0001.img').read_bytes() == image.data
    assert image_server.uploads['dst-0001'] == image.data
    # nothing ran: not in the remote home, not here
    for where in (tmp_path, odd, os.path.expanduser('~')):
        assert not {'PWNED', 'PWNED2'} & set(os.listdir(where))


def test_corruption_on_the_way_cuts_the_upload_short(
        sshd, tmp_path, image, image_server, monkeypatch):
    monkeypatch.setenv(base.FAULT_ENV, 'transfer:corrupt')
    with pytest.raises(base.HashMismatch, match='127.0.0.1'):
        driver(sshd, tmp_path).transfer(image.source, image.dest, None)
    assert 'dst-0001' not in image_server.uploads
    assert image_server.wait_for_aborted_puts(1) == 1
    assert os.listdir(tmp_path) == []


def test_source_error_leaves_no_remote_file(
        sshd, tmp_path, image, image_server):
    image_server.cut_after = 1024 * 1024 + 10
    with pytest.raises(base.TransportError, match='src-0001'):
        driver(sshd, tmp_path).transfer(image.source, image.dest, None)
    assert os.listdir(tmp_path) == []
    assert 'dst-0001' not in image_server.uploads


def test_check_passes(sshd, tmp_path):
    driver(sshd, tmp_path).check()
    assert os.listdir(tmp_path) == []


def test_check_unreachable_host(sshd, tmp_path):
    drv = driver(sshd, tmp_path, port=_free_port(), connect_timeout=5)
    with pytest.raises(base.PreflightError,
                       match='root@127.0.0.1.*Connection refused'):
        drv.check()


def test_check_refused_key(sshd, tmp_path):
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f',
                    str(tmp_path / 'other_key')], check=True)
    drv = driver(sshd, tmp_path, identity_file=str(tmp_path / 'other_key'))
    with pytest.raises(base.PreflightError,
                       match='root@127.0.0.1.*Permission denied'):
        drv.check()


def test_check_missing_directory(sshd, tmp_path):
    with pytest.raises(base.PreflightError,
                       match='%s does not exist on root@127.0.0.1'
                       % (tmp_path / 'nope')):
        driver(sshd, tmp_path / 'nope').check()


def test_check_unwritable_directory(sshd, unwritable_dir):
    with pytest.raises(base.PreflightError,
                       match='%s on root@127.0.0.1 is not writable'
                       % unwritable_dir):
        driver(sshd, unwritable_dir).check()


@pytest.mark.parametrize('overrides, message', [
    ({'host': None}, 'needs a host'),
    ({'host': '-oProxyCommand=x'}, 'not a valid user@host'),
    ({'directory': 'relative/dir'}, 'absolute remote directory'),
    ({'port': 'ssh'}, 'not a port number'),
    ({'ssh_options': ['-F/tmp/x']}, 'Key=Value'),
])
def test_check_rejects_bad_options_before_connecting(overrides, message):
    options = {'host': 'u@192.0.2.1', 'directory': '/srv/images'}
    options.update(overrides)
    with pytest.raises(base.PreflightError, match=message):
        ssh.SshTransport(**options).check()


def test_argv_is_a_list_and_quotes_only_the_remote_command():
    drv = ssh.SshTransport(host='u@h', directory='/d', port=2222,
                           identity_file='/k', ssh_options=['A=b'])
    assert drv.argv("cat > '/d/x'") == [
        'ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10',
        '-p', '2222', '-i', '/k', '-o', 'IdentitiesOnly=yes', '-o', 'A=b',
        '--', 'u@h', "cat > '/d/x'"]


def test_missing_ssh_client_is_a_preflight_error(tmp_path):
    drv = ssh.SshTransport(host='u@h', directory='/d',
                           ssh_binary=str(tmp_path / 'no-ssh'))
    with pytest.raises(base.PreflightError, match='not installed'):
        drv.check()


def test_handoff_writes_the_item_on_the_remote_host(
        sshd, tmp_path, image, image_server):
    drv = driver(sshd, tmp_path)
    count, sha512 = drv.handoff_image(image.source, 'm1-v1', 'image.raw',
                                      None)
    assert (count, sha512) == (len(image.data), image.sha512)
    drv.handoff_file('m1-v1', 'plan.json', b'{"plan": 1}')
    drv.handoff_file('m1-v1', 'COMPLETE', b'{}')
    assert sorted(os.listdir(tmp_path / 'm1-v1')) == [
        'COMPLETE', 'image.raw', 'plan.json']
    assert (tmp_path / 'm1-v1' / 'image.raw').read_bytes() == image.data
    assert (tmp_path / 'm1-v1' / 'plan.json').read_bytes() == b'{"plan": 1}'
    assert os.listdir(tmp_path) == ['m1-v1']     # no temporary left
