"""Oráculo's persistence: models, engine and sessions, migrations, repository functions, feedback export.

Imports nothing else of Oráculo; it receives database URLs and paths from its callers.

Example::

    >>> from storage.db import Database
    >>> db = Database("sqlite://")  # in memory
    >>> db.upgrade()
    >>> db.current_revision()
    '0001'
"""
