"""ed25519 keys: files an officer keeps, ids everybody computes alike, and every bad key file.

Known answers come from RFC 8032 §7.1 (test 1) and from ``cryptography`` used directly, so a
key-id or signing mistake in ``trust.keys`` cannot hide behind itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trust import keys
from trust.errors import FormatError, KeyError_, SignatureError, WardenError

# RFC 8032 §7.1, TEST 1 (empty message).
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """A permissive umask, so a mode that only looks right thanks to umask 022 shows up."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- key ids and signing -------------------------------------------------------------------


def test_rfc8032_known_answer_and_key_id() -> None:
    key = keys.SigningKey.from_seed(RFC8032_SECRET)
    assert key.public.raw == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIG
    assert key.key_id == hashlib.sha256(RFC8032_PUBLIC).hexdigest()
    assert key.key_id == keys.key_id_of(RFC8032_PUBLIC)
    key.public.verify(RFC8032_SIG, b"")


def test_key_id_is_lowercase_hex_sha256_of_raw_public_bytes() -> None:
    key = keys.generate()
    raw = key.public.raw
    assert len(raw) == 32
    assert key.key_id == hashlib.sha256(raw).hexdigest()
    assert key.key_id == key.key_id.lower() and len(key.key_id) == 64
    # the same id whatever carried the public key: PEM, base64
    pem_raw = serialization.load_pem_public_key(key.public.to_pem()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert keys.key_id_of(pem_raw) == key.key_id
    assert keys.PublicKey.from_b64(key.public.b64).key_id == key.key_id


@pytest.mark.parametrize("n", [0, 31, 33, 64])
def test_key_id_of_wrong_length_is_refused(n: int) -> None:
    with pytest.raises(FormatError):
        keys.key_id_of(b"\x01" * n)


@pytest.mark.parametrize("text", ["not base64!", "AAAA", base64.b64encode(b"x" * 33).decode()])
def test_public_key_from_bad_base64_is_a_format_error(text: str) -> None:
    with pytest.raises(FormatError):
        keys.PublicKey.from_b64(text, what="keys.abc.public")


def test_verify_rejects_a_signature_over_other_data_or_by_another_key() -> None:
    a, b = keys.SigningKey.from_seed(b"\x01" * 32), keys.SigningKey.from_seed(b"\x02" * 32)
    sig = a.sign(b"message")
    a.public.verify(sig, b"message")
    with pytest.raises(SignatureError):
        a.public.verify(sig, b"messagE")
    with pytest.raises(SignatureError):
        b.public.verify(sig, b"message")
    with pytest.raises(SignatureError):
        a.public.verify(sig[:-1] + bytes([sig[-1] ^ 1]), b"message")


def test_repr_does_not_leak_the_private_key() -> None:
    key = keys.SigningKey.from_seed(b"\x07" * 32)
    text = repr(key) + str(key)
    assert "0707" not in text and base64.b64encode(b"\x07" * 32).decode()[:10] not in text


# --- files: round trips, modes, overwrite --------------------------------------------------


def test_save_load_round_trip(tmp_path: Path) -> None:
    key = keys.generate()
    path = tmp_path / "officer1.key"
    keys.save_private(key, path)
    loaded = keys.load_private(path)
    assert loaded.key_id == key.key_id
    assert loaded.raw_private() == key.raw_private()
    key.public.verify(loaded.sign(b"data"), b"data")


def test_private_key_file_is_pem_pkcs8_readable_by_cryptography(tmp_path: Path) -> None:
    key = keys.generate()
    path = tmp_path / "k.pem"
    keys.save_private(key, path)
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, not OpenSSH or raw
    other = serialization.load_pem_private_key(data, password=None)
    assert isinstance(other, Ed25519PrivateKey)
    assert (
        other.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        == key.public.raw
    )


def test_private_key_file_mode_is_0600_even_with_umask_0(tmp_path: Path, umask_zero: None) -> None:
    path = tmp_path / "k.pem"
    keys.save_private(keys.generate(), path)
    assert _mode(path) == 0o600
    keys.save_private(keys.generate(), tmp_path / "enc.pem", passphrase=b"pw")
    assert _mode(tmp_path / "enc.pem") == 0o600


def test_overwrite_of_a_world_readable_file_leaves_it_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"old")
    path.chmod(0o644)
    keys.save_private(keys.generate(), path, overwrite=True)
    assert _mode(path) == 0o600
    keys.load_private(path)


def test_refuses_to_overwrite_an_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "officer1.key"
    first = keys.generate()
    keys.save_private(first, path)
    before = path.read_bytes()
    with pytest.raises(KeyError_) as info:
        keys.save_private(keys.generate(), path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
    assert keys.load_private(path).key_id == first.key_id


def test_unwritable_destination_is_a_key_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError_):
        keys.save_private(keys.generate(), tmp_path / "no" / "such" / "dir" / "k.pem")


