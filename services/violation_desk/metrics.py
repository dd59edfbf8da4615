"""Prometheus metrics of the desk (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INGESTED = Counter("stopline_desk_ingested_total", "Plate results ingested", ["outcome", "integrity"])
INGEST_SECONDS = Histogram("stopline_desk_ingest_seconds", "Time to ingest one batch of messages",
                           buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
INGEST_BATCH = Histogram("stopline_desk_ingest_batch_size", "Messages per ingestion transaction",
                         buckets=(1, 2, 5, 10, 20, 50, 100))
INGEST_RETRIES = Counter("stopline_desk_ingest_retries_total", "Ingestions deferred: database unavailable")
REVIEW_ACTIONS = Counter("stopline_desk_review_actions_total", "Review actions", ["action"])
LOGIN_FAILURES = Counter("stopline_desk_login_failures_total", "Failed or rate-limited logins", ["reason"])
QUEUE_DEPTH = Gauge("stopline_desk_queue_depth", "Violations waiting for review", ["status"])
HTTP_SECONDS = Histogram("stopline_desk_http_seconds", "Web request time", ["method", "route"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
ORIGIN_REFUSED = Counter("stopline_desk_origin_refused_total",
                         "State-changing requests refused: Origin/Referer named another site")
