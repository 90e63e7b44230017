# Sphinx configuration for the overcloud-migrate documentation.

project = 'overcloud-migrate'
copyright = 'overcloud-migrate developers'
author = 'overcloud-migrate developers'

extensions = [
    'sphinx.ext.autodoc',
    'cliff.sphinxext',
    'stevedore.sphinxext',
]

# cliff.sphinxext: show the commands as `openstack overcloud ...`.
autoprogram_cliff_application = 'openstack'

source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'
exclude_patterns = []

pygments_style = 'sphinx'
html_theme = 'alabaster'
html_static_path = []
