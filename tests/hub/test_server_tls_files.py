"""Bad TLS files are named at start-up, not reported as "cannot listen … Failed to bind".

Issue 8, item 21: a garbage certificate made the hub say it could not bind its port. The hub
now loads the certificate chain and the key before binding and checks they belong together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub.server import start
from tests.bad_input._table import Case, assert_refused, run_warden
from trust.errors import ConfigError

from .harness import HubWorld


def _other_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())


def _encrypted_key_pem(world: HubWorld) -> bytes:
    key = serialization.load_pem_private_key(world.config.tls.key.read_bytes(),  # type: ignore[union-attr]
                                             password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(b"secret"))


Spoil = Callable[[HubWorld], tuple[Path, str]]


def _garbage_cert(w: HubWorld) -> tuple[Path, str]:
    assert w.config.tls is not None
    w.config.tls.cert.write_bytes(b"this is not a certificate\n")
    return w.config.tls.cert, "not a PEM X.509 certificate"


def _garbage_key(w: HubWorld) -> tuple[Path, str]:
    assert w.config.tls is not None
    w.config.tls.key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    return w.config.tls.key, "not a PEM private key"


def _key_of_another_cert(w: HubWorld) -> tuple[Path, str]:
    assert w.config.tls is not None
    w.config.tls.key.write_bytes(_other_key_pem())
    return w.config.tls.key, "does not match the certificate"


def _encrypted_key(w: HubWorld) -> tuple[Path, str]:
    assert w.config.tls is not None
    w.config.tls.key.write_bytes(_encrypted_key_pem(w))
    return w.config.tls.key, "encrypted"


def _missing_cert(w: HubWorld) -> tuple[Path, str]:
    assert w.config.tls is not None
    w.config.tls.cert.unlink()
    return w.config.tls.cert, "cannot read TLS file"


SPOILERS = [
    pytest.param(_garbage_cert, id="garbage-certificate"),
    pytest.param(_garbage_key, id="garbage-key"),
    pytest.param(_key_of_another_cert, id="key-does-not-match-certificate"),
    pytest.param(_encrypted_key, id="encrypted-key"),
    pytest.param(_missing_cert, id="missing-certificate"),
]


@pytest.mark.parametrize("spoil", SPOILERS)
def test_bad_tls_file_is_named_before_binding(world: HubWorld, spoil: Spoil) -> None:
    path, what = spoil(world)
    with pytest.raises(ConfigError) as info:
        start(world.config)
    message = info.value.message
    assert str(path) in message and what in message, message
    assert "bind" not in message and "listen" not in message, message


def test_serve_with_a_garbage_certificate_says_which_file(
    world: HubWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    path, what = _garbage_cert(world)
    assert world.config.source is not None
    case = Case("serve-garbage-cert", ("hub", "serve", "--config", str(world.config.source),
                                       "--listen", "127.0.0.1:0"),
                expect=f"{path}.*{what}")
    code, _, err = run_warden(case.argv, capsys)
    assert_refused(case, code, err)
    assert "bind" not in err
