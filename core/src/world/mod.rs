//! Neural game engines: VAE, recurrent DiT with diffusion forcing, LogicNet, spatial map, DDIM.
