"""The saved signatures of syncs (state files), on a real directory."""

import os

import pytest

from overcloud_migrate.dtn import delta
from overcloud_migrate.dtn.movers.blockpipe import delta_state


def _sig(size=10000, fill=7):
    sig = delta.Signature.of_zeros(size)
    sig.digests[0] = fill
    return sig


def test_save_and_load(tmp_path):
    sig = _sig()
    delta_state.save(str(tmp_path), 'vol-1', 'src', '/e/a.img', sig,
                     epoch='e1', round=3, peer={'host': 'h', 'port': 5})
    saved = delta_state.load(str(tmp_path), 'vol-1', 'src', '/e/a.img')
    assert saved.sig == sig
    assert (saved.epoch, saved.round) == ('e1', 3)
    assert saved.meta['peer'] == {'host': 'h', 'port': 5}
    # another role, file or key is another state
    assert delta_state.load(str(tmp_path), 'vol-1', 'dst', '/e/a.img') is None
    assert delta_state.load(str(tmp_path), 'vol-1', 'src', '/e/b.img') is None
    assert delta_state.load(str(tmp_path), 'vol-2', 'src', '/e/a.img') is None
    assert [name for name in os.listdir(tmp_path)
            if name.endswith('.tmp')] == []
    assert os.stat(tmp_path / os.listdir(tmp_path)[0]).st_mode & 0o077 == 0


def test_a_damaged_file_is_no_basis(tmp_path):
    delta_state.save(str(tmp_path), 'k', 'dst', '/e/a.img', _sig(), epoch='e',
                     round=1)
    (name,) = os.listdir(tmp_path)
    data = bytearray((tmp_path / name).read_bytes())
    data[-20] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(data))
    assert delta_state.load(str(tmp_path), 'k', 'dst', '/e/a.img') is None


def test_forget_takes_only_that_key(tmp_path):
    for key in ('a', 'a.b', 'a-b'):
        for role in delta_state.ROLES:
            delta_state.save(str(tmp_path), key, role, '/e/x', _sig(),
                             epoch='e', round=1)
    assert [m['key'] for m in delta_state.metas(str(tmp_path), 'a', 'src')] \
        == ['a']
    assert delta_state.forget(str(tmp_path), 'a', 'dst') == 1
    assert delta_state.forget(str(tmp_path), 'a') == 1
    assert delta_state.forget(str(tmp_path), 'a') == 0
    assert len(os.listdir(tmp_path)) == 4
    assert delta_state.forget(str(tmp_path / 'missing'), 'a') == 0


@pytest.mark.parametrize('key', ['', 'a/b', '..', 'a+b', 'x' * 129, None,
                                 'é'])
def test_bad_keys_are_refused(tmp_path, key):
    if key == '..':     # allowed characters: still one safe file name part
        delta_state.save(str(tmp_path), key, 'src', '/e/x', _sig(),
                         epoch='e', round=1)
        assert os.listdir(tmp_path)[0].startswith('..+src+')
        return
    with pytest.raises(delta_state.StateError):
        delta_state.save(str(tmp_path), key, 'src', '/e/x', _sig())
