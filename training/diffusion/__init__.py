"""Training of the diffusion stylizer (DESIGN §6, issue 7)."""
