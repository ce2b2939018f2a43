// Package demo holds the demo schema and settings that `pulsesync dev` and the tests share: the
// tables and JWT secret the SQLiteNow KMP client's test suite expects (docs/protocol-v0.md §1.5).
package demo

// Secret is the HS256 secret the KMP client's test suite signs its tokens with.
const Secret = "your-secret-key-change-in-production"

// Tables returns the registered demo tables, parents first.
func Tables() []string { return []string{"business.users", "business.posts"} }

// SchemaSQL creates the demo business tables; it is idempotent.
const SchemaSQL = `
CREATE SCHEMA IF NOT EXISTS business;
CREATE TABLE IF NOT EXISTS business.users (
    id    uuid PRIMARY KEY,
    name  text,
    email text
);
CREATE TABLE IF NOT EXISTS business.posts (
    id        uuid PRIMARY KEY,
    title     text,
    content   text,
    author_id uuid REFERENCES business.users (id)
);`
