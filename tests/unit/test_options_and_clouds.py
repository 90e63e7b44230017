import argparse

import pytest

from overcloud_migrate import clouds
from overcloud_migrate.cli import options
from overcloud_migrate.plan import prechecks


@pytest.mark.parametrize('text', ['a', '=b', 'a=', ''])
def test_key_value_refuses_half_pairs(text):
    with pytest.raises(argparse.ArgumentTypeError, match='SOURCE=DESTINATION'):
        options.key_value(text)


def test_key_value_splits_on_the_first_equals():
    assert options.key_value('net=dest=x') == ('net', 'dest=x')


def ident(**kw):
    base = dict(name='a', auth_url='http://k/v3', project='p', region='R')
    base.update(kw)
    return clouds.CloudIdentity(**base)


def test_same_cloud_project_and_region_is_refused():
    with pytest.raises(clouds.CloudError, match='same cloud'):
        clouds.refuse_same_cloud(ident(), ident(name='b'))


@pytest.mark.parametrize('change', [{'auth_url': 'http://other/v3'},
                                    {'project': 'q'}, {'region': 'S'}])
def test_another_project_or_region_is_allowed(change):
    clouds.refuse_same_cloud(ident(), ident(**change))


def test_auth_urls_compare_without_version_suffix():
    assert clouds._normal_url('http://k:5000/v3/') == 'http://k:5000'


def test_dest_cloud_falls_back_to_the_environment(monkeypatch):
    monkeypatch.setenv(clouds.DEST_CLOUD_ENV, 'site-b')
    assert clouds.dest_cloud_name(None) == 'site-b'
    assert clouds.dest_cloud_name('site-c') == 'site-c'
    assert not clouds.DEST_CLOUD_ENV.startswith('OS_')


def test_missing_destination_says_how_to_name_one():
    with pytest.raises(clouds.CloudError, match='--dest-cloud'):
        clouds.open_destination(None, None)


def test_problem_table_lists_every_problem():
    problems = [prechecks.Problem('flavor', 'm1.big', 'f1', 'missing'),
                prechecks.Problem('quota', 'cores', '', 'needs 4 more')]
    table = prechecks.format_table(problems).splitlines()
    assert table[0].split() == ['Type', 'Name', 'Source', 'ID', 'Problem']
    assert len(table) == 4 and 'needs 4 more' in table[3]


@pytest.mark.parametrize('convert, good, bad', [
    (options.positive_int, ['1', '64'], ['0', '-1', 'x', '1.5', '']),
    (options.non_negative_int, ['0', '30'], ['-1', 'x', '']),
])
def test_whole_number_option_types(convert, good, bad):
    for text in good:
        assert convert(text) == int(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError) as caught:
            convert(text)
        assert repr(text) in str(caught.value)
