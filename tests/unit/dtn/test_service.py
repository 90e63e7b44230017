import os
import signal
import subprocess
import sys

import pytest

from overcloud_migrate.dtn import service


def _main(capsys, *argv):
    code = service.main(list(argv))
    return code, capsys.readouterr().err


def test_an_export_is_required(capsys, tmp_path):
    code, err = _main(capsys, '--insecure-no-auth', '--database-url',
                      'sqlite:///%s/db' % tmp_path)
    assert code == 2 and '--export' in err


def test_it_never_starts_open_by_default(capsys, tmp_path):
    code, err = _main(capsys, '--export', 'data=%s' % tmp_path,
                      '--database-url', 'sqlite:///%s/db' % tmp_path)
    assert code == 2
    assert '--token-file, --keystone-config or --insecure-no-auth' in err


def test_data_port_needs_a_token(capsys, tmp_path):
    token = tmp_path / 'token'
    token.write_text('x' * 32)
    code, err = _main(capsys, '--export', 'data=%s' % tmp_path,
                      '--token-file', str(token), '--data-port', '0',
                      '--database-url', 'sqlite:///%s/db' % tmp_path)
    assert code == 2 and '--data-token-file' in err


@pytest.mark.parametrize('spec', ['data', '=/x', 'data=', 'data=relative',
                                  'data=/', 'data=/x/../y'])
def test_bad_exports_are_refused(spec):
    with pytest.raises(SystemExit):
        service.build_parser().parse_args(['--export', spec])


def test_the_console_script_serves_and_stops_on_sigterm(tmp_path):
    token = tmp_path / 'token'
    token.write_text('y' * 32)
    script = os.path.join(os.path.dirname(sys.executable),
                          'overcloud-dtn-api')
    proc = subprocess.Popen(
        [script, '--host', '127.0.0.1', '--port', '0', '--export',
         'data=%s' % tmp_path, '--token-file', str(token), '--database-url',
         'sqlite:///%s/db' % tmp_path, '--gridftp-url-base',
         'ftp://127.0.0.1:2811'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith('overcloud-dtn-api: serving http://127.0.0.1:')
        assert 'auth: token' in line
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert 'y' * 32 not in proc.stderr.read()  # no secret in the log


def test_the_dtn_package_needs_no_openstack_client():
    """DTN hosts have no OpenStack client: importing the service, the
    client and every module of the package must not pull one in."""
    code = ('import sys, pkgutil, importlib, overcloud_migrate.dtn as d\n'
            'import overcloud_migrate.dtn.movers as m\n'
            'for pkg in (d, m):\n'
            '    for info in pkgutil.iter_modules(pkg.__path__):\n'
            '        importlib.import_module(pkg.__name__ + "." + info.name)\n'
            'bad = [n for n in sys.modules if n.split(".")[0] in (\n'
            '    "openstack", "keystonemiddleware", "osc_lib",\n'
            '    "openstackclient")]\n'
            'print(",".join(sorted(bad)))\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=60, check=True)
    assert proc.stdout.strip() == ''
