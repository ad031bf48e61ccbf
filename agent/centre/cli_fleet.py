"""Placeholder: filled in by its issue."""

from __future__ import annotations

import argparse


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    return None
