"""Settings from the environment, one class per environment."""
import os
import secrets
from pathlib import Path

INSTANCE = Path(__file__).resolve().parent.parent / "instance"


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one kept in instance/secret_key (made once), so that
    every worker process and every restart signs sessions with the same key."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = INSTANCE / "secret_key"
    if not path.exists():
        INSTANCE.mkdir(exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    return path.read_text().strip()


def _limits_uri(redis_url: str | None) -> str:
    """Flask-Limiter's storage URI for a Redis URL (a unix socket is 'redis+unix://')."""
    if not redis_url:
        return "memory://"
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://"):]
    return redis_url


OWNER_ROLE = os.environ.get("SANQUAN_OWNER_ROLE", "sanquan_owner")


def owner_url(app_url: str) -> str:
    """The migrations' URL when none is given: the app's server and database, as the owner role
    (no password: give MIGRATE_DATABASE_URL when the server asks for one)."""
    from sqlalchemy.engine import make_url

    return make_url(app_url).set(username=OWNER_ROLE, password=None).render_as_string(
        hide_password=False)


class Config:
    SECRET_KEY = _secret_key()
    # Least privilege (issue 11): the app connects as a role that owns nothing and has only the
    # DML the migrations grant it; `flask db …` connects as the owner (MIGRATE_DATABASE_URL,
    # default: the same database as the owner role `sanquan_owner`). See README "Database roles".
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", "postgresql+psycopg:///sanquan")
    MIGRATE_DATABASE_URL = os.environ.get("MIGRATE_DATABASE_URL")  # None: owner_url(app's)
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    # A hot standby for public and read-only traffic (tiles, OGC API, public market and notice
    # pages; docs/scaling.md).  Unset: everything reads the primary.
    DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL") or None

    # Sessions and cookies
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PERMANENT_SESSION_LIFETIME = 8 * 3600
    WTF_CSRF_TIME_LIMIT = 8 * 3600

    # Language: Chinese first, English as a switch
    BABEL_DEFAULT_LOCALE = "zh"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ("zh", "en")

    # Rate limits (memory:// is for development; set REDIS_URL in production)
    RATELIMIT_STORAGE_URI = _limits_uri(os.environ.get("REDIS_URL"))
    RATELIMIT_HEADERS_ENABLED = True
    # Redis gone: limits (and the sign-in lockout counters) fall back to this process's memory.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute;50 per hour")
    # the public report form (举报): anyone may post, no login
    REPORT_RATE_LIMIT = os.environ.get("REPORT_RATE_LIMIT", "5 per minute;30 per day")
    # PDF renders, exports and CSV reports (app.security.expensive), per account.
    EXPENSIVE_RATE_LIMIT = os.environ.get("EXPENSIVE_RATE_LIMIT", "20 per minute;300 per hour")
    # Searches by full ID number per account and hour (each one logged as person.lookup).
    ID_LOOKUP_PER_HOUR = int(os.environ.get("ID_LOOKUP_PER_HOUR", "60"))

    # API / OpenAPI
    API_TITLE = "Sanquan 三权 API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    # Swagger UI is installed from npm and served by the app (no CDN).
    OPENAPI_SWAGGER_UI_URL = "/vendor/swagger-ui-dist/"

    # Background jobs: "thread" (in-process), "rq" (Redis, needs REDIS_URL and `flask jobs
    # worker`), "sync" (inline, for tests); default: rq when REDIS_URL is set, else thread.
    REDIS_URL = os.environ.get("REDIS_URL")
    JOBS_MODE = os.environ.get("JOBS_MODE")
    # A queued/running job whose heartbeat is older than this is failed by the reaper (issue 18).
    JOBS_STALE_S = int(os.environ.get("JOBS_STALE_S", 120))
    JOBS_REAP_EVERY_S = int(os.environ.get("JOBS_REAP_EVERY_S", 60))
    # Redis unreachable when a job is submitted: "fail" (the job is failed clearly, re-runnable)
    # or "thread" (it runs in the web process instead).
    JOBS_REDIS_FALLBACK = os.environ.get("JOBS_REDIS_FALLBACK", "fail")

    # Observability: JSON log lines with the request id; /metrics is answered to loopback
    # clients that came through no proxy (none when TRUSTED_PROXIES is set), or to anyone
    # sending `X-Metrics-Token: $METRICS_TOKEN` when it is set.
    LOG_JSON = _env_bool("LOG_JSON", True)
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN")
    # Any request body, for every route, anonymous ones included: small.  The survey upload
    # (imports.upload) raises its own limit to IMPORT_MAX_UPLOAD_MB for that route alone; a
    # global 2 GB let anyone make a worker buffer 2 GB of JSON or spool it to disk.
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_REQUEST_MB", 32)) * 1024 ** 2

    # Survey imports (issue 10/12): per-route upload limits, zip checks, geometry limits,
    # how long an upload is kept with its batch, and the import job's bounds.
    IMPORT_MAX_UPLOAD_MB = int(os.environ.get("IMPORT_MAX_UPLOAD_MB", 512))
    IMPORT_MAX_FORM_KB = int(os.environ.get("IMPORT_MAX_FORM_KB", 2048))
    IMPORT_ZIP_MAX_MEMBERS = int(os.environ.get("IMPORT_ZIP_MAX_MEMBERS", 2000))
    IMPORT_ZIP_MAX_TOTAL_MB = int(os.environ.get("IMPORT_ZIP_MAX_TOTAL_MB", 1024))
    IMPORT_ZIP_MAX_RATIO = float(os.environ.get("IMPORT_ZIP_MAX_RATIO", 200))
    IMPORT_MAX_VERTICES = int(os.environ.get("IMPORT_MAX_VERTICES", 100_000))
    IMPORT_MAX_EXTENT_M = float(os.environ.get("IMPORT_MAX_EXTENT_M", 20_000))
    IMPORT_UPLOAD_KEEP_DAYS = int(os.environ.get("IMPORT_UPLOAD_KEEP_DAYS", 90))
    IMPORT_UPLOAD_DIR = os.environ.get("IMPORT_UPLOAD_DIR")  # default: instance/uploads
    IMPORT_JOB_TIMEOUT_S = int(os.environ.get("IMPORT_JOB_TIMEOUT_S", 4 * 3600))
    IMPORT_JOB_MAX_MEMORY_MB = int(os.environ.get("IMPORT_JOB_MAX_MEMORY_MB", 4096))
    # Exports started through the API (a background job each): where their files are written
    # (default: instance/exports/<job id>/) and how long they are kept.
    EXPORT_DIR = os.environ.get("EXPORT_DIR")
    EXPORT_KEEP_DAYS = int(os.environ.get("EXPORT_KEEP_DAYS", 7))
    BASEMAP_URL = os.environ.get("BASEMAP_URL")  # e.g. a 天地图 raster template with your key

    # Certificates: the address their QR codes point to (when issued outside a request), and
    # where batch print packages are written.
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL")
    PRINT_DIR = os.environ.get("PRINT_DIR") or str(INSTANCE / "prints")

    # Security
    ENV_NAME = "development"
    HSTS = _env_bool("HSTS", False)
    # Failed sign-ins before an account (or an address) is locked, and the first lock's length;
    # each further failure doubles it, up to the cap.  Counters live in the limiter's storage
    # (Redis when REDIS_URL is set).
    LOGIN_LOCK_AFTER = int(os.environ.get("LOGIN_LOCK_AFTER", "5"))
    LOGIN_LOCK_SECONDS = int(os.environ.get("LOGIN_LOCK_SECONDS", "30"))
    LOGIN_LOCK_MAX_SECONDS = int(os.environ.get("LOGIN_LOCK_MAX_SECONDS", "900"))
    PDF_CACHE_DIR = os.environ.get("PDF_CACHE_DIR") or str(INSTANCE / "pdf-cache")
    # How many reverse proxies in front of gunicorn set X-Forwarded-For/-Proto (0: none, the
    # peer address is the client's).  Behind nginx set 1, or every client shares one address
    # for the per-address sign-in lock.
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))

    # Market trading: the live-bidding stream service's address as the browser reaches it
    # (`python -m app.market.stream`; `make run` starts it), and the market clock's accelerator
    # (1 = real time; a demo or a test may run auctions faster — never set it in production).
    MARKET_STREAM_URL = os.environ.get("MARKET_STREAM_URL")
    MARKET_ACCELERATOR = float(os.environ.get("MARKET_ACCELERATOR") or 1)

    # Demo data
    DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "sanquan-demo")


class DevelopmentConfig(Config):
    ENV_NAME = "development"


class ProductionConfig(Config):
    ENV_NAME = "production"
    HSTS = True
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE


class TestConfig(Config):
    ENV_NAME = "test"
    TESTING = True
    SECRET_KEY = "test-secret"
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "TEST_DATABASE_URL", "postgresql+psycopg:///sanquan_test"
    )
    MIGRATE_DATABASE_URL = os.environ.get("TEST_MIGRATE_DATABASE_URL")
    RATELIMIT_STORAGE_URI = "memory://"
    LOGIN_RATE_LIMIT = "1000 per minute"
    LOGIN_LOCK_AFTER = 1000  # tests that exercise the lockout set their own threshold
    REPORT_RATE_LIMIT = "1000 per minute"
    EXPENSIVE_RATE_LIMIT = "1000 per minute"


CONFIGS = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "test": TestConfig,
}


def config_from_env():
    return CONFIGS[os.environ.get("SANQUAN_ENV", "development")]
