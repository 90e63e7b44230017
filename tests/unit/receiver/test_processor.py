"""The Receiver's processor on items that must not be acted on.

Real items in a temporary directory and a real journal; the destination
cloud is never reached: ``connect`` fails the test if it is called.
"""

import json
import pathlib

import pytest

from overcloud_migrate import clouds
from overcloud_migrate import handoff
from overcloud_migrate import journal as journal_mod
from overcloud_migrate.receiver import processor as processor_mod
from tests.unit import test_handoff


def never_connect():
    raise AssertionError('the destination cloud was contacted')


@pytest.fixture
def processor(tmp_path):
    root = tmp_path / 'handoff'
    root.mkdir()
    journal = journal_mod.Journal('sqlite:///%s' % (tmp_path / 'j.sqlite'))
    return processor_mod.Processor(
        str(root), never_connect,
        clouds.CloudIdentity('b', 'http://b', 'p', 'r'), journal)


def test_an_item_without_a_marker_is_left_alone(processor):
    root = pathlib.Path(processor.root)
    test_handoff.write_item(root, marker=False)
    assert processor.process('m1-v1') is None
    assert handoff.list_items(str(root)) == ['m1-v1']
    assert handoff.read_status(str(root), 'm1-v1') is None


@pytest.mark.parametrize('damage,reason', [
    (lambda i: (i / 'plan.json').write_bytes(b'{"version": 1'),
     'plan.json has 13 bytes'),
    (lambda i: (i / 'image.raw').write_bytes(b'half'),
     'image.raw has 4 bytes'),
])
def test_a_damaged_item_fails_with_its_reason_and_no_cloud_call(
        processor, damage, reason):
    root = pathlib.Path(processor.root)
    damage(test_handoff.write_item(root))
    assert processor.process('m1-v1') == 'failed'
    assert handoff.list_items(str(root)) == []
    assert handoff.list_items(str(root), handoff.FAILED) == ['m1-v1']
    status = json.loads((root / 'failed' / 'm1-v1' / 'status.json')
                        .read_text())
    assert status['state'] == 'failed'
    assert reason in status['reason']
    # what the marker says is kept for the source side
    assert status['server_id'] == 'v1' and status['migration_id'] == 'm1'
    assert processor.journal.migrations() == []


def test_a_volume_item_with_a_truncated_volume_fails_with_no_cloud_call(
        processor):
    root = pathlib.Path(processor.root)
    item = test_handoff.write_volume_item(root)
    (item / 'volume-data.qcow2').write_bytes(b'cut')
    assert processor.process('m1-v1') == 'failed'
    status = json.loads((root / 'failed' / 'm1-v1' / 'status.json')
                        .read_text())
    assert 'volume-data.qcow2 has 3 bytes' in status['reason']
    assert processor.journal.migrations() == []
