"""Find the suffixes of a deployment's leftovers when the state file is gone.

Every name carries the suffix, so listing each kind by its name's prefix recovers it:
``down`` then works on a fresh checkout or after ``rm -r .iotpipe``. Each kind says how it
is listed (:class:`~iotpipe.resources.base.Discovery`); this module only loops over them.

Everything is looked up in the command's region and account. Regional services list only
what is there; IAM is global, so a role counts only when its name carries this region
(``<name>-fn-role-<region>-<suffix>``), or, for roles named before that, when its policy
grants this region's stream: a deployment in another region is never found from here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.naming import Names
from iotpipe.resources import ALL_KINDS
from iotpipe.resources.base import Discovery, Lister, Resource
from iotpipe.resources.registry import KindError

# Stands for the suffix when naming a kind to learn its pattern (no name can contain it).
MARK = "\0"
SUFFIX = r"([a-z0-9]{4,8})"


def template(config: Config, gateway: Gateway, ident: dict[str, str]) -> Names:
    """This deployment's names, with :data:`MARK` where the suffix goes."""
    partition = ident.get("partition", "aws")
    return Names.of(config, MARK, ident["account"], partition, region=gateway.region)


def pattern(found: Discovery, names: Names) -> tuple[str, re.Pattern[str]]:
    """The prefix to list by, and the pattern whose group is the suffix."""
    before, mark, after = found.name(names).partition(MARK)
    if not mark:
        raise KindError(f"a discovery name has no suffix in it: {found.name(names)!r}")
    return before, re.compile(re.escape(before) + SUFFIX + re.escape(after) + "$")


class Finder:
    """One discovery run: each listing is made once, however many kinds use it."""

    def __init__(self, gateway: Gateway, names: Names) -> None:
        self.gateway = gateway
        self.names = names
        self._listed: dict[tuple[Lister, str], list[str]] = {}

    def listed(self, lister: Lister, prefix: str) -> list[str]:
        if (lister, prefix) not in self._listed:
            self._listed[(lister, prefix)] = list(lister(self.gateway, prefix))
        return self._listed[(lister, prefix)]

    def suffixes(self, found: Discovery) -> set[str]:
        prefix, regex = pattern(found, self.names)
        listed = self.listed(found.listed, prefix if found.narrow else "")
        suffixes = {m.group(1) for n in listed if (m := regex.match(n))}
        if found.ours is None:
            return suffixes
        return {s for s in suffixes if self._ours(found, s)}

    def _ours(self, found: Discovery, suffix: str) -> bool:
        assert found.ours is not None
        names = dataclasses.replace(self.names, suffix=suffix)
        return found.ours(self.gateway, found.name(names), names)


def find_suffixes(
    config: Config,
    gateway: Gateway,
    ident: dict[str, str],
    kinds: Iterable[type[Resource]] = ALL_KINDS,
) -> list[str]:
    """Suffixes for which any discoverable resource of this deployment exists."""
    finder = Finder(gateway, template(config, gateway, ident))
    found: set[str] = set()
    for kind in kinds:
        for way in kind.discovery:
            found |= finder.suffixes(way)
    return sorted(found)
