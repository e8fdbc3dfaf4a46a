"""The native drag engine on Stable Diffusion 1.5 (diffusers) and the methods built on it."""
