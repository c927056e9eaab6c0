#!/bin/sh
# One-shot (compose service odoo-init): create Odoo's database with the stock and sales
# apps (no demo data), then give the login the workers use (ODOO_USER) its password
# (ODOO_PASSWORD) and stock and sales manager rights, and admin its own password
# (ODOO_ADMIN_PASSWORD). Safe to run at every `up`: installed modules are left as they are.
set -eu
DB="--db_host=postgres --db_user=odoo --db_password=${ODOO_DB_PASSWORD}"
# shellcheck disable=SC2086
odoo $DB -d "$ODOO_DB" -i stock,sale_management --without-demo=all --stop-after-init --no-http
# shellcheck disable=SC2086
odoo shell $DB -d "$ODOO_DB" --no-http <<'PY'
import os

users = env["res.users"].with_context(active_test=False)
login = os.environ["ODOO_USER"]
user = users.search([("login", "=", login)], limit=1)
if not user:
    user = users.create({"name": "Submission gateway", "login": login})
user.write({
    "active": True,
    "password": os.environ["ODOO_PASSWORD"],
    "groups_id": [
        (4, env.ref("stock.group_stock_manager").id),
        (4, env.ref("sales_team.group_sale_manager").id),
    ],
})
if login != "admin":
    env.ref("base.user_admin").password = os.environ["ODOO_ADMIN_PASSWORD"]
env.cr.commit()
print(f"odoo-init: database ready, user {login!r} can log in")
PY
