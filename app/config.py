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


class Config:
    SECRET_KEY = _secret_key()
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", "postgresql+psycopg:///sanquan")
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SQLALCHEMY_TRACK_MODIFICATIONS = False

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
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute;50 per hour")

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
    MAX_CONTENT_LENGTH = 2 * 1024 ** 3  # survey deliveries can be large
    BASEMAP_URL = os.environ.get("BASEMAP_URL")  # e.g. a 天地图 raster template with your key

    # Certificates: the address their QR codes point to (when issued outside a request), and
    # where batch print packages are written.
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL")
    PRINT_DIR = os.environ.get("PRINT_DIR") or str(INSTANCE / "prints")

    # Market trading: the live-bidding stream service's address as the browser reaches it
    # (`python -m app.market.stream`; `make run` starts it), and the market clock's accelerator
    # (1 = real time; a demo or a test may run auctions faster — never set it in production).
    MARKET_STREAM_URL = os.environ.get("MARKET_STREAM_URL")
    MARKET_ACCELERATOR = float(os.environ.get("MARKET_ACCELERATOR") or 1)

    # Demo data
    DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "sanquan-demo")


class DevelopmentConfig(Config):
    pass


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "TEST_DATABASE_URL", "postgresql+psycopg:///sanquan_test"
    )
    RATELIMIT_STORAGE_URI = "memory://"
    LOGIN_RATE_LIMIT = "1000 per minute"


CONFIGS = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "test": TestConfig,
}


def config_from_env():
    return CONFIGS[os.environ.get("SANQUAN_ENV", "development")]
