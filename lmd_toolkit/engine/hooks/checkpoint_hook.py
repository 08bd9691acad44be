"""mmengine's ``CheckpointHook``, saving before it deletes anything."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook

from lmd_toolkit.registry import HOOKS
from lmd_toolkit.utils.fileio import atomic_write


def saves_after_train_iter(hook: MMEngineCheckpointHook, runner) -> bool:
    """Whether ``hook`` (this one or mmengine's) saves a checkpoint in the
    ``after_train_iter`` of the current iteration: every ``interval``
    iterations from ``save_begin``, and after the last one if
    ``save_last``."""
    if hook.by_epoch:
        return False
    return bool(
        hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
        or (hook.save_last and hook.is_last_train_iter(runner)))


@HOOKS.register_module()
class CheckpointHook(MMEngineCheckpointHook):
    """Save checkpoints so that a failure never costs a good one.

    The same hook, arguments and file names as mmengine's ``CheckpointHook``
    (registered under its name in the ``lmd_toolkit`` scope, so every config
    with ``default_scope='lmd_toolkit'`` gets it), with three differences
    (docs/en/reliability.md):

    - the new checkpoint is written first; only once it is complete are the
      checkpoints beyond ``max_keep_ckpts`` deleted (mmengine deletes the
      oldest one before saving, so a save that fails on a full disk, a
      non-finite weight or a kill had already cost one);
    - the checkpoint file and ``last_checkpoint`` are written to a temporary
      file and renamed, so neither is ever half-written under its name
      (the checkpoint through ``lmd_toolkit.utils.compat``'s atomic local
      backend);
    - ``NonFiniteGuardHook`` refuses, in ``before_save_checkpoint``, weights
      that are not finite: the save stops before any file is touched.

    Every other argument of mmengine's hook (``save_optimizer``,
    ``out_dir``, ``save_best``, ``filename_tmpl``, ...) is passed on as is.

    Args:
        interval (int): Save every ``interval`` iterations (or epochs).
            Defaults to -1 (never).
        by_epoch (bool): Count epochs instead of iterations.
            Defaults to True.
        max_keep_ckpts (int): Keep only the newest ones; -1 keeps all.
            Defaults to -1.
        save_last (bool): Also save after the last iteration.
            Defaults to True.
    """

    def __init__(self,
                 interval: int = -1,
                 by_epoch: bool = True,
                 max_keep_ckpts: int = -1,
                 save_last: bool = True,
                 **kwargs) -> None:
        super().__init__(interval=interval, by_epoch=by_epoch,
                         max_keep_ckpts=max_keep_ckpts, save_last=save_last,
                         **kwargs)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Save when :func:`saves_after_train_iter` says so."""
        if saves_after_train_iter(self, runner):
            runner.logger.info(
                f'Saving checkpoint at {runner.iter + 1} iterations')
            self._save_checkpoint(runner)

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict
                                   ) -> None:
        """Save ``step``, then rotate, then point ``last_checkpoint`` at it."""
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            # keep_ckpt_ids is a deque with maxlen=max_keep_ckpts
            while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        try:
            runner.save_checkpoint(
                self.out_dir,
                filename,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
        except BaseException:
            # Nothing was deleted; keep the bookkeeping as it was.
            if self.max_keep_ckpts > 0 and self.keep_ckpt_ids and \
                    self.keep_ckpt_ids[-1] == step:
                self.keep_ckpt_ids.pop()
                self.keep_ckpt_ids.extendleft(reversed(outdated))
            raise
        if not is_main_process():
            return
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir,
                                               self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # DeepSpeed checkpoints
                self.file_backend.rmtree(path)
        with atomic_write(osp.join(runner.work_dir, 'last_checkpoint')) as f:
            f.write(self.last_ckpt)
