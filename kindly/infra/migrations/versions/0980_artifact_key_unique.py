"""artifact keys: one debtor's files are never another's

Revision ID: 0980
Revises: 0970

Before this revision a key was campaigns/<slug>/<reference>/<file> with every character of the
reference outside [A-Za-z0-9._-] written as `_`: the references `A/1` and `A 1` shared one
folder, and the page stored there (the last one rendered) was served to both debtors with the
other's name, amount and token. Keys now name the debtor's id (campaigns/<slug>/debtors/<id>/),
and `artifact.key` is unique.

The migration cannot reach storage (it runs on the database connection alone), so it does the
safe part here and leaves the moving to `kindly render`:

- every artifact row of a debtor whose old folder was shared with another debtor of the
  campaign is deleted: the object there may be the other debtor's (the last rendered wins,
  and a rendering rolled back after storing leaves its object too). The page is then
  rendered live on the next open, and `kindly render` stores the letter and video anew;
- every other row keeps its key, which only its debtor used: it serves on. `kindly render`
  moves such objects to the new folder (a copy, not a rendering) and deletes the old ones;
- the unique constraint on `artifact.key` is added.

Downgrading drops the constraint only: the deleted rows are not brought back (render again).
Link records (the way in while PostgreSQL is down) that still name an old folder are not
trusted by the front until the page is rendered again (kindly.site.links.find).
"""

import re
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0980"
down_revision = "0970"
branch_labels = None
depends_on = None


def _old_folder(reference: str) -> str:
    """The folder the old scheme gave a reference (kindly.infra.storage.legacy_artifact_key)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", reference)


def _shared_debtors(bind) -> list[int]:
    """Debtors whose old folder another debtor of the same campaign also had."""
    shared: list[int] = []
    campaigns = bind.execute(sa.text("SELECT id FROM campaign ORDER BY id")).scalars().all()
    for campaign_id in campaigns:  # one campaign's references in memory at a time
        folders: dict[str, list[int]] = defaultdict(list)
        rows = bind.execute(
            sa.text("SELECT id, reference FROM debtor WHERE campaign_id = :c"), {"c": campaign_id}
        )
        for debtor_id, reference in rows:
            folders[_old_folder(reference)].append(debtor_id)
        shared.extend(i for ids in folders.values() if len(ids) > 1 for i in ids)
    return sorted(shared)


def upgrade() -> None:
    bind = op.get_bind()
    shared = _shared_debtors(bind)
    delete = sa.text("DELETE FROM artifact WHERE debtor_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True)
    )
    for start in range(0, len(shared), 500):
        bind.execute(delete, {"ids": shared[start : start + 500]})
    # any key still named by two rows (none should be left): no row may name another's object
    op.execute(
        "DELETE FROM artifact WHERE key IN"
        " (SELECT key FROM artifact GROUP BY key HAVING count(*) > 1)"
    )
    with op.batch_alter_table("artifact") as batch:
        batch.create_unique_constraint("uq_artifact_key", ["key"])


def downgrade() -> None:
    with op.batch_alter_table("artifact") as batch:
        batch.drop_constraint("uq_artifact_key", type_="unique")
