"""Usage recording: one record per `/v1/messages` request, whatever happened to it.

record.py builds it (billing.py decides what it costs), recorder.py hands it off without
blocking the request (buffer -> fsync'd spool -> Celery), tasks.py and services.py write it to
the database exactly once with its daily roll-up.
"""
