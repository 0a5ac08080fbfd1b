"""Hyperliquid credentials: the signing wallet (``HL_SECRET_KEY`` or an encrypted keystore file) and the
account it trades for (``HL_ACCOUNT_ADDRESS``).

Secrets: no message, ``repr`` or log line written here contains the key or the keystore password.
``eth_account`` is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from genetic_sizer.errors import ConfigError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = [
    "ENV_ACCOUNT_ADDRESS",
    "ENV_KEYSTORE",
    "ENV_KEYSTORE_PASSWORD",
    "ENV_SECRET_KEY",
    "Credentials",
    "account_address",
    "check_address",
    "create_keystore",
    "load_credentials",
    "load_wallet",
]

ENV_SECRET_KEY = "HL_SECRET_KEY"
ENV_KEYSTORE = "HL_KEYSTORE"
ENV_KEYSTORE_PASSWORD = "HL_KEYSTORE_PASSWORD"
ENV_ACCOUNT_ADDRESS = "HL_ACCOUNT_ADDRESS"


_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True, repr=False)
class Credentials:
    """A signing wallet (the account itself or an API wallet) and the account it trades for.

    The ``repr`` shows addresses only, never the key."""

    wallet: LocalAccount
    account_address: str

    @property
    def signer_address(self) -> str:
        return self.wallet.address

    @property
    def is_agent(self) -> bool:
        """True when the wallet is an API wallet acting for a different (main) account."""
        return self.wallet.address.lower() != self.account_address.lower()

    def __repr__(self) -> str:
        return f"Credentials(signer={self.wallet.address!r}, account_address={self.account_address!r})"

    __str__ = __repr__


def _account_from_key(secret: str | bytes, source: str) -> LocalAccount:
    from eth_account import Account

    try:
        return Account.from_key(secret)
    except Exception:  # binascii.Error, ValueError, ...: never echo the value
        raise ConfigError(
            f"{source} is not a valid private key (expected 32 bytes as 64 hex digits, optionally 0x-prefixed)"
        ) from None


def _check_private(path: Path) -> None:
    """A key file must be the owner's alone (mode 0600 or narrower): ConfigError otherwise, before any password is
    asked (as ssh refuses a private key others can read)."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            f"keystore {str(path)!r} can be read or written by others (mode {mode:03o}); make it yours alone: "
            f"chmod 600 {path}"
        )


def _decrypt_keystore(path: Path, env: Mapping[str, str], password_prompt: Callable[[str], str]) -> LocalAccount:
    from eth_account import Account

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read keystore {str(path)!r}: {exc.strerror or type(exc).__name__}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(f"keystore {str(path)!r} is not JSON") from None
    if not isinstance(data, dict) or not ({"crypto", "Crypto"} & set(data)):
        raise ConfigError(f"keystore {str(path)!r} is not an encrypted key file (no 'crypto' section)")
    _check_private(path)
    password = env.get(ENV_KEYSTORE_PASSWORD)
    if password is None:
        password = password_prompt(f"Password for keystore {path}: ")
    try:
        key = Account.decrypt(data, password)
    except ValueError as exc:
        if "mac mismatch" in str(exc).lower():
            raise ConfigError(f"wrong password for keystore {str(path)!r}") from None
        raise ConfigError(f"keystore {str(path)!r} could not be decrypted ({type(exc).__name__})") from None
    except Exception as exc:
        raise ConfigError(f"keystore {str(path)!r} could not be decrypted ({type(exc).__name__})") from None
    return _account_from_key(bytes(key), f"keystore {str(path)!r}")


def load_wallet(
    keystore: str | Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    password_prompt: Callable[[str], str] = getpass.getpass,
) -> LocalAccount:
    """The signing wallet (an ``eth_account`` LocalAccount).

    Sources, first match wins: the ``keystore`` argument (an encrypted JSON key file), ``HL_SECRET_KEY``
    (hex private key), ``HL_KEYSTORE`` (path of a key file). A key file's password comes from
    ``HL_KEYSTORE_PASSWORD`` or else ``password_prompt``. A key file others can read or write (mode wider than
    0600) is refused. Problems raise ConfigError; no message contains the key or the password."""
    if keystore is None:
        secret = (env.get(ENV_SECRET_KEY) or "").strip()
        if secret:
            return _account_from_key(secret, ENV_SECRET_KEY)
        keystore = (env.get(ENV_KEYSTORE) or "").strip() or None
    if keystore is None:
        raise ConfigError(
            f"no Hyperliquid signing key: set {ENV_SECRET_KEY}, or give an encrypted keystore file "
            f"(argument or {ENV_KEYSTORE}) with its password in {ENV_KEYSTORE_PASSWORD} or at the prompt"
        )
    return _decrypt_keystore(Path(keystore).expanduser(), env, password_prompt)


def account_address(wallet: LocalAccount, *, env: Mapping[str, str] = os.environ) -> str:
    """The account traded: ``HL_ACCOUNT_ADDRESS`` (the main account an API wallet acts for) or else the
    wallet's own address."""
    raw = (env.get(ENV_ACCOUNT_ADDRESS) or "").strip()
    if not raw:
        return wallet.address
    return check_address(raw, ENV_ACCOUNT_ADDRESS)


def check_address(raw: str, source: str) -> str:
    """``raw`` if it is an address (0x + 40 hex digits), else ConfigError naming ``source``.

    The value is not echoed: a private key pasted into the wrong place must not end up in a log."""
    raw = (raw or "").strip()
    if not _ADDRESS_RE.fullmatch(raw):
        raise ConfigError(f"{source} must be an address: 0x followed by 40 hex digits (got {len(raw)} characters)")
    return raw


def load_credentials(
    keystore: str | Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    password_prompt: Callable[[str], str] = getpass.getpass,
) -> Credentials:
    """:func:`load_wallet` and :func:`account_address` together."""
    wallet = load_wallet(keystore, env=env, password_prompt=password_prompt)
    return Credentials(wallet=wallet, account_address=account_address(wallet, env=env))


def create_keystore(
    path: str | Path,
    private_key: str | bytes,
    password: str,
    *,
    kdf: Literal["scrypt", "pbkdf2"] = "scrypt",
    iterations: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``private_key`` encrypted with ``password`` as an Ethereum keystore JSON file (mode 0600),
    readable by :func:`load_wallet`. Refuses to overwrite an existing file unless ``overwrite``."""
    from eth_account import Account

    path = Path(path).expanduser()
    wallet = _account_from_key(private_key, "private_key")
    data = Account.encrypt(wallet.key, password, kdf=kdf, iterations=iterations)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"keystore {str(path)!r} already exists") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return path
