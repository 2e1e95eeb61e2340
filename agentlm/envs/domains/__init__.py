"""Worked tool-use domains built with agentlm.envs.tools; each module ends with its registry entry (`SPEC`) and
is listed in agentlm.envs.registry.BUILTIN. See docs/new_domains.md to add your own."""
