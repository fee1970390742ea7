"""The Typer shell. Thin: every command calls core/probe/recipe functions and renders their result."""
