import os

import pytest

from overcloud_migrate.dtn import paths


@pytest.fixture
def tree(tmp_path):
    export = tmp_path / 'export' / 'data'
    export.mkdir(parents=True)
    (export / 'inner').mkdir()
    (export / 'file.dat').write_text('x')
    sibling = tmp_path / 'export' / 'data2'
    sibling.mkdir()
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'secret').write_text('s')
    os.symlink(outside, export / 'escape')
    os.symlink(outside / 'secret', export / 'secret-link')
    os.symlink(export / 'file.dat', export / 'inner' / 'ok-link')
    return {'data': str(export)}, export, sibling, outside


@pytest.mark.parametrize('bad, why', [
    ('relative/path', 'not absolute'),
    ('', 'empty'),
    ('/export/data/../../etc/passwd', '".."'),
    ('/export/data/..', '".."'),
    ('/export/data/a\x00b', 'NUL'),
    ('/export/data/a\nRNTO /etc/passwd', 'control character'),
    ('/export/data/a\rb', 'control character'),
    ('/' + 'a' * 5000, 'longer than'),
])
def test_normalise_refuses_malformed_paths(bad, why):
    with pytest.raises(paths.PathRefused, match=why):
        paths.normalise(bad)


def test_normalise_refuses_non_strings():
    with pytest.raises(paths.PathRefused, match='must be a string'):
        paths.normalise(['/export'])


def test_normalise_collapses_slashes_and_dots():
    assert paths.normalise('//export//data/./f') == '/export/data/f'


def test_confine_inside_an_export(tree):
    exports, export, _, _ = tree
    confined = paths.confine(str(export / 'inner' / 'new.dat'), exports,
                             local=True)
    assert confined.export == 'data'
    assert confined.root == str(export)
    assert confined.relative == 'inner/new.dat'


def test_confine_the_root_itself_has_empty_relative(tree):
    exports, export, _, _ = tree
    assert paths.confine(str(export), exports).relative == ''


def test_absolute_path_outside_every_export(tree):
    exports = tree[0]
    with pytest.raises(paths.PathRefused, match='outside every export'):
        paths.confine('/etc/passwd', exports)


def test_sibling_with_common_prefix_is_outside(tree):
    exports, _, sibling, _ = tree
    with pytest.raises(paths.PathRefused, match='outside every export'):
        paths.confine(str(sibling / 'f'), exports)


def test_symlinked_directory_escape_refused_locally(tree):
    exports, export, _, _ = tree
    with pytest.raises(paths.PathRefused, match='symlink'):
        paths.confine(str(export / 'escape' / 'secret'), exports, local=True)


def test_symlinked_file_escape_refused_locally(tree):
    exports, export, _, _ = tree
    with pytest.raises(paths.PathRefused, match='symlink'):
        paths.confine(str(export / 'secret-link'), exports, local=True)


def test_new_file_under_escaping_directory_refused(tree):
    exports, export, _, _ = tree
    with pytest.raises(paths.PathRefused, match='symlink'):
        paths.confine(str(export / 'escape' / 'not-yet'), exports,
                      local=True)


def test_symlink_staying_inside_is_accepted(tree):
    exports, export, _, _ = tree
    confined = paths.confine(str(export / 'inner' / 'ok-link'), exports,
                             local=True)
    assert confined.relative == 'inner/ok-link'


def test_remote_nodes_get_the_lexical_check_only(tree):
    exports, export, _, _ = tree
    # the symlink lives on this host, not on the remote node: not followed
    confined = paths.confine(str(export / 'escape' / 'x'), exports,
                             local=False)
    assert confined.relative == 'escape/x'


def test_longest_export_wins():
    exports = {'all': '/srv', 'images': '/srv/images'}
    assert paths.confine('/srv/images/a', exports).export == 'images'
    assert paths.confine('/srv/other/a', exports).export == 'all'


def test_no_exports_refuses_everything():
    with pytest.raises(paths.PathRefused, match='exports: none'):
        paths.confine('/srv/a', {})


def test_confine_directory_needs_an_existing_local_directory(tree):
    exports, export, _, _ = tree
    assert paths.confine_directory(str(export / 'inner'), exports,
                                   local=True).relative == 'inner'
    with pytest.raises(paths.PathRefused, match='does not exist'):
        paths.confine_directory(str(export / 'missing'), exports, local=True)


def test_shell_metacharacters_are_just_names(tree):
    exports, export, _, _ = tree
    confined = paths.confine(str(export) + '/; rm -rf /', exports)
    # the whole string is a file name inside the export, never a command
    assert confined.path == str(export) + '/; rm -rf '
    assert confined.export == 'data'
