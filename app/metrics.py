"""The Prometheus metrics the features record (latency of requests, tiles, bids and jobs).

Infrastructure at the bottom of the house: it imports only prometheus_client, so any feature may
record into it; app/observability.py serves them on /metrics."""
from __future__ import annotations

from prometheus_client import Histogram

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
REQUEST_SECONDS = Histogram("sanquan_request_seconds", "HTTP request latency by route",
                            ["method", "route", "status"], buckets=BUCKETS)
TILE_SECONDS = Histogram("sanquan_tile_seconds", "Vector tile latency", ["status"],
                         buckets=BUCKETS)
BID_SECONDS = Histogram("sanquan_bid_seconds", "Auction bid latency (accepted, retried, refused)",
                        ["status"], buckets=BUCKETS)
JOB_SECONDS = Histogram("sanquan_job_seconds", "Background job duration", ["kind", "outcome"],
                        buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600))
