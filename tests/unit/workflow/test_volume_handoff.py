"""The volume steps of a server's flow under ``migrate --handoff`` (at the
source) and in the Receiver (at the destination): which tasks, in which
order, and what each hands the next."""

import types

from overcloud_migrate.workflow import engine
from tests.unit.workflow import test_volumes

_plan = test_volumes._plan
_ctx = test_volumes._ctx


def _handoff_ctx(boot_source):
    ctx = _ctx(_plan(boot_source))
    ctx.handoff = True
    return ctx


def _receiver_ctx(boot_source):
    ctx = _ctx(_plan(boot_source))
    ctx.item = types.SimpleNamespace(name='m-s1')
    return ctx


def test_handoff_of_a_volume_backed_server_writes_each_volume_then_the_item():
    flow = engine.server_flow(_handoff_ctx('volume'))
    names = [t.name for t in flow]

    assert 'snapshot:s1' not in names
    assert names[0] == 'stop:s1'
    steps = ('volume-snapshot', 'volume-clone', 'volume-upload',
             'volume-handoff')
    assert names[1:-2] == ['%s:s1:%s' % (p, v) for v in ('root', 'data', 'log')
                           for p in steps]
    # the marker after every volume's file; the temporaries go last
    assert names[-2:] == ['handoff:s1', 'volume-cleanup:s1']
    by_name = {t.name: t for t in flow}
    assert by_name['handoff:s1'].requires == {
        'volume_item:root', 'volume_item:data', 'volume_item:log'}
    assert by_name['volume-handoff:s1:log'].requires == {'volume_image:log'}
    assert by_name['volume-handoff:s1:log'].provides == {'volume_item:log'}


def test_handoff_of_an_image_booted_server_snapshots_it_too():
    flow = engine.server_flow(_handoff_ctx('image'))
    names = [t.name for t in flow]

    assert names[:2] == ['stop:s1', 'snapshot:s1']
    handoff = next(t for t in flow if t.name == 'handoff:s1')
    assert handoff.requires == {'snapshot_id', 'volume_item:data',
                                'volume_item:log'}


def test_a_server_without_volumes_is_handed_off_as_before():
    plan = test_volumes._plan('image')
    plan.servers[0].volumes = []
    ctx = _ctx(plan)
    ctx.handoff = True
    assert [t.name for t in engine.server_flow(ctx)] == [
        'stop:s1', 'snapshot:s1', 'handoff:s1']
    ctx.handoff, ctx.item = False, types.SimpleNamespace(name='m-s1')
    assert [t.name for t in engine.server_flow(ctx)] == [
        'upload:s1', 'boot:s1', 'verify:s1']


def test_the_receiver_makes_each_volume_from_its_file_then_boots():
    flow = engine.server_flow(_receiver_ctx('volume'))
    names = [t.name for t in flow]

    assert 'upload:s1' not in names
    assert names[:6] == ['%s:s1:%s' % (p, v) for v in ('root', 'data', 'log')
                         for p in ('volume-receive', 'volume-create')]
    assert names[6:] == ['boot:s1', 'verify:s1', 'verify-volumes:s1',
                         'volume-cleanup:s1']
    by_name = {t.name: t for t in flow}
    assert by_name['volume-receive:s1:data'].requires == set()
    assert by_name['volume-receive:s1:data'].provides == {
        'volume_dest_image:data'}
    assert by_name['volume-create:s1:data'].requires == {
        'volume_dest_image:data'}
    assert set(by_name['boot:s1'].requires) == {
        'volume_dest:root', 'volume_dest:data', 'volume_dest:log'}


def test_the_receiver_uploads_the_image_of_an_image_booted_server_first():
    names = [t.name for t in engine.server_flow(_receiver_ctx('image'))]
    assert names[0] == 'upload:s1'
    assert names[1] == 'volume-receive:s1:data'
