-- Odoo's own role in the shared PostgreSQL (the gateway's task store lives in database "gateway").
CREATE ROLE odoo WITH LOGIN CREATEDB PASSWORD 'odoo';
