"""The transport options of `overcloud migrate`: declared by each driver on
its class, collected by cli/transport_options (drivers in the order
stevedore lists them, by name)."""

import argparse

from osc_lib import exceptions
import pytest

from overcloud_migrate.cli import transport_options
from overcloud_migrate.transports import base as transports_base

DTN = ['--transport', 'dtn', '--dtn-source', 'http://dtn-a:22641',
       '--dtn-dest', 'http://dtn-b:22641', '--dtn-source-dir', '/mnt/a',
       '--dtn-dest-dir', '/mnt/b']


def parse(*argv):
    parser = argparse.ArgumentParser()
    transport_options.add_transport_options(parser)
    return parser.parse_args(list(argv))


def test_every_driver_option_carries_its_prefix():
    declared = transport_options.declared()
    assert {driver for driver, _opt in declared} == {'dtn', 'sharedfs',
                                                     'ssh'}
    for driver, opt in declared:
        assert opt.option(driver).startswith('--%s-' % driver)
        assert opt.help[:1].isupper()
    assert transport_options.option_names('glance') == []
    assert transport_options.option_names('ssh') == [
        '--ssh-host', '--ssh-dir', '--ssh-key', '--ssh-port']


def test_dtn_options_become_driver_keywords_without_tokens(tmp_path):
    token = tmp_path / 'token'
    token.write_text('secret-token-value-1234\n')
    args = parse(*DTN, '--dtn-mover', 'gridftp', '--dtn-streams', '8',
                 '--dtn-source-token-file', str(token), '--dtn-keep')
    transport_options.validate(args)
    options = transport_options.driver_options(args, timeout=900)
    assert options == {
        'source_endpoint': 'http://dtn-a:22641',
        'dest_endpoint': 'http://dtn-b:22641', 'source_dir': '/mnt/a',
        'dest_dir': '/mnt/b', 'source_token_file': str(token),
        'mover': 'gridftp', 'streams': 8, 'keep': True,
        'transfer_timeout': 900}
    assert 'secret-token-value' not in repr(options)


def test_missing_dtn_options_are_named_before_any_call():
    args = parse('--transport', 'dtn', '--dtn-source', 'http://a:22641')
    with pytest.raises(exceptions.CommandError,
                       match='The dtn transport needs --dtn-dest, '
                             '--dtn-source-dir, --dtn-dest-dir.'):
        transport_options.validate(args)


def test_options_of_another_transport_are_refused():
    args = parse('--dtn-mover', 'builtin', '--sharedfs-dir', '/x')
    with pytest.raises(exceptions.CommandError,
                       match='--dtn-mover, --sharedfs-dir go only with '
                             '--transport dtn or sharedfs, not --transport '
                             'glance'):
        transport_options.validate(args)


def test_streams_must_be_positive():
    with pytest.raises(SystemExit):
        parse(*DTN, '--dtn-streams', '0')


class _Thirdparty:
    """A driver from another package, with its own options."""
    name = 'acme'
    capabilities = frozenset({'staging', 'handoff'})
    options = (transports_base.Opt('bucket', metavar='<name>', required=True,
                                   help='The bucket'),
               transports_base.Opt('region', help='The region'))
    handoff_option = 'bucket'
    timeout_option = 'deadline'


@pytest.fixture
def with_thirdparty(monkeypatch):
    found = dict(transports_base.driver_classes(), acme=_Thirdparty)
    monkeypatch.setattr(transports_base, 'driver_classes', lambda: found)


def test_a_third_party_driver_brings_its_options(with_thirdparty):
    args = parse('--transport', 'acme', '--acme-bucket', 'b1')
    transport_options.validate(args)
    assert transport_options.option_names('acme') == ['--acme-bucket',
                                                      '--acme-region']
    assert transport_options.driver_options(args, timeout=60) == {
        'bucket': 'b1', 'deadline': 60}
    args = parse('--transport', 'acme', '--acme-region', 'r')
    with pytest.raises(exceptions.CommandError,
                       match='The acme transport needs --acme-bucket.'):
        transport_options.validate(args)


def test_a_handoff_directory_fills_the_drivers_handoff_option(
        with_thirdparty):
    args = parse('--transport', 'acme')
    args.handoff = '/srv/h'
    transport_options.validate(args)
    assert transport_options.driver_options(args, handoff='/srv/h') == {
        'bucket': '/srv/h'}


def test_an_unknown_transport_is_refused_with_the_valid_names():
    args = parse('--transport', 'carrier-pigeon')
    with pytest.raises(exceptions.CommandError,
                       match="Unknown transport 'carrier-pigeon'; valid "
                             "transports: dtn, glance, sharedfs, ssh."):
        transport_options.validate(args)


def test_every_driver_declares_known_capabilities():
    for name, cls in transports_base.driver_classes().items():
        assert cls.capabilities <= set(transports_base.CAPABILITIES), name
        if cls.handoff_option is not None:
            assert 'handoff' in cls.capabilities
            assert cls.handoff_option in [o.name for o in cls.options]
