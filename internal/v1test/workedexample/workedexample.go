// Package workedexample holds what the worked example of docs/protocol-v1.md §7 fixes and
// every test of it must use alike: the business tables its hashes are computed over. The
// hashes cover the schema and table names and the payload's columns, so a test database that
// named or shaped them otherwise could not reproduce the document's values.
//
// It imports nothing, so the store's own tests (package pgv1) can use it as well as the HTTP
// tests and the end-to-end ones.
package workedexample

// TablesSQL creates the schema business with the example's two tables. Each carries the
// hidden owner column _sync_scope_id and a scope-inclusive primary key, as the v1 store
// requires; a post's author is a deferrable foreign key with ON DELETE CASCADE, so deleting
// a user makes effects the client did not push. The schema must not exist yet.
const TablesSQL = `
CREATE SCHEMA business;

CREATE TABLE business.users (
    _sync_scope_id text NOT NULL,
    id             uuid NOT NULL,
    name           text,
    email          text,
    visits         int4,
    active         bool,
    PRIMARY KEY (_sync_scope_id, id)
);

CREATE TABLE business.posts (
    _sync_scope_id text NOT NULL,
    id             uuid NOT NULL,
    author_id      uuid,
    title          text,
    body           text,
    score          numeric,
    PRIMARY KEY (_sync_scope_id, id),
    FOREIGN KEY (_sync_scope_id, author_id) REFERENCES business.users (_sync_scope_id, id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
`
