"""Octavia 19's MySQL-only migrations made to run on PostgreSQL (idempotent; patches the venv given).
usage: patch_octavia_pg.py VENV"""
import glob
import sys

V = glob.glob(f"{sys.argv[1]}/lib/python3*/site-packages/octavia/db/migration/alembic_migrations/versions")[0]
MARK = "# bakery test cloud: PostgreSQL"
PATCHES = {
    "9bf4d21caaea_adding_amphora_id_to_listener_.py": [(
        "    op.drop_constraint('PRIMARY',",
        f"    {MARK}\n    op.drop_constraint('PRIMARY' if op.get_bind().dialect.name == 'mysql'\n"
        "                       else 'listener_statistics_pkey',")],
    "fac584114642_.py": [(
        '    op.execute("ALTER TABLE health_monitor MODIFY id varchar(36) NOT NULL")\n\n'
        '    op.execute("ALTER TABLE health_monitor DROP PRIMARY KEY,"\n'
        '               "ADD PRIMARY KEY(id);")',
        f"    if op.get_bind().dialect.name != 'mysql':  {MARK}\n"
        '        op.execute("ALTER TABLE health_monitor ALTER COLUMN id SET NOT NULL")\n'
        '        op.execute("ALTER TABLE health_monitor DROP CONSTRAINT health_monitor_pkey, ADD PRIMARY KEY (id)")\n'
        "    else:\n"
        '        op.execute("ALTER TABLE health_monitor MODIFY id varchar(36) NOT NULL")\n'
        '        op.execute("ALTER TABLE health_monitor DROP PRIMARY KEY,"\n'
        '                   "ADD PRIMARY KEY(id);")')],
    "a5762a99609a_add_protocol_in_listener_keys.py": [(
        "def upgrade():\n",
        f"def upgrade():\n    if op.get_bind().dialect.name != 'mysql':  {MARK}\n"
        '        op.execute("ALTER TABLE listener DROP CONSTRAINT uq_listener_load_balancer_id_protocol_port, "\n'
        '                   "ADD CONSTRAINT uq_listener_load_balancer_id_protocol_port "\n'
        '                   "UNIQUE (load_balancer_id, protocol, protocol_port)")\n'
        "        return\n")],
    "e37941b010db_add_lb_flavor_constraint.py": [(
        '    op.execute("UPDATE load_balancer LEFT JOIN flavor ON "',
        f"    if op.get_bind().dialect.name != 'mysql':  {MARK}\n"
        '        op.execute("UPDATE load_balancer SET flavor_id = \'00000000-0000-0000-0000-000000000000\' "\n'
        '                   "WHERE flavor_id IS NOT NULL AND flavor_id NOT IN (SELECT id FROM flavor)")\n'
        "    else:\n"
        '      op.execute("UPDATE load_balancer LEFT JOIN flavor ON "')],
    # the inspector on the engine opens a second connection, which cannot see the spares_pool table
    # created earlier in the same (PostgreSQL: transactional) migration run
    "392fb85b4419_add_primary_key_to_spares_pool.py": [(
        "    inspector = reflection.Inspector.from_engine(bind.engine)",
        f"    inspector = reflection.Inspector.from_engine(bind)  {MARK}: same connection")],
}
for name, subs in PATCHES.items():
    path = f"{V}/{name}"
    text = open(path).read()
    if MARK in text:
        continue
    for old, new in subs:
        if old not in text:
            sys.exit(f"{name}: expected text not found; the patch needs updating")
        text = text.replace(old, new, 1)
    open(path, "w").write(text)
    print(f"patched {name}")
