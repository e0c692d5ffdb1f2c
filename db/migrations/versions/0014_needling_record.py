"""STRICTA needling record (issue #16): being written

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:00:00
"""
from collections.abc import Sequence
from typing import Union


revision: str = '0014'
down_revision: Union[str, None] = '0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
