"""hub-migrate: rewrites TF1 `hub.Module` code for hub.KerasLayer / hub.load.

Modules, one job each:

  findings.py        what the tool tells the user (file, line, what to do)
  names.py           what a piece of syntax names (imports and aliases)
  modules.py         hub.Module constructions and their calls -> KerasLayer
                     or the low-level hub.load form
  session_config.py  RunConfig session configs: share_cluster_devices_in_session
  checks.py          what cannot be rewritten safely: reported only
  migrate.py         one source text, then files and folders; diffs, writes
  cli.py             the `hub-migrate` command (flags only here)

It imports harness and libcst, never TensorFlow: it reads code, it does not
run it.
"""
