"""The ``sharedfs`` driver against a real local HTTP image service."""

import hashlib
import os

import pytest

from overcloud_migrate.transports import base
from overcloud_migrate.transports import sharedfs


def driver(tmp_path, **options):
    return sharedfs.SharedfsTransport(directory=str(tmp_path), **options)


def gets(server):
    return [r for r in server.requests if r[0] == 'GET']


def test_stages_uploads_and_removes_the_staged_file(
        tmp_path, image, image_server):
    seen = []
    result = driver(tmp_path).transfer(
        image.source, image.dest, lambda done, total: seen.append(
            (done, total)))
    assert image_server.uploads['dst-0001'] == image.data
    assert result.bytes == len(image.data)
    assert result.sha512 == image.sha512
    assert image_server.served == len(image.data)
    assert gets(image_server) == [('GET', 'src-0001', None)]
    # staged file and partial file are gone; nothing else left behind
    assert os.listdir(tmp_path) == []
    # progress: the staging pass, then the upload pass, each to the end
    assert seen[-1] == (len(image.data), len(image.data))
    assert seen.count((len(image.data), len(image.data))) == 2


def test_keep_leaves_the_complete_file(tmp_path, image, image_server):
    driver(tmp_path, keep=True).transfer(image.source, image.dest, None)
    assert os.listdir(tmp_path) == ['src-0001.img']
    assert (tmp_path / 'src-0001.img').read_bytes() == image.data
    assert oct((tmp_path / 'src-0001.img').stat().st_mode & 0o777) == '0o600'


def test_resumes_a_partial_file_without_downloading_the_prefix(
        tmp_path, image, image_server):
    prefix = 1024 * 1024 + 12345
    (tmp_path / 'src-0001.part').write_bytes(image.data[:prefix])
    result = driver(tmp_path).transfer(image.source, image.dest, None)
    assert gets(image_server) == [('GET', 'src-0001', 'bytes=%d-' % prefix)]
    assert image_server.served == len(image.data) - prefix
    assert image_server.uploads['dst-0001'] == image.data
    # the hash covers the whole image, not only the resumed tail
    assert result.sha512 == image.sha512
    assert result.bytes == len(image.data)


def test_resumes_after_the_download_was_cut(tmp_path, image, image_server):
    image_server.cut_after = 2 * 1024 * 1024 + 100
    with pytest.raises(base.TransportError, match='resumes from there'):
        driver(tmp_path).transfer(image.source, image.dest, None)
    assert 'dst-0001' not in image_server.uploads
    staged = (tmp_path / 'src-0001.part').stat().st_size
    assert 0 < staged <= 2 * 1024 * 1024 + 100
    image_server.reset_counts()

    result = driver(tmp_path).transfer(image.source, image.dest, None)
    assert image_server.served == len(image.data) - staged
    assert image_server.uploads['dst-0001'] == image.data
    assert result.sha512 == image.sha512


def test_server_ignoring_range_restarts_from_zero(
        tmp_path, image, image_server):
    image_server.honour_range = False
    # A wrong prefix: appending the full body after it would be detected
    # by the byte comparison below.
    (tmp_path / 'src-0001.part').write_bytes(b'\0' * 5000)
    result = driver(tmp_path).transfer(image.source, image.dest, None)
    assert gets(image_server) == [('GET', 'src-0001', 'bytes=5000-')]
    assert image_server.served == len(image.data)
    assert image_server.uploads['dst-0001'] == image.data
    assert result.sha512 == image.sha512


def test_unsatisfiable_range_restarts_from_zero(
        tmp_path, image, image_server):
    # Size unknown (Glance did not say), so the driver cannot tell that
    # the partial file is already complete: it asks, gets 416, restarts.
    (tmp_path / 'src-0001.part').write_bytes(image.data)
    image.source.size = None
    result = driver(tmp_path).transfer(image.source, image.dest, None)
    assert [r[2] for r in gets(image_server)] == [
        'bytes=%d-' % len(image.data), None]
    assert image_server.uploads['dst-0001'] == image.data
    assert result.sha512 == image.sha512


def test_complete_partial_file_needs_no_download(
        tmp_path, image, image_server):
    (tmp_path / 'src-0001.part').write_bytes(image.data)
    driver(tmp_path).transfer(image.source, image.dest, None)
    assert gets(image_server) == []
    assert image_server.uploads['dst-0001'] == image.data


def test_reuses_a_staged_file_from_an_earlier_run(
        tmp_path, image, image_server):
    (tmp_path / 'src-0001.img').write_bytes(image.data)
    result = driver(tmp_path).transfer(image.source, image.dest, None)
    assert gets(image_server) == []
    assert image_server.uploads['dst-0001'] == image.data
    assert result.sha512 == image.sha512


def test_discards_a_staged_file_that_does_not_match(
        tmp_path, image, image_server):
    (tmp_path / 'src-0001.img').write_bytes(b'x' * len(image.data))
    driver(tmp_path).transfer(image.source, image.dest, None)
    assert image_server.served == len(image.data)
    assert image_server.uploads['dst-0001'] == image.data


