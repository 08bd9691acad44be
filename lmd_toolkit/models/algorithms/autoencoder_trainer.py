"""Stage-1: train a KL-VAE / VQ-GAN projector (taming VQGAN / LDM recipe)."""
import copy
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.dist import all_reduce_params
from mmengine.logging import MessageHub
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.optim import (DefaultOptimWrapperConstructor, OptimWrapper,
                            OptimWrapperDict)
from torch import Tensor, nn

from lmd_toolkit.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from ..losses import (LPIPSLoss, adaptive_gan_weight, hinge_d_loss,
                      hinge_g_loss, pixel_loss)

_REDUCTIONS = ('mean', 'sum')
#: Projector regulariser -> the argument that weights it.
_REG_WEIGHTS = dict(kl='kl_weight', codebook='codebook_weight')


@MODELS.register_module()
class AutoencoderTrainer(BaseModel):
    """Train a projector's autoencoder with reconstruction, perceptual,
    KL / codebook and adaptive PatchGAN losses (stage 1 of LMD).

    Papers: `Taming Transformers <https://arxiv.org/abs/2012.09841>`_
    (VQGAN) and `Latent Diffusion <https://arxiv.org/abs/2112.10752>`_
    (KL-VAE); LMD (arXiv 2312.07971) eq. 4-6. Generator objective::

        rec   = reduce(|x - x_hat| + perceptual_weight * LPIPS(x, x_hat))
        reg   = kl_weight * sum(KL) / B          (KLVAEProjector)
              | codebook_weight * L_VQ           (VQGANProjector)
        gamma = clamp(|grad_last rec| / (|grad_last g| + 1e-4), 0, 1e4)
        loss  = rec + reg + disc_factor * disc_weight * gamma * g

    with ``g = -mean(D(x_hat))`` and ``last = projector.last_layer()``
    (``decoder.conv_out.weight``); ``x_hat`` and the unweighted KL / L_VQ
    come from ``projector.reconstruct``, its ``regularizer`` names which. The
    discriminator minimises ``disc_factor * (mean(relu(1 - D(x))) +
    mean(relu(1 + D(x_hat))))``. Both GAN terms are off (not computed, logged
    as 0) while the global iteration is below ``disc_start``.
    ``train_step`` needs an ``OptimWrapperDict`` with ``generator`` (the
    projector) and ``discriminator`` wrappers; config::

        optim_wrapper = dict(
            constructor='AutoencoderOptimWrapperConstructor',
            generator=dict(type='OptimWrapper', optimizer=dict(...)),
            discriminator=dict(type='OptimWrapper', optimizer=dict(...)))

    The checkpoint's state dict holds the projector under ``projector.``;
    ``KLVAEProjector(checkpoint='iter_N.pth')`` loads it for stage 2.

    Args:
        projector (dict): Config of a ``KLVAEProjector`` or
            ``VQGANProjector``; built and unfrozen.
        discriminator (dict): Config of the discriminator, e.g.
            ``NLayerDiscriminator``.
        rec_loss (str): Pixel loss, 'l1' (taming / LDM) or 'l2' (paper eq.
            4). Defaults to 'l1'.
        rec_reduction (str): How the per-pixel ``rec`` map is reduced:
            'mean' over all elements (taming VQGAN) or 'sum' over pixels
            divided by the batch size (LDM KL-VAE, what ``kl_weight=1e-6``
            was tuned against). Defaults to 'mean'.
        perceptual_weight (float): Weight of LPIPS; 0 builds no LPIPS
            network. Defaults to 1.0.
        lpips_net (str): LPIPS backbone, 'vgg' (taming / LDM), 'alex' or
            'squeeze'. Defaults to 'vgg'.
        lpips_checkpoint (str, optional): Local torchvision weights of the
            backbone; None looks in ``$TORCH_HOME/hub/checkpoints``.
            Defaults to None.
        lpips_pnet_rand (bool): Random LPIPS backbone, for tests only.
            Defaults to False.
        kl_weight (float): Weight of the KL term (KL-VAE). Defaults to 1e-6.
        codebook_weight (float): Weight of the quantiser loss (VQ).
            Defaults to 1.0.
        sample_posterior (bool): Decode a posterior sample (LDM) instead of
            the mean in training (KL-VAE). Defaults to True.
        disc_weight (float): Multiplies the adaptive weight gamma.
            Defaults to 0.5.
        disc_start (int): First global iteration (0-based) with GAN terms.
            Defaults to 50001.
        disc_factor (float): Multiplies both GAN losses once on.
            Defaults to 1.0.
        adaptive_weight_max (float): Upper clamp of gamma. Defaults to 1e4.
        data_preprocessor (dict, optional): Defaults to
            ``dict(type='LMDDataPreprocessor')`` (uint8 -> [-1, 1]).
        init_cfg (dict, optional): ``Pretrained`` init of the whole trainer.
            Defaults to None.

    Returns:
        dict | list: ``train_step`` returns the log variables (``loss``,
        ``loss_rec``, ``loss_perceptual``, ``loss_kl`` or ``loss_codebook``
        and ``perplexity``, ``loss_g``, ``loss_d``, ``gamma``,
        ``logits_real``, ``logits_fake``); ``predict`` one dict per image
        with ``gt_img`` and ``pred_img``, float32 ``(3, H, W)`` in [0, 255].
    """

    #: Optim wrapper name -> attribute holding the parameters it updates.
    optim_modules = dict(generator='projector', discriminator='discriminator')

    def __init__(self,
                 projector: dict,
                 discriminator: dict,
                 rec_loss: str = 'l1',
                 rec_reduction: str = 'mean',
                 perceptual_weight: float = 1.0,
                 lpips_net: str = 'vgg',
                 lpips_checkpoint: Optional[str] = None,
                 lpips_pnet_rand: bool = False,
                 kl_weight: float = 1e-6,
                 codebook_weight: float = 1.0,
                 sample_posterior: bool = True,
                 disc_weight: float = 0.5,
                 disc_start: int = 50001,
                 disc_factor: float = 1.0,
                 adaptive_weight_max: float = 1e4,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='LMDDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.projector = MODELS.build(projector).unfreeze()
        if self.projector.regularizer not in _REG_WEIGHTS:
            raise TypeError(
                'AutoencoderTrainer: projector must have a stage-1 '
                'regularizer (a KLVAEProjector or VQGANProjector), got '
                f'{type(self.projector).__name__} (regularizer='
                f'{self.projector.regularizer!r}).')
        self.discriminator = MODELS.build(discriminator)
        pixel_loss(torch.zeros(1), torch.zeros(1), rec_loss)  # validates
        if rec_reduction not in _REDUCTIONS:
            raise ValueError(f'AutoencoderTrainer: rec_reduction must be one '
                             f'of {_REDUCTIONS}, got {rec_reduction!r}.')
        self.rec_loss = rec_loss
        self.rec_reduction = rec_reduction
        self.perceptual_weight = perceptual_weight
        self.perceptual_loss = LPIPSLoss(
            lpips_net, lpips_checkpoint,
            lpips_pnet_rand) if perceptual_weight > 0 else None
        self.kl_weight = kl_weight
        self.codebook_weight = codebook_weight
        self.sample_posterior = sample_posterior
        self.disc_weight = disc_weight
        self.disc_start = disc_start
        self.disc_factor = disc_factor
        self.adaptive_weight_max = adaptive_weight_max

    # ------------------------------------------------------------ pieces
    def reconstruct(self, x: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Autoencode images ``(B, 3, H, W)`` in [-1, 1] with gradients.

        Returns:
            tuple: ``x_hat (B, 3, H, W)`` and the weighted regulariser with
            its log values: ``{'reg': ..., 'loss_kl': ...}`` (KL) or
            ``{'reg': ..., 'loss_codebook': ..., 'perplexity': ...}`` (VQ).
        """
        kind = self.projector.regularizer
        x_hat, terms = self.projector.reconstruct(x, self.sample_posterior)
        loss = terms.pop('loss')
        weight = getattr(self, _REG_WEIGHTS[kind])
        reg = {'reg': weight * loss, f'loss_{kind}': loss.detach(), **terms}
        return x_hat, reg

    def reconstruction_loss(self, x: Tensor,
                            x_hat: Tensor) -> Dict[str, Tensor]:
        """``rec`` (pixel + weighted LPIPS, reduced; the objective whose
        gradient gamma matches) and its unweighted parts for logging."""
        pixel = pixel_loss(x_hat, x, self.rec_loss)  # (B, 3, H, W)
        total = pixel
        out = {}
        if self.perceptual_loss is not None:
            lp = self.perceptual_loss(x_hat, x)  # (B, 1, 1, 1), broadcast
            total = pixel + self.perceptual_weight * lp
            out['loss_perceptual'] = lp.mean().detach()
        reduce = self._reduce
        out['loss_rec'] = reduce(pixel).detach()
        out['rec'] = reduce(total)
        return out

    def _reduce(self, t: Tensor) -> Tensor:
        if self.rec_reduction == 'mean':
            return t.mean()
        return t.sum() / t.shape[0]

    def gan_active(self, cur_iter: int) -> bool:
        """Whether the GAN terms are on at global iteration ``cur_iter``."""
        return cur_iter >= self.disc_start and self.disc_factor > 0

    @property
    def last_layer(self) -> Tensor:
        """The weight the adaptive GAN weight is measured at."""
        return self.projector.last_layer()

    # -------------------------------------------------------------- steps
    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """One autoencoder update, then one discriminator update.

        Args:
            data (dict): A batch from the dataloader (uint8 ``inputs``).
            optim_wrapper (OptimWrapperDict): ``generator`` and
                ``discriminator`` wrappers.

        Returns:
            dict: Detached log variables (see the class docstring).
        """
        missing = {'generator', 'discriminator'} - set(
            getattr(optim_wrapper, 'keys', lambda: [])())
        if missing:
            raise TypeError(
                'AutoencoderTrainer.train_step needs an OptimWrapperDict '
                'with "generator" and "discriminator" (missing '
                f'{sorted(missing)}); set optim_wrapper.constructor='
                "'AutoencoderOptimWrapperConstructor' with those two keys in "
                'the config.')
        g_wrapper = optim_wrapper['generator']
        d_wrapper = optim_wrapper['discriminator']
        cur_iter = _current_iter()
        gan_on = self.gan_active(cur_iter)
        inputs = self.data_preprocessor(data, True)['inputs']
        if inputs.ndim != 4 or inputs.shape[1] != 3:
            raise ValueError('AutoencoderTrainer: expected images (B, 3, H, W)'
                             f', got inputs of shape {tuple(inputs.shape)} '
                             '(latent caches cannot train a projector).')

        # 1. autoencoder; the discriminator only passes gradients through
        self.discriminator.requires_grad_(False)
        with g_wrapper.optim_context(self.projector):
            x_hat, reg = self.reconstruct(inputs)
            rec = self.reconstruction_loss(inputs, x_hat)
            loss = rec['rec'] + reg['reg']
            zero = loss.new_zeros(())
            g_loss, gamma = zero, zero
            if gan_on:
                g_loss = hinge_g_loss(self.discriminator(x_hat))
                gamma = self.disc_weight * adaptive_gan_weight(
                    rec['rec'], g_loss, self.last_layer,
                    self.adaptive_weight_max)
                loss = loss + self.disc_factor * gamma * g_loss
        _update_params(g_wrapper, loss, self.projector)
        self.discriminator.requires_grad_(True)

        log_vars = dict(loss=loss.detach(), loss_g=g_loss.detach(),
                        gamma=gamma)
        log_vars.update({
            k: v for k, v in {**rec, **reg}.items() if k not in ('rec', 'reg')
        })

        # 2. discriminator on real images and detached reconstructions
        d_loss, real_mean, fake_mean = zero, zero, zero
        if gan_on:
            with d_wrapper.optim_context(self.discriminator):
                logits_real = self.discriminator(inputs)
                logits_fake = self.discriminator(x_hat.detach())
                d_loss = self.disc_factor * hinge_d_loss(
                    logits_real, logits_fake)
            _update_params(d_wrapper, d_loss, self.discriminator)
            real_mean = logits_real.detach().mean()
            fake_mean = logits_fake.detach().mean()
        log_vars.update(loss_d=d_loss.detach(), logits_real=real_mean,
                        logits_fake=fake_mean)
        return log_vars

    def val_step(self, data: Union[dict, tuple, list]) -> List[dict]:
        """Reconstruct a validation batch (see :meth:`predict`)."""
        inputs = self.data_preprocessor(data, False)['inputs']
        return self.predict(inputs, data.get('data_samples'))

    def test_step(self, data: Union[dict, tuple, list]) -> List[dict]:
        """Same as :meth:`val_step`."""
        return self.val_step(data)

    @torch.no_grad()
    def predict(self,
                inputs: Tensor,
                data_samples: Optional[list] = None) -> List[dict]:
        """``decode(encode(x))`` with the projector's inference path (KL:
        posterior mean unless it samples; VQ: quantised codes).

        Returns:
            list[dict]: One per image: ``gt_img``, ``pred_img``, float32
            ``(3, H, W)`` in [0, 255] (``pred_img`` clamped).
        """
        pred = self.projector.decode(self.projector.encode(inputs))

        def to_255(img: Tensor) -> Tensor:
            return ((img.float() + 1) * 127.5).clamp(0, 255)

        return [
            dict(gt_img=to_255(inputs[i]), pred_img=to_255(pred[i]))
            for i in range(inputs.shape[0])
        ]

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor') -> Union[Tensor, List[dict]]:
        """'tensor': reconstructions ``(B, 3, H, W)`` with gradients;
        'predict': see :meth:`predict`. Losses need two optimizers, so
        'loss' mode is refused: use :meth:`train_step`."""
        if mode == 'tensor':
            return self.reconstruct(inputs)[0]
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'AutoencoderTrainer: mode must be "tensor" or '
                         f'"predict" (losses live in train_step), got '
                         f'{mode!r}.')


def _update_params(wrapper: OptimWrapper, loss: Tensor,
                   module: nn.Module) -> None:
    """``wrapper.update_params(loss)`` with the gradients of ``module``
    averaged over all processes between backward and step (a no-op in one
    process). With two optimizers a DDP forward hook cannot know which
    parameters a backward pass is for, so ``AutoencoderDataParallel`` leaves
    the synchronisation to this step."""
    wrapper.backward(wrapper.scale_loss(loss))
    if wrapper.should_update():
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        all_reduce_params(grads, op='mean')
        wrapper.step()
        wrapper.zero_grad()


def _current_iter() -> int:
    """The Runner's global iteration (0 outside a Runner)."""
    return int(MessageHub.get_current_instance().get_info('iter', 0))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class AutoencoderOptimWrapperConstructor:
    """Build an ``OptimWrapperDict`` of several optimizer wrappers, each over
    the parameters of one sub-module (mmengine 0.10 builds a dict of
    wrappers from a config only through a constructor).

    The sub-module of key ``name`` is ``model.<model.optim_modules[name]>``
    (``AutoencoderTrainer``: generator -> projector, discriminator ->
    discriminator), else ``model.<name>``. Each value is a normal
    ``optim_wrapper`` config (``type``, ``optimizer``, optional
    ``paramwise_cfg``) built by mmengine's ``DefaultOptimWrapperConstructor``.

    Args:
        optim_wrapper_cfg (dict): ``{name: wrapper config}``.
        paramwise_cfg (dict, optional): Must be None: give
            ``paramwise_cfg`` inside each wrapper. Defaults to None.

    Returns:
        OptimWrapperDict: ``constructor(model)`` returns one wrapper per key.
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        if paramwise_cfg is not None:
            raise ValueError('AutoencoderOptimWrapperConstructor: put '
                             'paramwise_cfg inside each wrapper config '
                             '(optim_wrapper.generator.paramwise_cfg).')
        bad = [k for k, v in optim_wrapper_cfg.items()
               if not isinstance(v, dict) or 'optimizer' not in v]
        if bad or not optim_wrapper_cfg:
            raise ValueError(
                'AutoencoderOptimWrapperConstructor: optim_wrapper must map '
                'names (generator, discriminator) to wrapper configs with an '
                f'"optimizer"; these are not: {bad or "(none given)"}.')
        self.optim_wrapper_cfg = copy.deepcopy(dict(optim_wrapper_cfg))

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        names = getattr(model, 'optim_modules', {})
        wrappers: Dict[str, OptimWrapper] = {}
        for name, cfg in self.optim_wrapper_cfg.items():
            attr = names.get(name, name)
            module = getattr(model, attr, None)
            if not isinstance(module, nn.Module):
                raise AttributeError(
                    f'optim_wrapper.{name}: {type(model).__name__} has no '
                    f'sub-module {attr!r} to optimise.')
            cfg = copy.deepcopy(cfg)
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg,
                                                            paramwise)(module)
        return OptimWrapperDict(**wrappers)
