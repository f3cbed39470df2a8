"""The ESRGAN upscaler: RRDB-Net as in the paper's figure (`rrdbnet`, with
BasicSR's `pixel_unshuffle` for x2), ESRGAN's VGG-style discriminator and
perceptual loss (`vgg_style_discriminator`, `vgg_perceptual_loss`), the
L1 and relativistic-GAN trainers (`l1_trainer`, `adversarial_trainer`, on
TensorFlow and PyTorch;
both stateless on Keras' JAX backend: `jax_trainers`; their shared
relativistic average GAN loss: `relativistic_loss`),
their stage (`stage`), training batches from degraded images or real
pairs (`degraded_dataset`, `paired_dataset`), tiled inference (`tiling`),
scoring against bicubic and nearest upsampling (`evaluation`), and the
converter of ESRGAN/BasicSR PyTorch weights (`esrgan_conversion`), proved
on each file against ESRGAN's forward pass in PyTorch (`esrgan_reference`)."""