def test_wrong_prefix_is_caught_before_upload_and_discarded(
        tmp_path, image, image_server):
    (tmp_path / 'src-0001.part').write_bytes(b'\0' * 5000)
    with pytest.raises(base.HashMismatch, match='os_hash_value'):
        driver(tmp_path).transfer(image.source, image.dest, None)
    assert [r for r in image_server.requests if r[0] == 'PUT'] == []
    assert os.listdir(tmp_path) == []
    # the next attempt starts clean and succeeds
    driver(tmp_path).transfer(image.source, image.dest, None)
    assert image_server.uploads['dst-0001'] == image.data


def test_corrupted_staged_copy_cuts_the_upload_short(
        tmp_path, image, image_server, monkeypatch):
    monkeypatch.setenv(base.FAULT_ENV, 'transfer:corrupt')
    with pytest.raises(base.HashMismatch, match='no longer matches'):
        driver(tmp_path, keep=True).transfer(image.source, image.dest, None)
    # Glance saw a body that never ended, so no image data was stored.
    assert 'dst-0001' not in image_server.uploads
    assert image_server.wait_for_aborted_puts(1) == 1
    assert os.listdir(tmp_path) == []


def test_source_errors_name_the_image(tmp_path, image, image_server):
    del image_server.images['src-0001']
    with pytest.raises(base.TransportError,
                       match='Reading image src-0001 .* HTTP 404'):
        driver(tmp_path).transfer(image.source, image.dest, None)


def test_destination_errors_name_the_image(tmp_path, image, image_server):
    image_server.put_status = 413
    with pytest.raises(base.TransportError,
                       match='Writing image dst-0001 .* HTTP 413'):
        driver(tmp_path, keep=True).transfer(image.source, image.dest, None)
    # the staged copy stays for the next attempt
    assert (tmp_path / 'src-0001.img').read_bytes() == image.data


def test_unreachable_source_is_a_transport_error(tmp_path, image):
    image.source.connection.image.endpoint_override = 'http://127.0.0.1:9'
    with pytest.raises(base.TransportError, match='Reading image src-0001'):
        driver(tmp_path).transfer(image.source, image.dest, None)


def test_check_passes_on_a_writable_directory(tmp_path):
    driver(tmp_path).check()
    driver(tmp_path).check(size=1024)
    assert os.listdir(tmp_path) == []


def test_check_missing_directory(tmp_path):
    with pytest.raises(base.PreflightError, match='does not exist'):
        driver(tmp_path / 'nope').check()


def test_check_not_a_directory(tmp_path):
    (tmp_path / 'file').write_text('x')
    with pytest.raises(base.PreflightError, match='is not a directory'):
        driver(tmp_path / 'file').check()


def test_check_no_directory_given():
    with pytest.raises(base.PreflightError, match='needs a directory'):
        sharedfs.SharedfsTransport().check()


def test_check_not_writable(unwritable_dir):
    with pytest.raises(base.PreflightError,
                       match='%s is not writable' % unwritable_dir):
        sharedfs.SharedfsTransport(directory=unwritable_dir).check()


def test_check_not_enough_space(tmp_path):
    with pytest.raises(base.PreflightError, match='bytes free; .* needed'):
        driver(tmp_path).check(size=1 << 62)


def test_transfer_refuses_when_space_is_short(tmp_path, image, image_server):
    image.source.size = 1 << 62
    with pytest.raises(base.PreflightError, match='bytes free'):
        driver(tmp_path).transfer(image.source, image.dest, None)
    assert image_server.served == 0


def test_refuses_path_like_image_ids(tmp_path, image):
    image.source.id = '../etc'
    with pytest.raises(base.TransportError, match='Refusing'):
        driver(tmp_path).transfer(image.source, image.dest, None)


def test_staged_hash_is_the_whole_file(tmp_path, image, image_server):
    _, sha512, size = driver(tmp_path).stage(image.source, None)
    staged = (tmp_path / 'src-0001.img').read_bytes()
    assert hashlib.sha512(staged).hexdigest() == sha512 == image.sha512
    assert size == len(image.data)


def test_missing_directory_at_transfer_time(tmp_path, image, image_server):
    with pytest.raises(base.TransportError,
                       match='Staging image src-0001 in .*nope failed'):
        driver(tmp_path / 'nope').transfer(image.source, image.dest, None)
    assert image_server.served == 0


# --- handoff (migrate --handoff) ---

def test_handoff_writes_the_image_and_files_into_the_item(
        tmp_path, image, image_server):
    drv = driver(tmp_path)
    count, sha512 = drv.handoff_image(image.source, 'm1-v1', 'image.raw',
                                      None)
    assert (count, sha512) == (len(image.data), image.sha512)
    drv.handoff_file('m1-v1', 'COMPLETE', b'{}')
    assert sorted(os.listdir(tmp_path / 'm1-v1')) == ['COMPLETE',
                                                      'image.raw']
    assert (tmp_path / 'm1-v1' / 'image.raw').read_bytes() == image.data
    # again: the complete image is reused, not downloaded twice
    image_server.reset_counts()
    assert drv.handoff_image(image.source, 'm1-v1', 'image.raw', None) == \
        (count, sha512)
    assert gets(image_server) == []


@pytest.mark.parametrize('item,name', [('..', 'x'), ('a/b', 'x'),
                                       ('m1', '../x'), ('m1', '.x')])
def test_handoff_names_stay_inside_the_directory(tmp_path, image, item,
                                                 name):
    with pytest.raises(base.TransportError):
        driver(tmp_path).handoff_file(item, name, b'x')
    assert os.listdir(tmp_path) in ([], ['m1'])
