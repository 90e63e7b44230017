"""The plugin as python-openstackclient loads it, in-process (no cloud)."""

import io
import sys

from openstackclient import shell


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = shell.OpenStackShell().run(argv)
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


def test_openstack_help_lists_overcloud_migrate():
    code, out, _err = run(['--help'])
    assert code in (0, None)  # --help exits through argparse
    assert 'overcloud migrate' in out
    assert '--os-overcloud-migrate-api-version' in out


def test_help_overcloud_migrate_documents_the_options():
    code, out, _err = run(['help', 'overcloud', 'migrate'])
    assert code == 0
    for option in ('--dest-cloud', '--dry-run', '--plan-file', '--from-plan',
                   '--network-map', '--flavor-map', '--floating-ip-mode'):
        assert option in out
    assert 'default: keep' in out


def test_help_overcloud_migrate_documents_pin_hosts():
    code, out, _err = run(['help', 'overcloud', 'migrate'])
    assert code == 0
    assert '--pin-hosts' in out and '--no-pin-hosts' in out
    assert 'microversion 2.74' in out
    assert 'admin' in out
