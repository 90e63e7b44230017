"""Our command names must never clash with python-tripleoclient's.

cliff only warns on duplicate names, so a clash would silently hide one of
the two commands. The list below is tripleoclient's ``overcloud`` commands
(its setup.cfg), frozen.
"""

import configparser
import pathlib

TRIPLEO_OVERCLOUD_COMMANDS = frozenset('''
overcloud admin authorize
overcloud backup
overcloud cell export
overcloud config download
overcloud container image build
overcloud container image prepare
overcloud container image tag discover
overcloud container image upload
overcloud credentials
overcloud delete
overcloud deploy
overcloud export
overcloud export ceph
overcloud external-update run
overcloud external-upgrade run
overcloud generate fencing
overcloud image build
overcloud image upload
overcloud netenv validate
overcloud network extract
overcloud network provision
overcloud node bios configure
overcloud node bios reset
overcloud node clean
overcloud node configure
overcloud node delete
overcloud node discover
overcloud node extract provisioned
overcloud node import
overcloud node introspect
overcloud node provide
overcloud node provision
overcloud node unprovision
overcloud parameters set
overcloud plan create
overcloud plan delete
overcloud plan deploy
overcloud plan export
overcloud plan list
overcloud profiles list
overcloud profiles match
overcloud raid create
overcloud role list
overcloud role show
overcloud roles generate
overcloud roles list
overcloud roles show
overcloud status
overcloud support report collect
overcloud update converge
overcloud update prepare
overcloud update run
overcloud upgrade converge
overcloud upgrade prepare
overcloud upgrade run
'''.strip().splitlines())


def our_commands():
    parser = configparser.ConfigParser()
    parser.read(pathlib.Path(__file__).parents[2] / 'setup.cfg')
    group = parser['entry_points']['openstack.overcloud_migrate.v1']
    names = [line.split('=')[0].strip() for line in group.splitlines()
             if line.strip()]
    return {name.replace('_', ' ') for name in names}


def test_we_register_the_migrate_command():
    assert 'overcloud migrate' in our_commands()


def test_no_name_equals_a_tripleoclient_command():
    assert not our_commands() & TRIPLEO_OVERCLOUD_COMMANDS


def test_no_name_is_a_prefix_of_theirs_or_theirs_of_ours():
    # cliff picks the longest match: a prefix would swallow the other's
    # arguments.
    for ours in our_commands():
        for theirs in TRIPLEO_OVERCLOUD_COMMANDS:
            assert not theirs.startswith(ours + ' '), (ours, theirs)
            assert not ours.startswith(theirs + ' '), (ours, theirs)
