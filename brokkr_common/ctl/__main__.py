"""Entry point of the `brokkrctl` console script."""

from brokkr_common.ctl.main import cli


def main() -> None:
    cli(prog_name="brokkrctl")


if __name__ == "__main__":
    main()
