"""python -m hub_migrate PATH... [--write] [--target_tf=VERSION]"""

from hub_migrate import cli

if __name__ == "__main__":
  cli.console_main()
