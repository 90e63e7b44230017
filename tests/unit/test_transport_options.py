"""The transport options of `overcloud migrate` (common/transport_options)."""

import argparse

from osc_lib import exceptions
import pytest

from overcloud_migrate.common import transport_options

DTN = ['--transport', 'dtn', '--dtn-source', 'http://dtn-a:22641',
       '--dtn-dest', 'http://dtn-b:22641', '--dtn-source-dir', '/mnt/a',
       '--dtn-dest-dir', '/mnt/b']


def parse(*argv):
    parser = argparse.ArgumentParser()
    transport_options.add_transport_options(parser)
    return parser.parse_args(list(argv))


def test_every_driver_option_carries_its_prefix():
    for opt in transport_options.OPTIONS:
        assert opt.flag.startswith('--%s-' % opt.transport)
        assert opt.help[:1].isupper()
    assert transport_options.option_names('glance') == []


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
                       match='--sharedfs-dir, --dtn-mover go only with '
                             '--transport dtn or sharedfs, not --transport '
                             'glance'):
        transport_options.validate(args)


def test_streams_must_be_positive():
    with pytest.raises(SystemExit):
        parse(*DTN, '--dtn-streams', '0')
