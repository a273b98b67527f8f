"""The ``warden`` command line.

``main`` builds one argparse parser whose groups come from the ``warden.commands`` entry
points, so that ``trust`` (which an auditor may install alone) never imports ``agent`` or
``hub``. Each group module exposes ``register(subparsers)``.
"""
