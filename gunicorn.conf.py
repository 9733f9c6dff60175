"""gunicorn settings for Sanquan (issue 18).  `gunicorn -c gunicorn.conf.py wsgi:app`;
every setting can be overridden from the environment (GUNICORN_*) or the command line.

- workers × threads: gthread workers, (2 × cores) processes by default, 4 threads each.  The
  live-bidding stream is a separate asyncio service (app/market/stream.py), never these workers.
- timeouts: `timeout` kills a worker stuck for 60 s (a request, not a job: imports and
  certificate batches run in `flask jobs worker`, or in a job thread that keeps its heartbeat);
  `graceful_timeout` lets requests finish on SIGTERM/HUP; `keepalive` a little above the
  proxy's idle timeout would cause resets, so keep it below nginx's (5 s < 75 s).
- preload_app = False: create_app() opens no connection, but the tile pool's threads and the
  job executor must not be forked; each worker builds its own app.  (With preload, pools
  opened before the fork would be shared by every worker.)
- max_requests with jitter: a slow leak never grows a worker without bound.
- logs: access log one JSON object per line with the request id; error log through the app's
  JSON formatter (LOG_JSON).
- metrics: PROMETHEUS_MULTIPROC_DIR (made empty at start) so /metrics sums every worker;
  a dead worker's files are marked.
"""
import multiprocessing
import os
import shutil
import tempfile

_env = os.environ.get

bind = _env("GUNICORN_BIND", "127.0.0.1:5000")
workers = int(_env("GUNICORN_WORKERS", max(2, 2 * multiprocessing.cpu_count())))
worker_class = "gthread"
threads = int(_env("GUNICORN_THREADS", 4))
timeout = int(_env("GUNICORN_TIMEOUT", 60))
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = int(_env("GUNICORN_KEEPALIVE", 5))
max_requests = int(_env("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = int(_env("GUNICORN_MAX_REQUESTS_JITTER", 500))
preload_app = False
# Request bodies: the app limits sizes per route; these bound the request line and headers.
limit_request_line = 8190
limit_request_fields = 100
forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips

accesslog = _env("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
loglevel = _env("GUNICORN_LOGLEVEL", "info")
# One JSON object per line; the request id is the response header the app sets.
access_log_format = ('{"ts":"%(t)s","kind":"access","remote":"%(h)s","method":"%(m)s",'
                     '"path":"%(U)s","query":"%(q)s","status":%(s)s,"bytes":"%(B)s",'
                     '"duration_us":%(D)s,"request_id":"%({x-request-id}o)s",'
                     '"user_agent":"%(a)s","pid":"%(p)s"}')
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "app.observability.JsonFormatter"},
        "access": {"format": "%(message)s"},
    },
    "filters": {"rid": {"()": "app.observability.RequestIdFilter"}},
    "handlers": {
        "error": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["rid"],
                  "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "access",
                   "stream": "ext://sys.stdout"},
    },
    "root": {"level": "INFO", "handlers": ["error"]},  # the app's loggers: JSON to stderr
    "loggers": {
        "gunicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}

# Set here, when the configuration is read: before anything (the log formatter above) imports
# prometheus_client, which picks its multi-process mode on import.
if not _env("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sanquan-metrics-")
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):  # stale files of a previous run would be summed in
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server, worker):
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
    except Exception:
        pass


def worker_abort(worker):  # the `timeout` fired: say which request, with its id, in the log
    worker.log.error("worker %s aborted after %s s", worker.pid, timeout)