def test_public_key_file_round_trip(tmp_path: Path) -> None:
    key = keys.generate()
    keys.save_public(key.public, tmp_path / "k.pub")
    assert (tmp_path / "k.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert keys.load_public(tmp_path / "k.pub") == key.public
    # a private key file yields its public half
    keys.save_private(key, tmp_path / "k.pem")
    assert keys.load_public(tmp_path / "k.pem") == key.public


# --- passphrases ---------------------------------------------------------------------------


def test_passphrase_round_trip(tmp_path: Path) -> None:
    key = keys.generate()
    path = tmp_path / "k.pem"
    keys.save_private(key, path, passphrase=b"correct horse")
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # really encrypted: cryptography itself needs the password
        serialization.load_pem_private_key(data, password=None)
    assert keys.load_private(path, b"correct horse").key_id == key.key_id


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    keys.save_private(keys.generate(), path, passphrase=b"correct horse")
    with pytest.raises(KeyError_) as info:
        keys.load_private(path, b"battery staple")
    assert str(path) in str(info.value)
    assert "passphrase" in str(info.value)


def test_missing_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    keys.save_private(keys.generate(), path, passphrase=b"correct horse")
    with pytest.raises(KeyError_) as info:
        keys.load_private(path)
    assert str(path) in str(info.value)
    assert "passphrase" in info.value.diagnostics()


def test_passphrase_for_an_unencrypted_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    keys.save_private(keys.generate(), path)
    with pytest.raises(KeyError_, match="not encrypted"):
        keys.load_private(path, b"pw")


def test_empty_passphrase_is_refused_or_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    key = keys.generate()
    try:
        keys.save_private(key, path, passphrase=b"")
    except WardenError:
        return  # refusing an empty passphrase outright is a fine answer
    assert keys.load_private(path, b"").key_id == key.key_id


# --- bad key files: every one is a KeyError_ naming the file ---------------------------------


def _pem_of_generated() -> bytes:
    return keys.generate().to_pem()


def _garble_body(pem: bytes) -> bytes:
    lines = pem.splitlines(keepends=True)
    body = bytearray(lines[1])
    body[5] = ord("A") if body[5] != ord("A") else ord("B")
    body[10] = ord("z") if body[10] != ord("z") else ord("y")
    return b"".join([lines[0], bytes(body), *lines[2:]])


BAD_PRIVATE_FILES = {
    "empty": lambda: b"",
    "truncated-half": lambda: _pem_of_generated()[: len(_pem_of_generated()) // 2],
    "truncated-no-footer": lambda: _pem_of_generated().split(b"-----END")[0],
    "header-only": lambda: b"-----BEGIN PRIVATE KEY-----\n",
    "garbled-body": lambda: _garble_body(_pem_of_generated()),
    "bad-base64": lambda: b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
    "binary-noise": lambda: bytes(range(256)) * 3,
    "not-a-key": lambda: b"hello, I am a text file\n",
    "openssh-format": lambda: Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )[:60],
}


@pytest.mark.parametrize("name", sorted(BAD_PRIVATE_FILES))
def test_bad_private_key_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.key"
    path.write_bytes(BAD_PRIVATE_FILES[name]())
    with pytest.raises(KeyError_) as info:
        keys.load_private(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", sorted(BAD_PRIVATE_FILES))
def test_bad_file_as_public_key(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pub"
    path.write_bytes(BAD_PRIVATE_FILES[name]())
    with pytest.raises(KeyError_) as info:
        keys.load_public(path)
    assert str(path) in str(info.value)


def test_truncated_encrypted_key(tmp_path: Path) -> None:
    pem = keys.generate().to_pem(b"pw")
    path = tmp_path / "k.pem"
    path.write_bytes(pem[: len(pem) - 40])
    with pytest.raises(KeyError_):
        keys.load_private(path, b"pw")


def test_public_key_where_a_private_one_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "officer1.pub"
    keys.save_public(keys.generate().public, path)
    with pytest.raises(KeyError_) as info:
        keys.load_private(path)
    assert str(path) in str(info.value)
    assert "public key" in str(info.value)


def _foreign_private_pem(kind: str) -> bytes:
    key = {
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
        "ec-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "ed448": ed448.Ed448PrivateKey.generate,
        "x25519": x25519.X25519PrivateKey.generate,  # also 32 raw bytes: must not pass
    }[kind]()
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


FOREIGN = ["rsa", "ec-p256", "ed448", "x25519"]


@pytest.mark.parametrize("kind", FOREIGN)
def test_non_ed25519_private_key_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.pem"
    path.write_bytes(_foreign_private_pem(kind))
    with pytest.raises(KeyError_) as info:
        keys.load_private(path)
    assert "ed25519" in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("kind", FOREIGN)
def test_non_ed25519_public_key_is_refused(tmp_path: Path, kind: str) -> None:
    private = serialization.load_pem_private_key(_foreign_private_pem(kind), password=None)
    path = tmp_path / f"{kind}.pub"
    path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(KeyError_, match="ed25519"):
        keys.load_public(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyError_, match="no such key file"):
        keys.load_private(tmp_path / "nope.key")
    with pytest.raises(KeyError_):
        keys.load_public(tmp_path / "nope.pub")


def test_directory_instead_of_a_file(tmp_path: Path) -> None:
    with pytest.raises(KeyError_):
        keys.load_private(tmp_path)
