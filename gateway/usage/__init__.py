"""Usage recording: one record per `/v1/messages` request, whatever happened to it.

record.py builds it (billing.py decides what it costs; every string is cleaned for the
database), recorder.py hands it off without blocking the request (buffer -> fsync'd spool ->
Celery; the spool file is kept until its records are in the database), tasks.py and services.py
write it to the database exactly once with its daily roll-up, parking a record the database
refuses as a dead letter instead of losing its batch.
"""
