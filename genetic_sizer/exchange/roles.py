"""Who a key acts for and where its orders land (:func:`route_orders`), from the exchange's own answer
(``userRole``), never from what the environment claims.

On Hyperliquid an order is booked on the account of the key that signed it, or on the master account of an
API wallet (an "agent"), or, when the request carries ``vaultAddress``, on that sub-account or vault (the
signer's account must be its master or its leader, or the request is refused). ``HL_ACCOUNT_ADDRESS`` only
says which account to READ; if the key does not act for it, every pass reads one account and trades another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from genetic_sizer.errors import ConfigError, ExchangeError

__all__ = ["ROLES", "Role", "Routing", "parse_role", "route_orders"]

ROLES = ("user", "agent", "vault", "subAccount", "missing")
"""What ``userRole`` answers: an account of its own, an API wallet (``data.user``: its master), a vault, a
sub-account (``data.master``), or an address the exchange does not know."""


@dataclass(frozen=True)
class Role:
    """What the exchange says an address is (``userRole``); ``master`` is an agent's or a sub-account's master."""

    address: str
    role: str
    master: str | None = None


def parse_role(raw: Any, address: str) -> Role:
    """The ``userRole`` answer for ``address``; ExchangeError naming the field when it is malformed."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("role"), str):
        raise ExchangeError(f"field userRole.role is missing in the exchange's answer for {address}: {raw!r}")
    role = raw["role"]
    if role not in ROLES:
        raise ExchangeError(f"field userRole.role is {role!r} for {address}, expected one of {list(ROLES)}")
    master = None
    if role in ("agent", "subAccount"):
        data = raw.get("data")
        key = "user" if role == "agent" else "master"
        master = data.get(key) if isinstance(data, Mapping) else None
        if not isinstance(master, str) or not master.startswith("0x"):
            raise ExchangeError(f"field userRole.data.{key} is missing for {role} {address}: {raw!r}")
    return Role(address, role, master)


@dataclass(frozen=True)
class Routing:
    """Where the orders a key signs land, as the exchange sees it.

    ``signer``: the key's address; ``acts_for``: the account it acts for (its own, or an API wallet's master);
    ``account``: where orders land (``acts_for``, or the sub-account or vault named by ``vault_address``);
    ``kind``: what ``account`` is ("user", "subAccount" or "vault")."""

    signer: str
    acts_for: str
    account: str
    vault_address: str | None
    kind: str

    def describe(self) -> str:
        via = "its own key" if self.signer.lower() == self.acts_for.lower() else f"API wallet {self.signer}"
        if self.vault_address is None:
            return f"account {self.account} (traded with {via})"
        return f"{self.kind} {self.account} of {self.acts_for} (traded with {via}, vaultAddress set)"


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def route_orders(role_of: Callable[[str], Role], signer: str, account: str) -> Routing:
    """Where orders signed by ``signer`` must go so that they land on ``account`` (the account read), or
    ConfigError when they cannot: ``role_of(address)`` answers ``userRole``.

    * the signer is an account of its own ("user") or an API wallet ("agent", acting for its master): orders
      land on that account;
    * ``account`` is that account: no ``vaultAddress``;
    * ``account`` is a sub-account whose master, or a vault whose leader, is that account: ``vaultAddress`` =
      ``account`` (a vault's leader is checked by the exchange itself, which refuses the request otherwise: the
      orders land on the vault or nowhere);
    * anything else is refused: the pass would read ``account`` and trade another. An API wallet named as its
      own account (no ``HL_ACCOUNT_ADDRESS``) gets an error that says so.

    A signer the exchange does not know is an ExchangeError (an unauthorized wallet, as the exchange itself would
    answer an order); the other refusals are ConfigError."""
    me = role_of(signer)
    if me.role == "missing":
        raise ExchangeError(
            f"the key's address {signer} does not exist on the exchange (userRole: missing): it is neither an account "
            "with deposits nor an API wallet approved by one (approve it on the exchange's API page, or use the "
            "account's own key)"
        )
    if me.role in ("vault", "subAccount"):
        raise ConfigError(
            f"the key's address {signer} is a {me.role}, which cannot sign orders: use its master's key (or an API "
            f"wallet of the master) with HL_ACCOUNT_ADDRESS={signer}"
        )
    acts_for = me.master if me.role == "agent" else signer
    assert acts_for is not None
    if _same(account, acts_for):
        return Routing(signer, acts_for, account, None, "user")
    if me.role == "agent" and _same(account, signer):
        raise ConfigError(
            f"this key is an API wallet of account {acts_for}, and HL_ACCOUNT_ADDRESS is not set (so the wallet's "
            f"own, empty address {signer} would be read): set HL_ACCOUNT_ADDRESS={acts_for}, or to a sub-account or "
            "vault of it, to trade it"
        )
    target = role_of(account)
    if target.role == "subAccount":
        if _same(target.master, acts_for):
            return Routing(signer, acts_for, account, account, "subAccount")
        why = f"a sub-account of {target.master}, not of {acts_for}"
    elif target.role == "vault":
        return Routing(signer, acts_for, account, account, "vault")
    elif target.role == "agent":
        why = f"an API wallet (of {target.master}), which holds no positions"
    elif target.role == "missing":
        why = "an address the exchange does not know"
    else:
        why = "another account of its own"
    whose = "the key's own account" if me.role == "user" else f"the account API wallet {signer} acts for"
    raise ConfigError(
        f"HL_ACCOUNT_ADDRESS {account} is {why}; orders signed by this key land on {acts_for} ({whose}). Refusing "
        f"to trade: every pass would read {account} and buy again on {acts_for}. Set HL_ACCOUNT_ADDRESS={acts_for} "
        f"(or a sub-account or vault of it), or use a key that acts for {account}"
    )
