"""``genetic-sizer size --reset-kill`` (:func:`size_reset_kill`): clear the latched kill switch of the account and
network ``size`` would trade (see :func:`~genetic_sizer.live.latch.reset_kill`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from genetic_sizer.exchange.client import is_mainnet, resolve_base_url
from genetic_sizer.exchange.credentials import ENV_SECRET_KEY, load_credentials
from genetic_sizer.live.account import resolve_account
from genetic_sizer.live.latch import reset_kill
from genetic_sizer.live.loop import DEFAULT_JOURNAL
from genetic_sizer.live.state import AccountStore

__all__ = ["size_reset_kill"]


def size_reset_kill(
    *,
    network: str = "testnet",
    base_url: str | None = None,
    address: str | None = None,
    keystore: str | None = None,
    journal: str | Path | None = None,
    yes: bool = False,
    confirm: Callable[[str], bool] | None = None,
    report: Callable[[str], None] = print,
) -> bool | None:
    """``genetic-sizer size --reset-kill``: clear the latched kill switch of one account on one network (no champion
    needed). The account is the one ``size`` would read (``address``, else the key's account, else
    ``HL_ACCOUNT_ADDRESS``; see :func:`~genetic_sizer.live.account.resolve_account`), the network the one ``size``
    would trade; the journal ``journal`` or :data:`DEFAULT_JOURNAL`. See :func:`~genetic_sizer.live.latch.reset_kill`
    (it prints what tripped the switch and asks ``confirm`` unless ``yes``). Returns True when it reset, None when the
    switch was not tripped, False when declined."""
    url = resolve_base_url(network, base_url)
    label = "mainnet" if is_mainnet(url) else (url if base_url else network)
    credentials = load_credentials(keystore) if keystore or os.environ.get(ENV_SECRET_KEY) else None
    account = resolve_account(address, credentials, execute=False)
    store = AccountStore(label, account)
    return reset_kill(store, journal or DEFAULT_JOURNAL, yes=yes, confirm=confirm, report=report)
