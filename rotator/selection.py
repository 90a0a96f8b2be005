"""Which namespaces a secret entry selects: include globs, exclude globs and a label selector.

Evaluated here, on the one namespace LIST per cluster, rather than by a LIST per selector: the
cost of observing a cluster stays constant however many secret entries the config has.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rotator.config import NamespaceSelector, split_selector

_SET_TERM = re.compile(r"^\s*(?P<key>\S+?)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*(?P<key>[^\s!=]+)\s*(?P<op>==|=|!=)\s*(?P<value>\S*)\s*$")


@dataclass(frozen=True, kw_only=True)
class NamespaceInfo:
    name: str
    labels: Mapping[str, str]
    terminating: bool = False


def label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector semantics (equality- and set-based); the selector was
    validated when the config was loaded."""
    return all(_term_matches(term, labels) for term in split_selector(selector))


def _term_matches(term: str, labels: Mapping[str, str]) -> bool:
    if match := _SET_TERM.match(term):
        values = {v.strip() for v in match["values"].split(",")}
        present = match["key"] in labels and labels[match["key"]] in values
        return present if match["op"] == "in" else not present
    if match := _EQ_TERM.match(term):
        equal = labels.get(match["key"]) == match["value"]
        # Kubernetes: "!=" also matches objects that lack the key.
        return equal if match["op"] != "!=" else not equal
    key = term.strip()
    return key[1:] not in labels if key.startswith("!") else key in labels


def selects(selector: NamespaceSelector, namespace: NamespaceInfo) -> bool:
    name = namespace.name
    if not any(fnmatch.fnmatchcase(name, glob) for glob in selector.include):
        return False
    if any(fnmatch.fnmatchcase(name, glob) for glob in selector.exclude):
        return False
    return selector.selector is None or label_selector_matches(selector.selector, namespace.labels)
