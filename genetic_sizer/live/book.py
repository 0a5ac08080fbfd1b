"""A multi-strategy allocation traded by ``genetic-sizer size`` (:class:`LiveBook`): the champion's strategies read
by :func:`~genetic_sizer.live.combine.parts_of` (a stale or missing strategy champion is refused naming it), the
combined book of each pass (:func:`~genetic_sizer.live.combine.combine`) handed to the planner as the weights of an
ordinary champion at the book's leverage, and what each strategy's part held kept between passes in the state
directory: ``<network>-<account>-book-<key>.json`` (``key``: a fingerprint of the allocation champion, its weights
and its strategies' run directories and champions, so two books never share state), replaced atomically after a
pass completes, never written by a dry run (a dry-run loop carries it in memory only)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from genetic_sizer.live.combine import Book, combine, parts_of
from genetic_sizer.live.state import AccountStore, network_key
from genetic_sizer.runs import champion as C

__all__ = ["LiveBook"]


class LiveBook:
    """The strategies of the allocation champion ``champion`` (:func:`parts_of`) and the state of its book."""

    def __init__(self, champion):
        self.champion = champion
        self.parts, self.calendar = parts_of(champion)
        dirs = champion.data["strategies"]
        self.strategies = {name: C.load(Path(dirs[name]) / "champion.json") for name in champion.assets}
        self.leverage = float(sum(p.allocation * p.leverage for p in self.parts))
        ident = {
            "assets": list(champion.assets),
            "weights": [float(w) for w in champion.weights],
            "strategies": {n: str(Path(d).resolve()) for n, d in dirs.items()},
            "champions": champion.data.get("strategy_champions"),
        }
        self.key = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:12]
        self.store: AccountStore | None = None
        self.state: dict | None = None
        self.execute = False
        self.last: Book | None = None

    def bind(self, session) -> LiveBook:
        """Attach to the account and network of ``session``: restore the book's state from the state directory."""
        self.store = AccountStore(session.network, session.address)
        self.store.path = (
            self.store.directory / f"{network_key(session.network)}-{self.store.account}-book-{self.key}.json"
        )
        self.state = self.store.read() or None
        self.execute = session.config.execute
        return self

    def combine(self, snap) -> Book:
        """The book of a pass from the snapshot ``snap`` (account value, mids, the session's clock)."""
        self.last = combine(
            self.parts,
            float(snap.account.account_value),
            {c: float(m) for c, m in snap.mids.items()},
            float(snap.wall),
            calendar=self.calendar,
            state=self.state,
        )
        return self.last

    def describe(self, book: Book) -> str:
        lines = [f"multi-strategy book ({len(self.parts)} strategies, leverage {book.leverage:g}):"]
        for p in self.parts:
            lines.append(f"  strategy {p.name}: allocation {p.allocation:g}, {book.reasons.get(p.name, '')}")
        lines += [f"  target {c}: size {book.sizes[c]:g}, weight {w:.6g}" for c, w in book.weights.items()]
        return "\n".join(lines)

    def commit(self) -> None:
        """After a pass completed: the parts it set become the next pass's state (written only when executing)."""
        if self.last is None:
            return
        self.state = self.last.to_dict()
        if self.execute and self.store is not None:
            self.store.write(self.state)
        self.last = None
