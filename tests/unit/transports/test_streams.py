"""The upload body: sized when the byte count is known, never completed
with wrong bytes, against a real HTTP image service."""

import pytest

from overcloud_migrate.transports import base
from overcloud_migrate.transports import glance
from overcloud_migrate.transports import streams


def _chunks(data, size=1024 * 1024):
    return (data[pos:pos + size] for pos in range(0, len(data), size))


def test_glance_stream_sends_a_content_length(image, image_server):
    result = glance.GlanceTransport().transfer(image.source, image.dest,
                                               lambda *a: None)

    assert image_server.put_framing == ['sized']
    assert image_server.uploads['dst-0001'] == image.data
    assert result.sha512 == image.sha512


def test_unknown_size_is_sent_chunked(image, image_server):
    streams.upload(image.dest, _chunks(image.data))

    assert image_server.put_framing == ['chunked']
    assert image_server.uploads['dst-0001'] == image.data


@pytest.mark.parametrize('announced, reason', [
    (+1024, 'ended after'), (-1024, 'more than')])
def test_a_source_that_disagrees_with_its_size_never_completes(
        image, image_server, announced, reason):
    size = len(image.data) + announced

    with pytest.raises(base.TransportError) as caught:
        streams.upload(image.dest, _chunks(image.data), size)

    assert reason in str(caught.value)
    assert 'dst-0001' in str(caught.value)
    assert image_server.wait_for_aborted_puts(1) == 1
    assert 'dst-0001' not in image_server.uploads


def test_a_hash_mismatch_at_the_end_keeps_the_last_chunk_back(
        image, image_server, tmp_path):
    staged = tmp_path / 'staged.img'
    staged.write_bytes(image.data)
    with open(staged, 'rb') as handle:
        chunks = streams.VerifiedChunks(handle.read, 'f' * 128, 'the test',
                                        len(image.data))
        with pytest.raises(base.HashMismatch):
            streams.upload(image.dest, chunks, len(image.data))

    assert image_server.put_framing == ['sized']
    assert image_server.wait_for_aborted_puts(1) == 1
    assert 'dst-0001' not in image_server.uploads
