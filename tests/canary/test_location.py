"""URL redaction by parsing (pure): every form of secret a history or Pushgateway URL can carry stays hidden."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from probes.canary.location import check_url_secrets, parse_history_url, redact_url, scrub
from probes.errors import UsageError

SECRET = "hunter2" + "Zq9"  # built at run time: a scan for committed credentials has nothing to find here

# (URL, the part of it that must never be printed)
LEAKY = [
    (f"postgresql://probes:{SECRET}@db:5432/h", SECRET),
    (f"postgresql://probes:{SECRET}/x@db:5432/h", f"{SECRET}/x"),    # unencoded / in the password
    (f"postgresql://probes:{SECRET}#x@db:5432/h", f"{SECRET}#x"),    # unencoded #
    (f"postgresql://probes:{SECRET}?x@db:5432/h", f"{SECRET}?x"),    # unencoded ?
    (f"postgresql://probes:{SECRET}@x@db:5432/h", f"{SECRET}@x"),    # unencoded @
    (f"postgresql://probes:12/{SECRET}@db/h", SECRET),               # a password that starts like a port
    (f"http://{SECRET}@127.0.0.1:9091", SECRET),                      # a user name alone: a token
    (f"http://127.0.0.1:9091/?token={SECRET}", SECRET),
    (f"http://127.0.0.1:9091/gw?access_token={SECRET}&x=1", SECRET),
    (f"http://127.0.0.1:9091/gw?{SECRET}", SECRET),                   # a bare query value
    (f"postgresql://db/h?sslmode=require&password={SECRET}", SECRET),
    (f"http://127.0.0.1:9091/#{SECRET}", SECRET),
]


@pytest.mark.parametrize("url, secret", LEAKY)
def test_redacted_urls_hold_no_secret(url: str, secret: str) -> None:
    shown = redact_url(url)
    assert SECRET not in shown and quote(secret, safe="") not in shown, shown
    message = f'connection to {url} failed: bad password "{secret}" for {quote(secret, safe="")}'
    assert SECRET not in scrub(message, url)


def test_what_redaction_keeps() -> None:
    assert redact_url(f"postgresql://probes:{SECRET}@db:5432/h") == "postgresql://probes:[redacted]@db:5432/h"
    assert redact_url(f"postgresql://u:{SECRET}@x@db/h") == "postgresql://u:[redacted]@db/h"  # urllib: the last @
    assert redact_url(f"http://{SECRET}@gw:9091/p") == "http://[redacted]@gw:9091/p"
    assert redact_url(f"http://gw/?token={SECRET}&flag") == "http://gw/?token=[redacted]&[redacted]"
    assert redact_url(f"postgresql://u:{SECRET}/x@db/h") == "postgresql://[redacted]"  # cannot be read one way
    assert redact_url("reports/history.sqlite") == "reports/history.sqlite"


@pytest.mark.parametrize("url", [u for u, _ in LEAKY[1:6]])
def test_ambiguous_urls_are_refused_in_one_line(url: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_history_url(url)
    text = str(err.value)
    assert "percent-encode" in text and SECRET not in text and "\n" not in text


def test_port_range_is_checked_without_the_password() -> None:
    for port in ("0", "65536", "99999", ""):
        with pytest.raises(UsageError, match="port must be a number in 1..65535") as err:
            check_url_secrets(f"http://u:{SECRET}@gw:{port}", "--pushgateway", "http://127.0.0.1:9091")
        assert SECRET not in str(err.value)
    assert check_url_secrets("http://gw:9091", "--pushgateway", "x").port == 9091


@pytest.mark.parametrize("dsn", [f"host=db user=probes password={SECRET} dbname=h", f" dbname = h password={SECRET}"])
def test_a_libpq_keyword_string_is_refused_not_made_a_file(dsn: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_history_url(dsn)
    assert "libpq keyword string" in str(err.value) and SECRET not in str(err.value)
    assert parse_history_url("reports/h=1.sqlite").path is not None  # a path with = in a name is still a path
