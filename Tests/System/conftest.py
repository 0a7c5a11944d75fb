"""pytest's fixtures for the system-level tests (`make test` runs them after the Swift tests)."""
import pytest

from support import NativeSystem


@pytest.fixture(scope="module")
def running_system():
    """The whole system started natively for the tests of one file, stopped and deleted after them."""
    system = NativeSystem(
        BCRYPT_COST="4",
        # schemathesis signs up and logs in past the per-address limit (the limit itself is GatewayTests').
        RATE_LIMIT_AUTH="1000000",
        # test_web.py's clients behind a proxy: the tests' own requests from 127.0.0.1 with X-Forwarded-For.
        TRUSTED_PROXIES="127.0.0.1")
    try:
        system.start()
        yield system
    finally:
        system.stop()
