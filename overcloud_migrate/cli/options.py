"""Option helpers shared by the commands: the destination cloud options,
the journal option and argparse types, defined once so that every command
spells them the same."""

import argparse

from overcloud_migrate import clouds
from overcloud_migrate import journal


def add_dest_cloud_options(parser):
    group = parser.add_argument_group('destination cloud')
    group.add_argument(
        '--dest-cloud', metavar='<cloud>',
        help='Destination cloud: an entry of clouds.yaml (Env: %s)'
             % clouds.DEST_CLOUD_ENV)
    group.add_argument(
        '--dest-region', metavar='<region>',
        help='Region of the destination cloud (default: the entry\'s region)')
    group.add_argument(
        '--dest-project', metavar='<project>',
        help='Project at the destination, by name or ID (default: the '
             'entry\'s project)')
    return parser


def add_journal_option(parser):
    parser.add_argument(
        '--journal-url', metavar='<url>',
        help='Database URL of the migration journal (Env: %s; default: '
             'SQLite in ~/.local/state/overcloud-migrate/)'
             % journal.JOURNAL_URL_ENV)
    return parser


def key_value(text):
    """argparse type for SRC=DST pairs."""
    source, sep, dest = text.partition('=')
    if not sep or not source or not dest:
        raise argparse.ArgumentTypeError(
            "expected SOURCE=DESTINATION, got '%s'" % text)
    return source, dest


def at_least(least):
    """argparse type: a whole number of ``least`` or more."""
    def whole(text):
        return _whole(text, least)
    whole.__name__ = 'whole number'
    return whole


def positive_int(text):
    """argparse type: a whole number of 1 or more."""
    return _whole(text, 1)


def non_negative_int(text):
    """argparse type: a whole number of 0 or more."""
    return _whole(text, 0)


def _whole(text, least):
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(
            'expected a whole number of %d or more, got %r' % (least, text))
    return value
