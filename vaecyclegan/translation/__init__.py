"""MRI <-> CT translation: the VAE U-Net generators (`vae_unet_generator`,
with their latent sampler `vae_sampling`), the 4-scale PatchGAN
discriminators (`multiscale_patchgan_discriminator`) and the
GroupNormalization both use (`group_normalization`); the VAE-CycleGAN
`train_step` on TensorFlow and PyTorch (`trainer`) and the same step,
stateless, on Keras' JAX backend (`jax_trainer`), with the losses both
share (`cycle_losses`), the intensity-blind MIND structure loss
(`structure_loss`), CUT's contrastive patch loss (`patch_nce_loss`),
CycleGAN's image pool (`image_pool`), the unpaired augmented batches
(`dataset`; the same without TensorFlow for JAX and PyTorch:
`array_batches`), the training stage (`stage`) with its sample grids
(`sample_grid_callback`), and translation of whole slices in batches and tiles (`translator`)."""
