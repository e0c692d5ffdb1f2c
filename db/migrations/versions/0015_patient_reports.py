"""patient-reported diary, PGIC and PSFS (issue #17): being written

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 10:00:00
"""
from collections.abc import Sequence
from typing import Union


revision: str = '0015'
down_revision: Union[str, None] = '0014'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
