"""Which account a sizing pass reads and, when it executes, trades (:func:`resolve_account`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from genetic_sizer.errors import ConfigError
from genetic_sizer.exchange.credentials import ENV_ACCOUNT_ADDRESS, Credentials, check_address

__all__ = ["resolve_account"]


def _mismatch(given: str, credentials: Credentials) -> str:
    whose = (
        f"{ENV_ACCOUNT_ADDRESS}, the account this API wallet ({credentials.signer_address}) acts for"
        if credentials.is_agent
        else "the key's own account"
    )
    return (
        f"--address {given} is not the account this key trades: its orders go to {credentials.account_address} "
        f"({whose}). Executing trades only the key's account, so sizing another one would trade on the wrong "
        f"equity and positions. To trade {given}, use its key, or an API wallet authorized for it with "
        f"{ENV_ACCOUNT_ADDRESS}={given}; to preview {given}, drop --execute"
    )


def resolve_account(
    address: str | None,
    credentials: Credentials | None,
    *,
    execute: bool,
    env: Mapping[str, str] = os.environ,
) -> str:
    """The account a sizing pass reads and, with ``execute``, trades.

    Executing trades the account the key acts for, and only that one: ``credentials.account_address``
    (``HL_ACCOUNT_ADDRESS`` for an API wallet, else the key's own address), since that is where the
    exchange books the signed orders. An ``address`` (``--address``) naming another account is refused
    with ConfigError: the pass would size that account's equity and positions but trade the key's.
    A dry run reads ``address`` if given, else the credentials' account, else ``HL_ACCOUNT_ADDRESS``.
    Messages name addresses only, never the key; an ``address`` that is not one is not echoed."""
    given = check_address(address, "--address") if address else None
    if execute:
        if credentials is None:
            raise ConfigError("--execute needs a signing key: set HL_SECRET_KEY or pass --keystore")
        if given is not None and given.lower() != credentials.account_address.lower():
            raise ConfigError(_mismatch(given, credentials))
        return credentials.account_address
    if given is not None:
        return given
    if credentials is not None:
        return credentials.account_address
    raw = (env.get(ENV_ACCOUNT_ADDRESS) or "").strip()
    if raw:
        return check_address(raw, ENV_ACCOUNT_ADDRESS)
    raise ConfigError(
        "no account to read: pass --address, set HL_ACCOUNT_ADDRESS, or provide a key (HL_SECRET_KEY or --keystore)"
    )
