"""CONTRIBUTING's twins rule, checked on every transform `common.transforms` exports.

An array transform has a dictionary twin named with a trailing ``d``; a dictionary transform has its array twin, or
states in ``dictionary_only`` why it has none (it works on several keys of an item together, writes files, or its
array form is a function, which the reason names and this test resolves).
"""

from __future__ import annotations

import importlib
import inspect
import re

import monai.transforms
import pytest
from monai.transforms import MapTransform, Transform

import common.transforms as transforms

EXPORTED = {name: getattr(transforms, name) for name in transforms.__all__}
DICTIONARY = sorted(n for n, o in EXPORTED.items() if inspect.isclass(o) and issubclass(o, MapTransform))


def _is_array_transform(obj: object) -> bool:
    return inspect.isclass(obj) and issubclass(obj, Transform) and not issubclass(obj, MapTransform)


ARRAY = sorted(n for n, o in EXPORTED.items() if _is_array_transform(o))
ARRAY_FORM = re.compile(r"the array form is (MONAI's )?([\w.]+)")


def _resolve(name: str, monai_name: bool) -> object:
    if monai_name:
        return getattr(monai.transforms, name)
    if "." not in name:
        return getattr(transforms, name)
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def test_the_walk_sees_both_kinds():
    # a broken export list would make the parametrized tests below vanish instead of fail
    assert len(DICTIONARY) >= 30 and len(ARRAY) >= 15


@pytest.mark.parametrize("name", DICTIONARY)
def test_dictionary_transform_has_an_array_twin_or_says_why_not(name: str):
    assert name.endswith("d"), f"{name}: a dictionary transform's name ends in 'd', as MONAI's"
    reason = EXPORTED[name].__dict__.get("dictionary_only")
    if _is_array_transform(EXPORTED.get(name[:-1])):
        assert reason is None, f"{name} has the array twin {name[:-1]}, yet claims dictionary_only"
        return
    assert isinstance(reason, str) and len(reason) >= 20, (
        f"{name} has no array twin {name[:-1]}: add it, or set the class attribute dictionary_only to the reason"
    )
    named = ARRAY_FORM.search(reason)
    if named:
        assert callable(_resolve(named.group(2), bool(named.group(1)))), f"{name}: {named.group(2)} is not callable"


@pytest.mark.parametrize("name", ARRAY)
def test_array_transform_has_a_dictionary_twin(name: str):
    twin = EXPORTED.get(name + "d")
    assert inspect.isclass(twin) and issubclass(twin, MapTransform), f"{name} has no dictionary twin {name}d"
