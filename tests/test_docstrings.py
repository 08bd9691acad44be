"""Every registered lmd_toolkit class documents exactly its __init__ args."""
import inspect
import re

import pytest

from lmd_toolkit import registry
from lmd_toolkit.utils import register_all_modules

register_all_modules(init_default_scope=False)


def registered_classes():
    seen = {}
    for name in registry.__all__:
        reg = getattr(registry, name)
        reg.import_from_location()
        for key, cls in reg.module_dict.items():
            if inspect.isclass(cls) and cls.__module__.startswith(
                    'lmd_toolkit'):
                seen[f'{cls.__module__}.{cls.__qualname__}'] = cls
    return sorted(seen.items())


def documented_args(doc: str) -> list:
    match = re.search(r'\n\s*Args:\n(.*?)(\n\s*\n|\Z)', doc, re.S)
    if match is None:
        return []
    block = match.group(1)
    indent = min(len(line) - len(line.lstrip())
                 for line in block.splitlines() if line.strip())
    names = []
    for line in block.splitlines():
        if line.strip() and len(line) - len(line.lstrip()) == indent:
            names.append(re.match(r'\s*\**(\w+)', line).group(1))
    return names


def signature_args(cls) -> list:
    params = inspect.signature(cls.__init__).parameters.values()
    return [
        p.name for p in params if p.name != 'self'
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


CLASSES = registered_classes()


def test_something_is_registered():
    names = [name for name, _ in CLASSES]
    assert any(n.endswith('MaskRatioSchedulerHook') for n in names)
    assert any(n.endswith('CosineMaskRatio') for n in names)


@pytest.mark.parametrize('name,cls', CLASSES, ids=[n for n, _ in CLASSES])
def test_docstring_args_match_signature(name, cls):
    doc = inspect.getdoc(cls) or ''
    assert doc.strip(), f'{name} has no docstring'
    expected = signature_args(cls)
    if not expected:
        return
    assert documented_args('\n' + doc) == expected, (
        f'{name}: Args section {documented_args(doc)} != signature '
        f'{expected}')
