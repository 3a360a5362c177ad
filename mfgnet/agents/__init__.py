"""Agents: finite MFGs, mean field Q-learning and N-agent simulation under a solved MFG.

Subpackages are imported lazily by their users (``mfgnet.agents.finite``, ``.mfq``,
``.simulation``) so that importing one does not pay for the others.
"""
