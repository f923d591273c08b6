"""Alerts: what happened (budget thresholds, keys about to expire, a breaker opening, the usage
pipeline falling behind), who is told (channels: webhooks and email, per tenant and
platform-wide), and each delivery with every attempt.

- `models.py`: channels, policies, alerts and deliveries (the `gateway` app's tables);
- `services.py`: `alert_raise`, the one way in: deduplicated on (kind, subject, threshold,
  period) by a unique column, then one delivery per matching channel, queued after commit;
- `checks.py`: what raises them (the usage worker's budget check, beat's periodic checks, the
  breaker openings the gateway pushes to a Redis list);
- `delivery.py` and `webhooks.py`: sending, signing, the SSRF guard; `tasks.py`: Celery.
"""
