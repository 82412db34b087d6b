"""Merging an applied configuration into a live object, the way server-side apply merges.

The configuration wins wherever it says something: scalars, atomic lists and atomic structs are
replaced whole, maps and structs merge key by key, associative lists merge item by item on their
keys, set-lists take the union. Live items the configuration does not mention stay where they were;
new items are appended (upstream interleaves by the configuration's order, which only matters for
the order of list items, not their content).
"""

from __future__ import annotations

import copy
from typing import Any

from tests.kube_double.fieldpaths import ATOMIC, Names, Topology, item_element


def merge(live: Any, config: Any, topology: Topology, names: Names = ()) -> Any:
    """`live` with `config` merged in; neither argument is modified."""
    if isinstance(live, dict) and isinstance(config, dict) and not topology.atomic(names):
        merged = copy.deepcopy(live)
        for key, value in config.items():
            merged[key] = (
                merge(live[key], value, topology, (*names, key)) if key in live else copy.deepcopy(value)
            )
        return merged
    if isinstance(live, list) and isinstance(config, list) and topology.list_type(names) is not ATOMIC:
        return _merge_list(live, config, topology, names)
    return copy.deepcopy(config)


def _merge_list(live: list[Any], config: list[Any], topology: Topology, names: Names) -> list[Any]:
    list_type = topology.list_type(names)
    live_elements = [item_element(list_type, item) for item in live]
    config_elements = [item_element(list_type, item) for item in config]
    if None in live_elements or None in config_elements:
        return copy.deepcopy(config)
    by_element = dict(zip(config_elements, config, strict=True))
    merged = []
    for element, item in zip(live_elements, live, strict=True):
        if element in by_element:
            merged.append(merge(item, by_element.pop(element), topology, names))
        else:
            merged.append(copy.deepcopy(item))
    merged.extend(copy.deepcopy(item) for item in by_element.values())
    return merged
