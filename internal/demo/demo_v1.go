package demo

import "github.com/pulsesync/pulsesync/pgv1"

// V1Tables returns the registered demo tables of the v1 bundle protocol, parents first. They
// live in their own schema: a v1 client syncs exactly one schema, and its tables must not be
// the v0 demo's.
func V1Tables() []pgv1.TableSpec {
	return []pgv1.TableSpec{{Schema: "app", Table: "users"}, {Schema: "app", Table: "posts"}}
}

// V1SchemaSQL creates the v1 demo tables; it is idempotent. Each carries the hidden owner column
// _sync_scope_id (the user id), a primary key that includes it, and a scope-inclusive,
// deferrable foreign key, as the v1 store requires (docs/operations.md). Deleting a user
// cascades to their posts, so the demo shows a bundle holding effects the client did not push.
const V1SchemaSQL = `
CREATE SCHEMA IF NOT EXISTS app;
CREATE TABLE IF NOT EXISTS app.users (
    _sync_scope_id text NOT NULL,
    id             uuid NOT NULL,
    name           text,
    email          text,
    visits         integer,
    active         boolean,
    PRIMARY KEY (_sync_scope_id, id)
);
CREATE TABLE IF NOT EXISTS app.posts (
    _sync_scope_id text NOT NULL,
    id             uuid NOT NULL,
    author_id      uuid,
    title          text,
    body           text,
    score          numeric,
    PRIMARY KEY (_sync_scope_id, id),
    FOREIGN KEY (_sync_scope_id, author_id) REFERENCES app.users (_sync_scope_id, id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);`
