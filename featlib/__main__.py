import sys

from .cli import main

if __name__ == "__main__":  # python -m featlib (and not when a tool such as pytest imports the module)
    sys.exit(main())
