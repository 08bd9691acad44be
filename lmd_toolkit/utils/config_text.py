"""Read a config that a checkpoint recorded as text, without running it.

mmengine stores the training config in a checkpoint as Python source
(``meta['cfg']``, ``Config.pretty_text``) and its resume path runs a
``meta['config']`` string through ``Config.fromstring``, which executes it: a
checkpoint whose tensors pass the safe loader could still run code. Here the
text is parsed with :mod:`ast` and only literals are accepted: assignments
``name = value`` whose values are numbers, strings, bytes, ``True`` /
``False`` / ``None``, lists, tuples, sets, dicts and ``dict(key=value, ...)``
calls of those. Anything else (an import, a call of another function, an
attribute, an f-string, ...) is refused with the line it is on; nothing in
the text is ever evaluated.
"""
import ast
from typing import Any, Dict, List, Mapping

__all__ = ['UnsafeConfigText', 'parse_config_text', 'plain', 'config_diff']


class UnsafeConfigText(ValueError):
    """Recorded config text that is not plain literal data."""


def _literal(node: ast.AST, where: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(
            node.op, (ast.USub, ast.UAdd)) and isinstance(
                node.operand, ast.Constant) and isinstance(
                    node.operand.value, (int, float, complex)):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.List):
        return [_literal(e, where) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e, where) for e in node.elts)
    if isinstance(node, ast.Set):
        return {_literal(e, where) for e in node.elts}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise UnsafeConfigText(f'{where}: "**" in a dict literal is not '
                                   'plain data.')
        return {
            _literal(k, where): _literal(v, where)
            for k, v in zip(node.keys, node.values)
        }
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == 'dict' and not node.args
            and all(kw.arg is not None for kw in node.keywords)):
        return {kw.arg: _literal(kw.value, where) for kw in node.keywords}
    raise UnsafeConfigText(
        f'{where}: {type(node).__name__} '
        f'{ast.unparse(node)[:60]!r} is not plain data (only literals and '
        'dict(...) are read; nothing is executed).')


def parse_config_text(text: str, source: str = 'config text'
                      ) -> Dict[str, Any]:
    """The ``name = value`` assignments of a recorded config, as plain data.

    Args:
        text (str): Python-syntax config text, e.g. ``meta['cfg']``.
        source (str): What the text is, for messages (e.g. the checkpoint's
            path and key).

    Returns:
        dict: Top-level names to values (dicts, lists, tuples, scalars).

    Raises:
        UnsafeConfigText: The text holds anything but literal assignments;
            the message names the line.
    """
    try:
        tree = ast.parse(text, mode='exec')
    except SyntaxError as e:
        raise UnsafeConfigText(f'{source} is not valid config text: '
                               f'{e.msg} (line {e.lineno}).') from e
    values: Dict[str, Any] = {}
    for stmt in tree.body:
        where = f'{source}, line {stmt.lineno}'
        if isinstance(stmt, ast.Expr) and isinstance(
                stmt.value, ast.Constant) and isinstance(
                    stmt.value.value, str):
            continue  # a docstring or comment string
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):
            raise UnsafeConfigText(
                f'{where}: {type(stmt).__name__} statement is not a plain '
                '"name = value" assignment; nothing is executed.')
        values[stmt.targets[0].id] = _literal(stmt.value, where)
    return values


def plain(value: Any) -> Any:
    """``value`` with mappings as dicts, tuples as lists and sets as sorted
    lists, so that a parsed text and a live ``Config`` compare equal."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=repr)
    return value


def config_diff(recorded: Mapping, current: Mapping,
                prefix: str = '') -> List[str]:
    """Dotted keys whose values differ between two plain configs, with both
    values (``'model.neck.embed_dims: 48 -> 64'``), sorted."""
    out: List[str] = []
    recorded, current = plain(recorded), plain(current)
    for key in sorted(set(recorded) | set(current)):
        name = f'{prefix}{key}'
        if key not in recorded:
            out.append(f'{name}: (absent) -> {current[key]!r}')
        elif key not in current:
            out.append(f'{name}: {recorded[key]!r} -> (absent)')
        elif isinstance(recorded[key], dict) and isinstance(
                current[key], dict):
            out.extend(config_diff(recorded[key], current[key], name + '.'))
        elif recorded[key] != current[key]:
            out.append(f'{name}: {recorded[key]!r} -> {current[key]!r}')
    return out
