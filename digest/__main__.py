"""`python -m digest` runs the command line."""

from digest.cli import main

if __name__ == "__main__":  # (not when a worker process imports this module again)
    main()
