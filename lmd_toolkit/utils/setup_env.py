"""Environment set-up for notebooks and scripts."""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every lmd_toolkit module that registers something, apply the
    compatibility shims (``lmd_toolkit.utils.compat``) and optionally set
    ``lmd_toolkit`` as the default scope.

    Args:
        init_default_scope (bool): Whether to make ``lmd_toolkit`` the
            default scope (so that ``type='...'`` names resolve here first).
            Defaults to True.
    """
    import lmd_toolkit.datasets  # noqa: F401,F403
    import lmd_toolkit.engine  # noqa: F401,F403
    import lmd_toolkit.evaluation  # noqa: F401,F403
    import lmd_toolkit.models  # noqa: F401,F403
    from .compat import apply_compat_shims
    apply_compat_shims()

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('lmd_toolkit', scope_name='lmd_toolkit')
    elif current.scope_name != 'lmd_toolkit':
        warnings.warn(f'The current default scope "{current.scope_name}" is '
                      'not "lmd_toolkit"; register_all_modules() opens a new '
                      'default scope "lmd_toolkit".')
        name = f'lmd_toolkit-{datetime.datetime.now()}'
        DefaultScope.get_instance(name, scope_name='lmd_toolkit')
