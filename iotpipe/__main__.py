"""``python -m iotpipe``."""

from iotpipe.cli import main

if __name__ == "__main__":
    main()
