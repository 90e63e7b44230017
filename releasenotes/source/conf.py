# Sphinx configuration for the overcloud-migrate release notes.

project = 'overcloud-migrate Release Notes'
copyright = 'overcloud-migrate developers'
author = 'overcloud-migrate developers'

extensions = [
    'reno.sphinxext',
]

source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'
exclude_patterns = []

pygments_style = 'sphinx'
html_theme = 'alabaster'
html_static_path = []
