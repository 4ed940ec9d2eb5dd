"""Fakes of the outside services, served over real HTTP on 127.0.0.1 for the real client libraries.

Example::

    from tests.fakes.telegram_server import FakeTelegramServer, running_application
"""
