"""Confirmations: Ctrl-C or Ctrl-D at the prompt did nothing; it says so and exits 130
(it printed click's "Aborted!" and exited 1, a walkthrough found)."""

from __future__ import annotations

import click
from click.testing import CliRunner

from iotpipe.cli.app import ask


@click.command()
def delete_things() -> None:
    if ask("Delete?", nothing_done="nothing was deleted."):
        click.echo("deleted")
    else:
        click.echo("kept")


def test_end_of_input_at_the_prompt_is_an_interruption_that_did_nothing() -> None:
    result = CliRunner().invoke(delete_things, input="")  # Ctrl-D: EOF
    assert result.exit_code == 130
    assert "Interrupted: nothing was deleted." in result.output
    assert "Aborted" not in result.output and "deleted\n" not in result.output


def test_answers_are_answers_and_no_is_the_default() -> None:
    assert CliRunner().invoke(delete_things, input="y\n").output.endswith("deleted\n")
    assert CliRunner().invoke(delete_things, input="\n").output.endswith("kept\n")
