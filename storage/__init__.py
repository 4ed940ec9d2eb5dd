"""Oráculo's persistence: engine, models, sessions, migrations and the repository (every read and write of the tables).

Imports nothing else of Oráculo; it receives database URLs and paths from its callers.

Example::

    >>> from storage import migrate
    >>> from storage.db import Database
    >>> db = Database("sqlite://")  # in memory
    >>> db.upgrade()
    >>> db.current_revision() == migrate.head()
    True
"""
