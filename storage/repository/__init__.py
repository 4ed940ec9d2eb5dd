"""Repository functions: the only code that reads and writes Oráculo's tables.

Every function takes a Session first and keyword-only arguments after it; none commits (the caller's
`Database.session()` block does). Users are stored as a salted HMAC of their Telegram id, never the id.
Citizens' data in :mod:`storage.repository.people`, training runs and index versions in
:mod:`storage.repository.runs`; import them from here.

Example::

    >>> import tempfile, pathlib
    >>> from storage.db import Database
    >>> from storage import repository as repo
    >>> db = Database(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'o.db'}")
    >>> db.upgrade()
    >>> with db.session() as s:
    ...     user = repo.get_or_create_user(s, user_hash=repo.hash_user_id(42, salt=b"pepper"))
    ...     it = repo.record_interaction(s, user_id=user.id, question="Qual o prazo?", answer="30 dias.",
    ...         sources=[{"document": "edital", "chunk_id": "edital:0-90"}], strategy="extractive",
    ...         abstained=False, model_version="m1", index_version="i1", latency_ms=12.5, channel="cli")
    ...     first = repo.record_feedback(s, interaction_id=it.id, user_id=user.id, vote=1)
    ...     again = repo.record_feedback(s, interaction_id=it.id, user_id=user.id, vote=-1)
    >>> first[1], again[1], again[0].vote, again[0].id == first[0].id
    (True, False, -1, True)
    >>> db.dispose()
"""

from storage.repository.people import (VOTES, hash_user_id, get_user, get_or_create_user, delete_user,
                                       record_interaction, get_interaction, get_feedback, record_feedback,
                                       set_feedback_comment, activity_by_day, top_unanswered, voted_interactions,
                                       feedback_signature)
from storage.repository.runs import (FINISHED_STATUSES, HEARTBEAT_S, STALE_AFTER_S, create_training_run,
                                     beat_training_run, interrupt_stale_training_runs, finish_training_run,
                                     get_training_run, list_training_runs, training_cost_between, record_index_version,
                                     list_index_versions, current_index_version)

__all__ = ["VOTES", "hash_user_id", "get_user", "get_or_create_user", "delete_user", "record_interaction",
           "get_interaction", "get_feedback", "record_feedback", "set_feedback_comment", "activity_by_day",
           "top_unanswered", "voted_interactions", "feedback_signature", "FINISHED_STATUSES", "HEARTBEAT_S",
           "STALE_AFTER_S", "create_training_run", "beat_training_run", "interrupt_stale_training_runs",
           "finish_training_run", "get_training_run", "list_training_runs", "training_cost_between",
           "record_index_version", "list_index_versions", "current_index_version"]
